"""Side-by-side descriptions: escaping, highlighting by verdict, limit, located errors."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from hadpo.errors import DataError
from hadpo.report.qualitative import (
    highlight_phrases,
    read_judgements,
    shr_image_paths,
    side_by_side,
    side_by_side_files,
)


def test_escapes_text_and_highlights_verdicts(fakes: SimpleNamespace) -> None:
    fragment = side_by_side({"run1": fakes.BASE_SHR}, {"run1": fakes.ADAPTED_SHR}, limit=3)
    page = fragment._repr_html_()
    assert "<b>blue</b>" not in page
    assert '<span class="hal" title="hallucination: because">There is a &lt;b&gt;blue&lt;/b&gt; square &amp; more.' \
        in page
    assert '<span title="correct: because">There is a red circle.</span>' in page
    assert '<span class="cj" title="cannot judge: because">A cyan cross.</span>' in page
    assert '<span class="uj" title="not judged">A yellow triangle.</span>' in page
    assert "1 of 2 sentences hallucinated · 12 words" in page
    assert "unjudged: no verdicts · 1 sentences, 3 words" in page
    assert ".hadpo-q .hal { background: #f8c4c4; }" in page
    assert page.count("<tr><td>") == 3
    # No image files given: a placeholder per image, never a broken <img>.
    assert page.count('class="hadpo-noimg"') == 3 and "<img" not in page


def test_limit_and_explicit_images(fakes: SimpleNamespace) -> None:
    page = side_by_side({"run1": fakes.BASE_SHR}, {"run1": fakes.ADAPTED_SHR}, limit=1)._repr_html_()
    assert page.count("<tr><td>") == 1
    page = side_by_side({"run1": fakes.BASE_SHR}, {"run1": fakes.ADAPTED_SHR}, image_ids=["2"])._repr_html_()
    assert '<div class="meta">image 2</div>' in page and "image 1<" not in page
    with pytest.raises(DataError, match="record '9'"):
        side_by_side({"run1": fakes.BASE_SHR}, {"run1": fakes.ADAPTED_SHR}, image_ids=["9"], base_file="b.json")
    with pytest.raises(ValueError, match="limit"):
        side_by_side({"run1": fakes.BASE_SHR}, {"run1": fakes.ADAPTED_SHR}, limit=0)


def test_labels_are_escaped_and_missing_run_is_located(fakes: SimpleNamespace) -> None:
    page = side_by_side({"run1": fakes.BASE_SHR}, {"run1": fakes.ADAPTED_SHR}, labels=("a<b", "c&d"))._repr_html_()
    assert "<th>a&lt;b</th><th>c&amp;d</th>" in page
    with pytest.raises(DataError, match=r"a\.json.*no judge run 'run1' \(has run2\)"):
        side_by_side({"run2": {}}, {"run1": {}}, base_file="a.json")


def test_files_are_read_and_validated(tmp_path: Path, fakes: SimpleNamespace) -> None:
    base = fakes.write_shr_run(tmp_path / "b", fakes.BASE_SHR) / "judgement.json"
    adapted = fakes.write_shr_run(tmp_path / "a", fakes.ADAPTED_SHR) / "judgement.json"
    assert "A green cross." in side_by_side_files(base, adapted).body
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"run1": {"7": {"model_response": "x", "judgement": [{"judgement": "y"}]}}}))
    with pytest.raises(DataError, match="record '7'") as info:
        read_judgements(bad)
    assert info.value.field == "judgement.model_response"


def test_each_image_is_embedded_as_a_small_thumbnail(tmp_path: Path, fakes: SimpleNamespace) -> None:
    from PIL import Image

    photo = tmp_path / "1.jpg"
    Image.new("RGB", (640, 480), (10, 120, 200)).save(photo)
    page = side_by_side({"run1": fakes.BASE_SHR}, {"run1": fakes.ADAPTED_SHR}, limit=2,
                        images={"1": photo, "2": tmp_path / "missing.jpg"}, thumbnail_px=120)._repr_html_()
    uris = re.findall(r'<img class="hadpo-thumb" src="([^"]+)" alt="image 1"', page)
    assert len(uris) == 1 and uris[0].startswith("data:image/jpeg;base64,")
    with Image.open(io.BytesIO(base64.b64decode(uris[0].split(",", 1)[1]))) as thumb:
        assert thumb.size == (120, 90)  # scaled to the thumbnail size, aspect kept
    assert len(uris[0]) < 20_000  # small enough to embed many in one page
    assert 'class="hadpo-noimg"' in page and "image not found" in page  # image 2: its file is missing


def test_highlight_phrases_marks_each_sentence_once_and_escapes(fakes: SimpleNamespace) -> None:
    text = "A red circle. A <b>blue</b> square. A red circle."
    marked, missing = highlight_phrases(text, [("A <b>blue</b> square.", "hal", "judge: hallucination"),
                                               ("A red circle.", "hal", "x"), ("A green cross.", "hal", "y")])
    assert marked == ('<span class="hal" title="x">A red circle.</span> '
                      '<span class="hal" title="judge: hallucination">A &lt;b&gt;blue&lt;/b&gt; square.</span> '
                      '<span class="hal" title="x">A red circle.</span>')
    assert missing == ["A green cross."]
    assert highlight_phrases("a & b", []) == ("a &amp; b", [])


def test_shr_image_paths_come_from_the_recorded_data_root(tmp_path: Path) -> None:
    (tmp_path / "shr").mkdir()
    (tmp_path / "shr" / "val_images_final.json").write_text(json.dumps([
        {"image_id": 7, "image": {"image_id": 7, "url": "http://x/VG_100K_2/7.jpg", "width": 5, "height": 5}},
        {"image_id": 8},
    ]))
    (tmp_path / "VG").mkdir()
    (tmp_path / "VG" / "image_data.json").write_text(json.dumps([
        {"image_id": 8, "url": "http://x/VG_100K/8.jpg", "width": 5, "height": 5}]))
    assert shr_image_paths(tmp_path, ["7", "8", "9"]) == {"7": tmp_path / "VG" / "VG_100K_2" / "7.jpg",
                                                          "8": tmp_path / "VG" / "VG_100K" / "8.jpg"}
    assert shr_image_paths(tmp_path / "nowhere", ["7"]) == {}  # thumbnails are best effort, never an error
    assert shr_image_paths(None, ["7"]) == {}

