"""Scoring POPE answers: both parsing rules, metrics worked by hand, id matching, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hadpo.cli import main
from hadpo.data.pope_files import PopeAnswer, PopeQuestion
from hadpo.errors import DataError
from hadpo.eval.pope.score import compute_metrics, parse_pope, parse_strict, score_answers, score_files


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Yes, there is no dog in the image.", "no"),  # "no" is a word of the first sentence
        ("Yes, there is a dog. There is no cat.", "yes"),  # only the first sentence counts
        ("No</s>", "yes"),  # the original kept "</s>": "No</s>" is not the word "No"
        ("No", "no"),
        ("No.", "no"),
        ("no, it is not", "no"),
        ("NO", "yes"),  # case-sensitive
        ("Not at all", "yes"),  # "Not" is not in POPE's list
        ("", "yes"),  # empty counts as yes
        ("Yes", "yes"),
        ("No\nthere is none", "yes"),  # split on single spaces only: "No\nthere" is one word
    ],
)
def test_pope_rule(answer: str, expected: str) -> None:
    assert parse_pope(answer) == expected


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Yes, there is no dog.", "yes"),
        ("NO.", "no"),
        ("  yes", "yes"),
        ("No</s>", None),
        ("", None),
        ("There is a dog.", None),
        ('"No," it said', "no"),
    ],
)
def test_strict_rule(answer: str, expected: str | None) -> None:
    assert parse_strict(answer) == expected


def _q(i: int, label: str) -> PopeQuestion:
    return PopeQuestion(i, f"img{i // 2}.jpg", f"Is there a thing{i} in the image?", label)


def _a(i: int, answer: str) -> PopeAnswer:
    return PopeAnswer(question_id=i, answer=answer, question=None)


def test_metrics_by_hand() -> None:
    """Labels y y y n n n; predictions y y n y n n -> TP 2, FN 1, FP 1, TN 2.

    accuracy 4/6, precision 2/3, recall 2/3, F1 2/3, yes_ratio 3/6.
    """
    m = compute_metrics(["yes", "yes", "no", "yes", "no", "no"], ["yes", "yes", "yes", "no", "no", "no"])
    assert (m["TP"], m["FN"], m["FP"], m["TN"], m["n"], m["unparseable"]) == (2, 1, 1, 2, 6, 0)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["yes_ratio"] == pytest.approx(0.5)


def test_published_llava_random_row_recomputes() -> None:
    """HA-DPO's LLaVA-1.5 random baseline: TP 1360, FP 172 of 1500/1500 -> 89.60 / 88.77 / 90.66 / 89.70 / 51.06."""
    preds = ["yes"] * 1360 + ["no"] * 140 + ["yes"] * 172 + ["no"] * 1328
    labels = ["yes"] * 1500 + ["no"] * 1500
    m = compute_metrics(preds, labels)
    got = [int(100 * 100 * m[k]) / 100 for k in ("accuracy", "precision", "recall", "f1", "yes_ratio")]
    assert got == [89.60, 88.77, 90.66, 89.70, 51.06]


def test_always_yes_and_always_no_models_do_not_divide_by_zero() -> None:
    labels = ["yes", "no", "yes", "no"]
    always_yes = compute_metrics(["yes"] * 4, labels)
    assert (always_yes["precision"], always_yes["recall"], always_yes["yes_ratio"]) == (0.5, 1.0, 1.0)
    assert always_yes["f1"] == pytest.approx(2 / 3) and always_yes["accuracy"] == 0.5
    always_no = compute_metrics(["no"] * 4, labels)
    assert (always_no["precision"], always_no["recall"], always_no["f1"], always_no["yes_ratio"]) == (0, 0, 0, 0)
    assert always_no["accuracy"] == 0.5


def test_no_answers_is_an_error_not_accuracy_zero() -> None:
    # This used to return accuracy 0.0 with n = 0; an empty answer list is no score at all.
    with pytest.raises(ValueError, match="no answers to score"):
        compute_metrics([], [])
    with pytest.raises(DataError, match="no question to score") as err:
        score_answers([], [], answers_file="a.jsonl", labels_file="l.json")
    assert err.value.file == "l.json"


def test_unparseable_answers_are_wrong_and_not_counted_yes() -> None:
    qs = [_q(1, "yes"), _q(2, "no"), _q(3, "yes"), _q(4, "no")]
    ans = [_a(1, "Yes."), _a(2, "Maybe."), _a(3, "I cannot tell"), _a(4, "No")]
    m = score_answers(ans, qs, rule="strict")
    assert (m["TP"], m["FP"], m["TN"], m["FN"], m["unparseable"]) == (1, 0, 1, 0, 2)
    assert m["accuracy"] == 0.5 and m["recall"] == 0.5 and m["precision"] == 1.0 and m["yes_ratio"] == 0.25
    assert score_answers(ans, qs, rule="pope")["unparseable"] == 0


