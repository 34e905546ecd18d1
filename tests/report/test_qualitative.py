"""Side-by-side descriptions: escaping, highlighting by verdict, limit, located errors."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from hadpo.errors import DataError
from hadpo.report.qualitative import read_judgements, side_by_side, side_by_side_files


def test_escapes_text_and_highlights_verdicts(fakes: SimpleNamespace) -> None:
    fragment = side_by_side({"run1": fakes.BASE_SHR}, {"run1": fakes.ADAPTED_SHR}, limit=3)
    page = fragment._repr_html_()
    assert "<b>blue</b>" not in page
    assert '<span class="hal" title="hallucination: because">There is a &lt;b&gt;blue&lt;/b&gt; square &amp; more.' \
        in page
    assert '<span title="correct: because">There is a red circle.</span>' in page
    assert '<span class="cj" title="cannot judge: because">A cyan cross.</span>' in page
    assert '<span class="uj" title="not judged">A yellow triangle.</span>' in page
    assert "1 of 2 sentences hallucinated" in page
    assert "unjudged: no verdicts" in page
    assert ".hadpo-q .hal { background: #f8c4c4; }" in page
    assert page.count("<tr><td>") == 3


def test_limit_and_explicit_images(fakes: SimpleNamespace) -> None:
    page = side_by_side({"run1": fakes.BASE_SHR}, {"run1": fakes.ADAPTED_SHR}, limit=1)._repr_html_()
    assert page.count("<tr><td>") == 1
    page = side_by_side({"run1": fakes.BASE_SHR}, {"run1": fakes.ADAPTED_SHR}, image_ids=["2"])._repr_html_()
    assert "<tr><td>2</td>" in page and "<tr><td>1</td>" not in page
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
