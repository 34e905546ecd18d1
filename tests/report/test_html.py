"""HTML: displayable fragments, standalone pages, the reports index."""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

import pytest

from hadpo.errors import DataError
from hadpo.report.html import THUMBNAIL_PX, HtmlFragment, image_html, note, page, thumbnail_uri, write_index


def test_fragment_displays_and_saves_a_standalone_page(tmp_path: Path) -> None:
    fragment = HtmlFragment("<p>x</p>", title="A & B", css=".a{}")
    assert fragment._repr_html_() == "<style>.a{}</style><h3>A &amp; B</h3><p>x</p>"
    path = fragment.save(tmp_path / "f.html")
    text = path.read_text()
    assert text.startswith("<!DOCTYPE html>") and "<title>A &amp; B</title>" in text
    assert "http" not in text and "<script" not in text


def test_note_escapes_its_message() -> None:
    assert "&lt;missing&gt;" in note("SHR not available: <missing> not found")._repr_html_()
    assert "<title>t&lt;</title>" in page("t<", "")


def _decoded(uri: str):
    from PIL import Image

    header, data = uri.split(",", 1)
    return header, Image.open(io.BytesIO(base64.b64decode(data)))


def test_thumbnail_uri_embeds_a_small_copy(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (800, 400), (1, 2, 3)).save(tmp_path / "photo.jpg")
    Image.new("RGB", (48, 48), (200, 0, 0)).save(tmp_path / "shape.png")
    header, image = _decoded(thumbnail_uri(tmp_path / "photo.jpg") or "")
    assert header == "data:image/jpeg;base64" and image.size == (THUMBNAIL_PX, THUMBNAIL_PX // 2)
    # A tiny drawn image is enlarged (pixels kept sharp) and stays PNG.
    header, image = _decoded(thumbnail_uri(tmp_path / "shape.png", size=96) or "")
    assert header == "data:image/png;base64" and image.size == (96, 96)
    assert image.getpixel((50, 50)) == (200, 0, 0)


def test_thumbnail_of_a_missing_or_broken_file_is_a_placeholder(tmp_path: Path) -> None:
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    assert thumbnail_uri(tmp_path / "broken.jpg") is None and thumbnail_uri(tmp_path / "nope.jpg") is None
    placeholder = image_html(None, alt="image <3>")
    assert 'class="hadpo-noimg"' in placeholder and "image &lt;3&gt;" in placeholder and "<img" not in placeholder
    shown = image_html("data:image/png;base64,AAAA", alt='a "b"')
    assert shown.startswith('<img class="hadpo-thumb" src="data:image/png;base64,AAAA" alt="a &quot;b&quot;"')


def _run(root: Path, name: str, pages: list[str], summary: dict | None = None, mtime: float | None = None) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    for rel in pages:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text("<html></html>")
        if mtime is not None:
            os.utime(folder / rel, (mtime, mtime))
    if summary is not None:
        (folder / "summary.json").write_text(json.dumps(summary))


def test_index_lists_runs_with_date_and_headline(tmp_path: Path) -> None:
    _run(tmp_path, "old", ["03_pope.html"], mtime=1_600_000_000)  # 2020-09-13 12:26 UTC
    _run(tmp_path, "new run", ["08_dashboard.html", "sub/04_shr.html"], summary={
        "run_name": "demo <1>", "created": "2026-01-02T03:04:05+00:00",
        "headline": {"POPE mean F1": "80.00 → 82.00 (+2.00)"},
    })
    _run(tmp_path, "figures-only", [])
    index = write_index(tmp_path)
    text = index.read_text()
    assert index == tmp_path / "index.html"
    assert text.startswith("<!DOCTYPE html>")
    assert '<a href="new%20run/08_dashboard.html">08_dashboard.html</a>' in text
    assert '<a href="new%20run/sub/04_shr.html">sub/04_shr.html</a>' in text
    assert '<a href="old/03_pope.html">03_pope.html</a>' in text
    assert "demo &lt;1&gt;" in text and "2026-01-02 03:04" in text
    assert "POPE mean F1: <b>80.00 → 82.00 (+2.00)</b>" in text
    assert "2020-09-13 12:26" in text
    assert "figures-only" not in text
    assert text.index("demo &lt;1&gt;") < text.index("old/03_pope.html")  # newest first
    # Rewriting the index does not list the index itself.
    assert "index.html" not in write_index(tmp_path).read_text()


def test_index_of_empty_or_missing_folder(tmp_path: Path) -> None:
    assert "No report folders yet" in write_index(tmp_path).read_text()
    with pytest.raises(DataError, match="reports folder not found"):
        write_index(tmp_path / "nope")


def test_index_rejects_a_malformed_summary(tmp_path: Path) -> None:
    _run(tmp_path, "r", ["a.html"], summary={"headline": ["not", "a", "mapping"]})
    with pytest.raises(DataError, match=r"summary\.json") as info:
        write_index(tmp_path)
    assert info.value.field == "headline"