def test_answers_are_matched_by_id_not_by_order() -> None:
    qs = [_q(1, "yes"), _q(2, "no")]
    m = score_answers([_a(2, "No"), _a(1, "Yes")], qs)
    assert (m["TP"], m["TN"]) == (1, 1)


@pytest.mark.parametrize(
    ("answers", "message", "record"),
    [
        ([_a(1, "Yes")], "no answer for 1 question", 2),
        ([_a(1, "Yes"), _a(2, "No"), _a(9, "No")], "question_id 9 is not in the label file", 9),
        ([_a(1, "Yes"), _a(1, "No"), _a(2, "No")], "duplicate answer for question_id 1", 1),
    ],
)
def test_missing_extra_duplicate_ids_are_named(answers: list[PopeAnswer], message: str, record: int) -> None:
    with pytest.raises(DataError, match=message) as err:
        score_answers(answers, [_q(1, "yes"), _q(2, "no")], answers_file="a.jsonl", labels_file="l.json")
    assert err.value.record == record and err.value.field == "question_id" and err.value.file == "a.jsonl"


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture()
def files(tmp_path: Path) -> tuple[Path, Path]:
    labels = _write(tmp_path / "coco_pope_random.json", [
        {"question_id": i, "image": "COCO_val2014_000000000001.jpg", "text": "Is there a cat in the image?",
         "label": "yes" if i % 2 else "no"} for i in range(1, 5)
    ])
    answers = _write(tmp_path / "answers.jsonl", [
        {"question_id": 4, "question": "q", "answer": "No, there is not."},
        {"question_id": 1, "question": "q", "answer": "Yes, there is a cat."},
        {"question_id": 2, "question": "q", "answer": "Yes"},
        {"question_id": 3, "question": "q", "answer": "NO"},
    ])
    return answers, labels


def test_score_files(files: tuple[Path, Path]) -> None:
    m = score_files(*files)
    assert (m["TP"], m["FP"], m["TN"], m["FN"], m["rule"]) == (2, 1, 1, 0, "pope")
    strict = score_files(*files, rule="strict")
    assert (strict["TP"], strict["FP"], strict["TN"], strict["FN"]) == (1, 1, 1, 1)


def test_duplicate_in_a_file_names_its_line(files: tuple[Path, Path]) -> None:
    answers, labels = files
    with answers.open("a") as fh:
        fh.write(json.dumps({"question_id": 2, "answer": "No"}) + "\n")
    with pytest.raises(DataError, match="duplicate") as err:
        score_files(answers, labels)
    assert err.value.line == 5 and err.value.field == "question_id"


def test_cli_prints_one_json_object(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    answers, labels = files
    assert main(["pope-score", "--answers", str(answers), "--labels", str(labels), "--rule", "strict"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    metrics = json.loads(out[0])
    assert set(metrics) >= {"TP", "FP", "TN", "FN", "accuracy", "precision", "recall", "f1", "yes_ratio",
                            "unparseable", "n"}
    assert metrics["unparseable"] == 0 and metrics["n"] == 4


def test_cli_error_is_one_line_and_exit_1(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    answers, labels = files
    _write(answers, [{"question_id": 1, "answer": "Yes"}])
    assert main(["pope-score", "--answers", str(answers), "--labels", str(labels)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("hadpo pope-score: error: ") and "question_id 2, 3, 4" in err and "\n" not in err


@pytest.mark.parametrize("content", ["", "\n  \n\t\n"])
@pytest.mark.parametrize("which", ["answers", "labels"])
def test_empty_or_blank_file_is_an_error_naming_it(files: tuple[Path, Path], content: str, which: str) -> None:
    answers, labels = files
    empty = answers if which == "answers" else labels
    empty.write_text(content)
    with pytest.raises(DataError, match="no records") as err:
        score_files(answers, labels)
    assert err.value.file == str(empty)


@pytest.mark.parametrize("limit", [0, -1])
def test_a_limit_below_one_is_refused(files: tuple[Path, Path], limit: int) -> None:
    with pytest.raises(ValueError, match="limit must be >= 1"):
        score_files(*files, limit=limit)


def test_cli_limit_scores_the_first_questions(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """--limit N scores the first N label questions (answers to later ones, from a fuller run, set aside), as
    pope-run -p limit N does; without it the same partial answer file is an error."""
    answers, labels = files
    _write(answers, [{"question_id": 1, "answer": "Yes"}, {"question_id": 2, "answer": "Yes"},
                     {"question_id": 4, "answer": "No"}])
    assert main(["pope-score", "--answers", str(answers), "--labels", str(labels), "--limit", "2"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert (metrics["n"], metrics["TP"], metrics["FP"]) == (2, 1, 1)
    assert main(["pope-score", "--answers", str(answers), "--labels", str(labels)]) == 1
