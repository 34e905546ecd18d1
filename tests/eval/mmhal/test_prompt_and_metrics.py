"""MMHal-Bench's reader, judge prompt, rating parser and metrics, worked by hand."""

from __future__ import annotations

import json

import pytest

from hadpo.data.mmhal_files import read_mmhal
from hadpo.errors import DataError
from hadpo.eval.mmhal.metrics import mmhal_metrics
from hadpo.eval.mmhal.prompt import MmhalPrompt, parse_rating, prompt_blocks

ITEM = {"question_type": "counting", "question_topic": "animals", "image_id": "x1",
        "image_src": "https://example.invalid/a/b/123.jpg", "image_content": ["dog", "cat"],
        "question": "How many dogs?", "gt_answer": "One.", "model_answer": ""}


def test_the_question_file_is_read_as_released_and_errors_name_record_and_field(tmp_path):
    path = tmp_path / "response_template.json"
    path.write_text(json.dumps([ITEM, {**ITEM, "question_type": "color"}]))
    with pytest.raises(DataError, match=r"record 1.*field 'question_type'.*unknown question type 'color'"):
        read_mmhal(path)
    path.write_text(json.dumps([ITEM]))
    (item,) = read_mmhal(path)
    assert item.image_file == "123.jpg" and item.model_answer is None and item.image_content == ("dog", "cat")


def test_ratings_are_read_from_the_last_rating_line():
    assert parse_rating("The answer is right.\nRating: 5") == 5
    assert parse_rating("**Rating:** 2") == 2
    assert parse_rating("Rating: 3\nOn reflection... Rating: 4") == 4
    assert parse_rating("Rating: 7") is None and parse_rating("Rating: 10") is None and parse_rating("fine") is None


def test_a_template_file_replaces_the_kits_words_and_is_checked(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("Q {} / GT {} / content {} / A {}")  # positional: image_content, question, gt_answer, answer
    filled = MmhalPrompt.from_file(good).fill(prompt_blocks(("dog",), "How many?", "One.", "Two."))
    assert filled == "Q dog / GT How many? / content One. / A Two."
    bad = tmp_path / "bad.txt"
    bad.write_text("{question} {answer} {regions}")
    with pytest.raises(DataError, match=r"unknown slot\(s\) \{regions\}"):
        MmhalPrompt.from_file(bad)
    kit = MmhalPrompt.kit().fill(prompt_blocks((), "How many?", "One.", ""))
    assert "(none)" in kit and "(empty answer)" in kit and kit.rstrip().endswith('"Rating: N", N from 0 to 6.')


def test_score_per_type_and_hallucination_rate():
    records = {
        "0": {"question_type": "counting", "rating": 6, "status": "judged"},
        "1": {"question_type": "counting", "rating": 2, "status": "judged"},
        "2": {"question_type": "adversarial", "rating": 0, "status": "judged"},
        "3": {"question_type": "holistic", "rating": 4, "status": "judged"},
        "4": {"question_type": "holistic", "rating": None, "status": "unjudged"},
    }
    m = mmhal_metrics(records)
    # judged ratings 6, 2, 0, 4: mean 3.0; below 3: 2 and 0 → 2 / 4; counting (6 + 2) / 2 = 4, adversarial 0, holistic 4
    assert m["score"] == 3.0 and m["hallucination_rate"] == 0.5 and (m["judged"], m["unjudged"]) == (4, 1)
    assert m["score_by_type"] == {"adversarial": 0.0, "counting": 4.0, "holistic": 4.0}
