"""Reader of MMHal-Bench's released question file, ``response_template.json`` (Sun et al., 2023), validated.

The file is a JSON list of 96 records: ``question_type`` (attribute, adversarial, comparison, counting, relation,
environment, holistic, other), ``question_topic``, ``image_id``, ``image_src`` (the OpenImages URL), ``image_content``
(the objects annotated in the image), ``question``, ``gt_answer`` and ``model_answer`` (empty in the template; a
model's answers in a filled copy). The release's images lie in ``images/`` beside it, each named by the last
component of its ``image_src``; an item is identified by its position in the file (its ``image_id`` may repeat).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hadpo.data.fields import Fields, describe
from hadpo.errors import DataError
from hadpo.io import read_json

#: MMHal-Bench's question types, in the order its evaluation reports them.
QUESTION_TYPES = ("attribute", "adversarial", "comparison", "counting", "relation", "environment", "holistic", "other")


@dataclass(frozen=True)
class MmhalItem:
    """One question: its position in the file (the item's id), type, image and what the judge is told."""

    index: int
    question_type: str
    question_topic: str
    image_id: str
    image_src: str
    image_content: tuple[str, ...]
    question: str
    gt_answer: str
    model_answer: str | None

    @property
    def image_file(self) -> str:
        """The local file name: the last component of ``image_src``."""
        return self.image_src.rstrip("/").rsplit("/", 1)[-1]


def read_mmhal(path: str | Path) -> list[MmhalItem]:
    """Every item of a ``response_template.json`` (or a filled copy), in file order."""
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, list) or not data:
        raise DataError(path, f"expected a non-empty JSON list of questions, got {describe(data)}")
    out = []
    for index, record in enumerate(data):
        if not isinstance(record, dict):
            raise DataError(path, f"expected a JSON object, got {describe(record)}", record=index)
        fields = Fields(path, record, record=index)
        kind = fields.text("question_type", nonempty=True)
        if kind not in QUESTION_TYPES:
            raise fields.error(f"unknown question type {kind!r} (one of {', '.join(QUESTION_TYPES)})",
                               "question_type")
        content = fields.items("image_content")
        if not all(isinstance(c, str) for c in content):
            raise fields.error("expected a list of strings", "image_content")
        answer = record.get("model_answer")
        if answer is not None and not isinstance(answer, str):
            raise fields.error(f"expected a string, got {describe(answer)}", "model_answer")
        out.append(MmhalItem(index, kind, str(record.get("question_topic") or ""), str(record.get("image_id", "")),
                             fields.text("image_src", nonempty=True), tuple(content),
                             fields.text("question", nonempty=True), fields.text("gt_answer", nonempty=True),
                             answer or None))
    return out
