"""What a notebook cell displays for a summary: a table without an index column, and parameters as a reader
reads them. Every stage's display functions use these, so no cell prints a dict."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hadpo.io import sha256_json

#: The kit's checkout: a path inside it is shown relative to it.
REPO_ROOT = Path(__file__).resolve().parent.parent


class Table:
    """A summary table for a notebook cell: HTML without an index column (``_repr_html_``), and the same table as
    plain text (``repr``) for papermill's log and the executed notebook's text version.

    ``formats`` maps a column to a format string (``"{:.1f}"``); integer columns show as integers, missing values
    as ``—``; ``frame`` holds the values unformatted.
    """

    def __init__(self, frame: Any, *, caption: str | None = None, formats: Mapping[str, str] | None = None) -> None:
        self.frame, self.caption, self.formats = frame, caption, dict(formats or {})

    def _repr_html_(self) -> str:
        from pandas.api.types import is_numeric_dtype
        from pandas.io.formats.style import Styler

        # An id from the content, not a random one: the same results render to the same page, and two tables
        # of a page keep their own styles.
        uuid = sha256_json([self.caption, self.frame.to_json(orient="split", default_handler=str)])[:10]
        styler = Styler(self.frame, uuid=uuid, cell_ids=False).hide(axis="index")
        styler = styler.format(self.formats, na_rep="—")
        # Text reads from the left; the notebook styles right-align every cell, for numbers.
        text = [c for c in self.frame.columns if not is_numeric_dtype(self.frame[c]) and c not in self.formats]
        styler = styler.set_table_styles({c: [{"selector": "", "props": "text-align: left"}] for c in text},
                                         overwrite=False)
        return (styler.set_caption(self.caption) if self.caption else styler).to_html()

    def __repr__(self) -> str:
        import pandas as pd

        shown = self.frame.astype(object)
        for column in shown.columns:
            fmt = self.formats.get(column)
            shown[column] = ["—" if pd.isna(v) else fmt.format(v) if fmt else v for v in shown[column]]
        text = shown.to_string(index=False)
        return f"{self.caption}\n{text}" if self.caption else text


def table(rows: Any, *, caption: str | None = None, formats: Mapping[str, str] | None = None) -> Table:
    """What a notebook cell displays for a summary (:class:`Table`) from a list of ``{column: value}`` dicts or a
    DataFrame. Give each table one unit for its rates (say which in the column names or the ``caption``)."""
    import pandas as pd

    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    return Table(frame, caption=caption, formats=formats)


def shown_value(value: Any) -> str:
    """A parameter as a report shows it: paths inside the checkout relative to it, booleans as yes/no."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(shown_value, value)) or "[]"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str) and os.path.isabs(value):
        path = Path(value)
        if path.is_relative_to(REPO_ROOT):
            return path.relative_to(REPO_ROOT).as_posix() or "."
    return str(value)
