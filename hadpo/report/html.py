"""HTML output: fragments that display in a notebook, standalone pages, image thumbnails embedded as ``data:``
URIs, and the ``reports/index.html`` page.

Everything is self-contained (inline CSS, embedded images, no scripts, no CDN), so a report folder can be copied,
mailed or opened from disk. All text taken from result files is escaped.
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


# ---------------------------------------------------------------------------------------------------- images
#: Longest side of an embedded thumbnail, in pixels.
THUMBNAIL_PX = 160


def thumbnail_uri(path: str | Path, *, size: int = THUMBNAIL_PX) -> str | None:
    """The image at ``path`` scaled to ``size`` pixels on its longest side, as a ``data:`` URI; None when the file
    is missing or cannot be decoded (a report shows a placeholder rather than failing on one image).

    Embedding keeps a report page self-contained (it can be mailed or moved without its images). Photos are
    JPEG-encoded (a few kB each); PNG sources stay PNG, so drawn shapes keep sharp edges. Images smaller than
    ``size`` are enlarged with nearest-neighbour sampling, so a 48-pixel shapes-world image stays legible.
    """
    import base64
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as source:
            source_format = source.format
            image = source.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError):
        return None
    scale = size / max(image.size)
    new_size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    resample = Image.Resampling.NEAREST if scale > 1 else Image.Resampling.LANCZOS
    image = image.resize(new_size, resample)
    buf = io.BytesIO()
    if source_format == "PNG":
        image.save(buf, format="PNG", optimize=True)
        mime = "image/png"
    else:
        image.save(buf, format="JPEG", quality=82)
        mime = "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


def image_html(uri: str | None, *, alt: str, size: int = THUMBNAIL_PX) -> str:
    """An ``<img>`` for a :func:`thumbnail_uri` (escaped ``alt``), or a same-sized placeholder box saying
    the image is not available."""
    alt_text = html.escape(alt, quote=True)
    if uri is None:
        return (f'<div class="hadpo-noimg" style="width:{size}px;height:{size}px">'
                f"image not found<br>{alt_text}</div>")
    return f'<img class="hadpo-thumb" src="{uri}" alt="{alt_text}" style="max-width:{size}px;max-height:{size}px">'


#: CSS for :func:`image_html`.
IMAGE_CSS = (
    ".hadpo-thumb { display: block; border: 1px solid #ccc; }\n"
    ".hadpo-noimg { display: flex; align-items: center; justify-content: center; text-align: center; "
    "border: 1px dashed #bbb; color: #888; font-size: 0.8em; }\n"
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


def _run_commit(summary: Mapping[str, Any] | None) -> str | None:
    """The git commit the run's dashboard ran at (``environment.git_commit`` of its summary), or None."""
    environment = summary.get("environment") if summary else None
    commit = environment.get("git_commit") if isinstance(environment, Mapping) else None
    return commit if isinstance(commit, str) and commit else None


def _commit_html(commit: str | None) -> str:
    """A commit as the index shows it: 12 hex digits (and ``-dirty``), the whole hash on hover."""
    if commit is None:
        return '<span class="hadpo-muted">unknown</span>'
    short = commit[:12] + ("-dirty" if commit.endswith("-dirty") else "")
    return f'<code title="{html.escape(commit, quote=True)}">{html.escape(short)}</code>'


def index_entries(reports_root: str | Path) -> list[dict[str, Any]]:
    """One entry per run folder under ``reports_root`` that holds HTML pages or a ``summary.json``.

    Each entry: ``name``, ``date`` (UTC), ``commit`` (the git commit the summary records, None without one),
    ``pages`` (paths relative to ``reports_root``, sorted) and ``headline`` (the summary's ``{label: value}``, empty
    without a summary). Newest first, then by name.
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
                "commit": _run_commit(summary),
                "pages": [p.relative_to(root) for p in pages],
                "headline": dict(summary.get("headline", {})) if summary else {},
            }
        )
    entries.sort(key=lambda e: e["name"])
    entries.sort(key=lambda e: e["date"], reverse=True)
    return entries


def write_index(reports_root: str | Path, *, title: str = "hadpo reports") -> Path:
    """Write ``<reports_root>/index.html`` linking every run folder's pages, with date, commit and headline numbers.

    A run folder's ``summary.json`` (written by the dashboard) provides ``run_name``, ``created``, the git commit
    (``environment.git_commit``) and ``headline``; without one the folder name and the pages' modification time are
    shown. Written atomically; returns the path.
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
                f"<td>{_commit_html(e['commit'])}</td><td>{links}</td><td>{headline}</td></tr>"
            )
        body = (
            "<table>\n<thead><tr><th>Run</th><th>Date (UTC)</th><th>Commit</th><th>Pages</th><th>Headline</th></tr>"
            "</thead>\n"
            "<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"
        )
    return atomic_write_text(root / INDEX_FILE, page(title, body))
