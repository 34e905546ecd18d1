"""HTML output: fragments that display in a notebook, standalone pages, and the ``reports/index.html`` page.

Everything is self-contained (inline CSS, no scripts, no CDN), so a report folder can be copied, mailed or
opened from disk. All text taken from result files is escaped.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hadpo.errors import DataError
from hadpo.io import atomic_write_text, read_json

SUMMARY_FILE = "summary.json"
INDEX_FILE = "index.html"

_NOTE_CSS = ".hadpo-note { border-left: 4px solid #d9a400; background: #fff8e0; padding: 0.5em 0.8em; margin: 0.5em 0 }"
_BASE_CSS = _NOTE_CSS + """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 70em;
       padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.hadpo-muted { color: #666; font-size: 0.9em; }
"""


class HtmlFragment:
    """A piece of HTML that a notebook displays as HTML (``_repr_html_``) and that can be saved as a page."""

    def __init__(self, body: str, *, title: str | None = None, css: str = "") -> None:
        self.body = body
        self.title = title
        self.css = css

    def _repr_html_(self) -> str:
        style = f"<style>{self.css}</style>" if self.css else ""
        heading = f"<h3>{html.escape(self.title)}</h3>" if self.title else ""
        return style + heading + self.body

    def __str__(self) -> str:
        return self._repr_html_()

    def __repr__(self) -> str:
        return f"HtmlFragment(title={self.title!r}, {len(self.body)} characters)"

    def to_page(self) -> str:
        """A standalone HTML document holding this fragment."""
        return page(self.title or "hadpo report", self._repr_html_())

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_page` to ``path`` atomically."""
        return atomic_write_text(path, self.to_page())


def note(message: str, *, title: str | None = None) -> HtmlFragment:
    """A visible boxed note (e.g. "SHR not available: <file> not found"), escaped."""
    return HtmlFragment(f'<div class="hadpo-note">{html.escape(message)}</div>', title=title, css=_NOTE_CSS)


def page(title: str, body: str, *, css: str = "") -> str:
    """A complete, standalone HTML5 document (``body`` is inserted as is; ``title`` is escaped)."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_BASE_CSS}{css}</style>\n</head>\n"
        f"<body>\n<h1>{html.escape(title)}</h1>\n{body}\n</body>\n</html>\n"
    )


# ---------------------------------------------------------------------------------------------------- index page
def _read_summary(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    data = read_json(path)
    if not isinstance(data, dict):
        raise DataError(path, f"expected a JSON object, got {type(data).__name__}")
    headline = data.get("headline", {})
    if not isinstance(headline, Mapping):
        raise DataError(path, f"expected a mapping of label to value, got {type(headline).__name__}", field="headline")
    return data


def _run_date(folder: Path, pages: list[Path], summary: Mapping[str, Any] | None) -> str:
    """``YYYY-MM-DD HH:MM`` (UTC): the summary's ``created`` stamp, else the newest page's modification time."""
    created = summary.get("created") if summary else None
    if isinstance(created, str) and created:
        try:
            stamp = dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
        except ValueError:
            return created
        if stamp.tzinfo is not None:
            stamp = stamp.astimezone(dt.timezone.utc)
        return stamp.strftime("%Y-%m-%d %H:%M")
    times = [p.stat().st_mtime for p in pages] or [folder.stat().st_mtime]
    return dt.datetime.fromtimestamp(max(times), tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M")


def _href(path: Path) -> str:
    return html.escape(quote(path.as_posix()), quote=True)


def index_entries(reports_root: str | Path) -> list[dict[str, Any]]:
    """One entry per run folder under ``reports_root`` that holds HTML pages or a ``summary.json``.

    Each entry: ``name``, ``date`` (UTC), ``pages`` (paths relative to ``reports_root``, sorted) and
    ``headline`` (the summary's ``{label: value}``, empty without a summary). Newest first, then by name.
    """
    root = Path(reports_root)
    entries = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        pages = sorted(p for p in folder.rglob("*.html") if p.is_file())
        summary = _read_summary(folder / SUMMARY_FILE)
        if not pages and summary is None:
            continue
        entries.append(
            {
                "name": str(summary.get("run_name") or folder.name) if summary else folder.name,
                "folder": folder.name,
                "date": _run_date(folder, pages, summary),
                "pages": [p.relative_to(root) for p in pages],
                "headline": dict(summary.get("headline", {})) if summary else {},
            }
        )
    entries.sort(key=lambda e: e["name"])
    entries.sort(key=lambda e: e["date"], reverse=True)
    return entries


def write_index(reports_root: str | Path, *, title: str = "hadpo reports") -> Path:
    """Write ``<reports_root>/index.html`` linking every run folder's pages, with date and headline numbers.

    A run folder's ``summary.json`` (written by the dashboard) provides ``run_name``, ``created`` and
    ``headline``; without one the folder name and the pages' modification time are shown. Written atomically;
    returns the path.
    """
    root = Path(reports_root)
    if not root.is_dir():
        raise DataError(Path(root).absolute(), "reports folder not found")
    entries = index_entries(root)
    if not entries:
        body = '<p class="hadpo-muted">No report folders yet.</p>'
    else:
        rows = []
        for e in entries:
            links = "<br>".join(
                f'<a href="{_href(p)}">{html.escape(p.relative_to(e["folder"]).as_posix())}</a>' for p in e["pages"]
            ) or '<span class="hadpo-muted">no pages</span>'
            headline = "<br>".join(
                f"{html.escape(str(k))}: <b>{html.escape(str(v))}</b>" for k, v in e["headline"].items()
            ) or '<span class="hadpo-muted">no summary</span>'
            rows.append(
                f"<tr><td>{html.escape(e['name'])}</td><td>{html.escape(e['date'])}</td>"
                f"<td>{links}</td><td>{headline}</td></tr>"
            )
        body = (
            "<table>\n<thead><tr><th>Run</th><th>Date (UTC)</th><th>Pages</th><th>Headline</th></tr></thead>\n"
            "<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"
        )
    return atomic_write_text(root / INDEX_FILE, page(title, body))
