"""Readers for POPE question files and model answer files.

POPE question files (``coco_pope_{random,popular,adversarial}.json``) carry a ``.json`` extension but are JSON
lines: ``{"question_id": int, "image": str, "text": str, "label": "yes"|"no"}``. Answer files are JSON lines of
``{"question_id": int, "question"?: str, "answer": str}``. The original scorer pairs answers with labels by line
order, so both readers keep file order and reject repeated question ids. A file with no record (empty, or only
blank lines) is an error: it would score or answer nothing and report a count of zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hadpo.data.fields import UniqueIds, jsonl_records

POPE_LABELS = ("yes", "no")


@dataclass(frozen=True)
class PopeQuestion:
    """One POPE question; ``label`` is None in a bare question file."""

    question_id: int
    image: str
    text: str
    label: str | None


@dataclass(frozen=True)
class PopeAnswer:
    """One model answer to a POPE question (raw text, before yes/no parsing)."""

    question_id: int
    answer: str
    question: str | None


def read_pope_questions(path: str | Path, *, require_label: bool = True) -> list[PopeQuestion]:
    """Read a POPE question file in file order; ``require_label=False`` accepts unlabelled questions."""
    ids = UniqueIds("question id")
    out = []
    for fields in jsonl_records(path, "POPE question"):
        question_id = fields.integer("question_id")
        ids.add(question_id, fields, "question_id")
        label = fields.choice("label", POPE_LABELS) if require_label or fields.has("label") else None
        out.append(
            PopeQuestion(
                question_id=question_id,
                image=fields.text("image", nonempty=True),
                text=fields.text("text", nonempty=True),
                label=label,
            )
        )
    return out


def read_pope_answers(path: str | Path) -> list[PopeAnswer]:
    """Read a POPE answer file in file order.

    The answer text may be empty: it is what the model generated (it may stop at once), and POPE's rule counts
    it as yes. The echoed ``question``, when present, must not be blank.
    """
    ids = UniqueIds("question id")
    out = []
    for fields in jsonl_records(path, "POPE answer"):
        question_id = fields.integer("question_id")
        ids.add(question_id, fields, "question_id")
        out.append(
            PopeAnswer(question_id=question_id, answer=fields.text("answer"),
                       question=fields.opt_text("question", nonempty=True))
        )
    return out
