"""Score POPE answers: parse each answer into yes/no, match it to its label by ``question_id``, count.

Two parsing rules:

- ``pope`` — POPE's ``evaluate.py``, exactly: keep the text before the first ``.``, delete commas, split on
  single spaces; the prediction is "no" when a word is exactly ``No``, ``not`` or ``no``, otherwise "yes".
  It is case-sensitive ("NO" is yes), an empty answer is yes, and "Yes, there is no X" is no. It can never
  fail to parse.
- ``strict`` — the first whitespace-separated word, lower-cased and stripped of surrounding punctuation, must
  be ``yes`` or ``no``; anything else is *unparseable*.

Answers are matched to labels by ``question_id`` — never by line order as POPE's script does — and the two id
sets must be equal: a missing, extra or duplicate id is a :class:`~hadpo.errors.DataError` naming it.

Metrics (positive class "yes"; ``n`` answers, ``u`` of them unparseable, which are never TP/FP/TN/FN)::

    accuracy  = (TP + TN) / n             (an unparseable answer is wrong)
    precision = TP / (TP + FP)
    recall    = TP / (#labels yes)        (= TP / (TP + FN) when u = 0)
    f1        = 2 P R / (P + R)
    yes_ratio = (TP + FP) / n             (share of answers PREDICTED yes, not of yes labels)

A ratio whose denominator is 0 — precision of a model that never says yes, F1 when P + R = 0 — is defined as
0.0, so an always-no model scores precision = recall = F1 = 0 instead of raising. Scoring no answer at all is an
error, not an accuracy of 0.0.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from hadpo.data.pope_files import PopeAnswer, PopeQuestion, read_pope_answers, read_pope_questions
from hadpo.errors import DataError

Rule = Literal["pope", "strict"]
Prediction = Literal["yes", "no"] | None

_NEGATIONS = ("No", "not", "no")


def parse_pope(answer: str) -> Literal["yes", "no"]:
    """POPE's rule (see the module docstring); always yes or no."""
    text = answer.split(".", 1)[0] if "." in answer else answer
    words = text.replace(",", "").split(" ")
    return "no" if any(word in _NEGATIONS for word in words) else "yes"


def parse_strict(answer: str) -> Prediction:
    """First word, lower-cased, stripped of punctuation: yes, no, or None (unparseable)."""
    words = answer.split()
    if not words:
        return None
    first = words[0].strip(string.punctuation).lower()
    return first if first in ("yes", "no") else None  # type: ignore[return-value]


RULES: dict[str, Callable[[str], Prediction]] = {"pope": parse_pope, "strict": parse_strict}


def get_rule(name: str) -> Callable[[str], Prediction]:
    """The parser of a rule name (``pope`` or ``strict``)."""
    try:
        return RULES[name]
    except KeyError:
        raise ValueError(f"unknown POPE answer rule {name!r}; expected one of {', '.join(RULES)}") from None


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def compute_metrics(predictions: Sequence[Prediction], labels: Sequence[str]) -> dict[str, Any]:
    """Confusion counts and ratios for aligned ``predictions`` and ``labels`` (see the module docstring).

    Raises ValueError for no labels: every ratio would be 0/0, not a score.
    """
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions for {len(labels)} labels")
    if not labels:
        raise ValueError("no answers to score: POPE metrics need at least one labelled question")
    tp = fp = tn = fn = unparseable = 0
    for pred, label in zip(predictions, labels, strict=True):
        if pred is None:
            unparseable += 1
        elif pred == "yes":
            tp, fp = (tp + 1, fp) if label == "yes" else (tp, fp + 1)
        else:
            fn, tn = (fn + 1, tn) if label == "yes" else (fn, tn + 1)
    n = len(labels)
    label_yes = sum(1 for label in labels if label == "yes")
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, label_yes)
    return {
        "n": n,
        "TP": tp,
        "FP": fp,
        "TN": tn,
        "FN": fn,
        "unparseable": unparseable,
        "accuracy": _ratio(tp + tn, n),
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * precision * recall, precision + recall),
        "yes_ratio": _ratio(tp + fp, n),
    }


def match_answers(
    answers: Sequence[PopeAnswer],
    questions: Sequence[PopeQuestion],
    *,
    answers_file: str | Path = "<answers>",
    labels_file: str | Path = "<labels>",
) -> list[tuple[PopeQuestion, PopeAnswer]]:
    """Pair each question with its answer by ``question_id``, in question order.

    A duplicate answer id, an answer whose id is not a question, or a question without an answer is a
    :class:`DataError` naming the id. (Reading a file already rejects a duplicate, with both line numbers.)
    """
    by_id: dict[int, PopeAnswer] = {}
    known = {q.question_id for q in questions}
    for ans in answers:
        if ans.question_id in by_id:
            raise DataError(
                answers_file, f"duplicate answer for question_id {ans.question_id}",
                record=ans.question_id, field="question_id",
            )
        if ans.question_id not in known:
            raise DataError(
                answers_file, f"question_id {ans.question_id} is not in the label file {labels_file}",
                record=ans.question_id, field="question_id",
            )
        by_id[ans.question_id] = ans
    missing = [q.question_id for q in questions if q.question_id not in by_id]
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
        raise DataError(
            answers_file,
            f"no answer for {len(missing)} question(s) of {labels_file}: question_id {shown}",
            record=missing[0], field="question_id",
        )
    return [(q, by_id[q.question_id]) for q in questions]


def score_answers(
    answers: Sequence[PopeAnswer],
    questions: Sequence[PopeQuestion],
    *,
    rule: Rule | str = "pope",
    answers_file: str | Path = "<answers>",
    labels_file: str | Path = "<labels>",
) -> dict[str, Any]:
    """Metrics of ``answers`` against the labels of ``questions`` under ``rule`` (ids matched exactly).

    No question (an empty label file, or a limit of 0) is a :class:`DataError` naming the label file.
    """
    parse = get_rule(rule)
    if not questions:
        raise DataError(labels_file, "no records: there is no question to score")
    pairs = match_answers(answers, questions, answers_file=answers_file, labels_file=labels_file)
    unlabelled = next((q for q, _ in pairs if q.label is None), None)
    if unlabelled is not None:
        raise DataError(labels_file, "question has no label", record=unlabelled.question_id, field="label")
    metrics = compute_metrics([parse(a.answer) for _, a in pairs], [str(q.label) for q, _ in pairs])
    return {"rule": rule, **metrics}


def score_files(answers_path: str | Path, labels_path: str | Path, *, rule: Rule | str = "pope",
                limit: int | None = None) -> dict[str, Any]:
    """Read an answer file and a POPE question (label) file and score them (see :func:`score_answers`).

    With ``limit`` only the first ``limit`` questions of the label file are in scope (as ``pope-run`` with a
    limit answers them), and answers to later ones are set aside.
    """
    if limit is not None and limit < 1:
        # questions[:0] would score nothing, and a negative limit would silently drop the last questions
        raise ValueError(f"limit must be >= 1 or None, got {limit}")
    answers, questions = read_pope_answers(answers_path), read_pope_questions(labels_path)
    if limit is not None:
        questions = questions[:limit]
        in_scope = {q.question_id for q in questions}
        answers = [a for a in answers if a.question_id in in_scope]
    return score_answers(answers, questions, rule=rule, answers_file=answers_path, labels_file=labels_path)
