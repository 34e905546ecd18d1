"""POPE question and answer files (JSON lines): records, labels and located errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hadpo.data.pope_files import PopeAnswer, PopeQuestion, read_pope_answers, read_pope_questions
from hadpo.errors import DataError


def _lines(path: Path, *records: object) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _q(question_id: int, label: str | None = "yes", **extra: object) -> dict:
    rec = {"question_id": question_id, "image": "COCO_val2014_000000000042.jpg", "text": "Is there a cat in the image?"}
    if label is not None:
        rec["label"] = label
    return {**rec, **extra}


def test_questions_in_file_order(tmp_path: Path) -> None:
    path = _lines(tmp_path / "coco_pope_random.json", _q(2, "no"), _q(1, "yes", image_id=42))
    assert read_pope_questions(path) == [
        PopeQuestion(2, "COCO_val2014_000000000042.jpg", "Is there a cat in the image?", "no"),
        PopeQuestion(1, "COCO_val2014_000000000042.jpg", "Is there a cat in the image?", "yes"),
    ]


def test_bare_questions_need_no_label(tmp_path: Path) -> None:
    path = _lines(tmp_path / "questions.json", _q(1, None), _q(2, "no"))
    assert [q.label for q in read_pope_questions(path, require_label=False)] == [None, "no"]
    with pytest.raises(DataError, match="missing required field") as err:
        read_pope_questions(path)
    assert (err.value.line, err.value.field) == (1, "label")


@pytest.mark.parametrize(
    ("bad", "field", "reason"),
    [
        (_q(1), "question_id", "duplicate question id 1"),
        (_q(2, "Yes"), "label", "expected one of 'yes', 'no', got str 'Yes'"),
        (_q("2"), "question_id", "expected an integer"),  # type: ignore[arg-type]
        (_q(2, text=""), "text", "non-empty string"),
        (_q(2, text=" \n\t"), "text", "non-empty string"),
        (_q(2**63), "question_id", "does not fit in 64 bits"),
        ({"question_id": 2, "text": "Is there a cat?", "label": "no"}, "image", "missing required field"),
    ],
)
def test_question_errors_name_the_line(tmp_path: Path, bad: dict, field: str, reason: str) -> None:
    path = _lines(tmp_path / "coco_pope_adversarial.json", _q(1), bad)
    with pytest.raises(DataError, match=reason) as err:
        read_pope_questions(path)
    assert (err.value.line, err.value.field) == (2, field)
    assert str(err.value).startswith(f"{path}, line 2, field '{field}': ")


def test_question_file_bad_json_and_wrong_container(tmp_path: Path) -> None:
    path = tmp_path / "coco_pope_popular.json"
    path.write_text(json.dumps(_q(1)) + "\n" + '{"question_id": 2,\n')
    with pytest.raises(DataError, match="line 2: invalid JSON"):
        read_pope_questions(path)
    # a whole-file JSON list is not the POPE layout
    path.write_text(json.dumps([_q(1)]) + "\n")
    with pytest.raises(DataError, match="line 1: expected a JSON object"):
        read_pope_questions(path)


def test_answers(tmp_path: Path) -> None:
    path = _lines(
        tmp_path / "pope_random.jsonl",
        {"question_id": 1, "question": "Is there a cat?", "answer": "Yes, there is.</s>"},
        {"question_id": 2, "answer": ""},
    )
    assert read_pope_answers(path) == [
        PopeAnswer(1, "Yes, there is.</s>", "Is there a cat?"),
        PopeAnswer(2, "", None),
    ]


@pytest.mark.parametrize(
    ("bad", "field", "reason"),
    [
        ({"question_id": 1, "answer": "no"}, "question_id", "duplicate question id 1"),
        ({"question_id": 2}, "answer", "missing required field"),
        ({"question_id": 2, "answer": ["no"]}, "answer", "expected a string"),
        ({"question_id": 2, "answer": "no", "question": 5}, "question", "expected a string"),
        ({"question_id": 2, "answer": "no", "question": "  "}, "question", "non-empty string"),
        ({"question_id": -(2**63) - 1, "answer": "no"}, "question_id", "does not fit in 64 bits"),
    ],
)
def test_answer_errors(tmp_path: Path, bad: dict, field: str, reason: str) -> None:
    path = _lines(tmp_path / "answers.jsonl", {"question_id": 1, "answer": "yes"}, bad)
    with pytest.raises(DataError, match=reason) as err:
        read_pope_answers(path)
    assert (err.value.line, err.value.field) == (2, field)
    assert "answers.jsonl, line 2" in str(err.value)


@pytest.mark.parametrize("reader", [read_pope_questions, read_pope_answers])
@pytest.mark.parametrize("content", ["", "\n\n", "  \t\n"])
def test_empty_or_blank_file_has_no_records(tmp_path: Path, reader, content: str) -> None:
    path = tmp_path / "coco_pope_random.json"
    path.write_text(content)
    with pytest.raises(DataError, match="no records: expected at least one of POPE") as err:
        reader(path)
    assert err.value.file == str(path)


@pytest.mark.parametrize(
    ("line", "field", "reason"),
    [
        (b'{"question_id": 2, "question_id": 3, "answer": "no"}', "question_id", "duplicate key 'question_id'"),
        (b'{"question_id": NaN, "answer": "no"}', None, "non-finite number NaN"),
        (b'{"question_id": 1e999, "answer": "no"}', None, "number 1e999"),
        (b'{"question_id": 2, "answer": "n\xf6"}', None, "not UTF-8 text: byte 0xf6 at column 32"),
    ],
)
def test_raw_line_problems_name_file_and_line(tmp_path: Path, line: bytes, field: str | None, reason: str) -> None:
    path = tmp_path / "answers.jsonl"
    path.write_bytes(b'{"question_id": 1, "answer": "yes"}\n' + line + b"\n")
    with pytest.raises(DataError, match=reason) as err:
        read_pope_answers(path)
    assert (err.value.file, err.value.line, err.value.field) == (str(path), 2, field)
    assert str(err.value).startswith(f"{path}, line 2")
