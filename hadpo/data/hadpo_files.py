"""Readers for HA-DPO preference data: ``desc_data.json`` and ``pope_data.json``.

``desc_data.json`` comes in two shapes in the released data, so both are accepted:

- LLaVA-1.5: a JSON object keyed by the image id (a string) → ``{"chosen": [...], "rejected": [...], ...}``;
- MiniGPT-4: a JSON list of ``{"image_id", "chosen": [...], "rejected": [...]}``.

``pope_data.json`` is a list of QA preference records; the dispreferred response is under ``reject`` (LLaVA,
MiniGPT-4) or ``rejected`` (InstructBLIP). Records keep file order because the training sampler replays a seeded
random stream in that order.

Both readers accept a file holding no record (``{}`` or ``[]``) by default: mining writes exactly that when it
found nothing of one kind, and a training set may come from one file alone; the trainer refuses zero pairs in
total. ``allow_empty=False`` (what ``hadpo validate`` uses) makes such a file an error. A key repeated in the
``desc_data.json`` object is always an error (see :func:`hadpo.io.read_json`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hadpo.data.fields import Fields, UniqueIds, describe, list_records, no_records
from hadpo.errors import DataError
from hadpo.io import read_json


@dataclass(frozen=True)
class DescRecord:
    """One image's description candidates: hallucination-free rewrites and hallucinated ones."""

    image_id: str
    chosen: tuple[str, ...]
    rejected: tuple[str, ...]


@dataclass(frozen=True)
class PopeRecord:
    """One QA preference record. ``correct=True`` marks a question the model already got right (not trained)."""

    image_id: str
    question: str
    answer: str | None
    chosen: str
    rejected: str
    correct: bool | None


def read_desc_data(path: str | Path, *, allow_empty: bool = True) -> list[DescRecord]:
    """Read ``desc_data.json`` (dict keyed by image id, or list of records) in file order.

    ``allow_empty=False`` rejects a file with no record (see the module docstring for why it is allowed).
    """
    path = Path(path)
    data = read_json(path)
    if isinstance(data, dict):
        if not data and not allow_empty:
            raise no_records(path, "description records", ", got an empty object")
        return [_desc(Fields.of(path, value, record=key, what="an object with 'chosen' and 'rejected'"), key)
                for key, value in data.items()]
    if isinstance(data, list):
        ids = UniqueIds("image id")
        out = []
        for fields in list_records(path, data, "description records", allow_empty=allow_empty):
            image_id = fields.ident("image_id")
            ids.add(image_id, fields, "image_id")
            out.append(_desc(fields, image_id))
        return out
    raise DataError(path, f"expected a JSON object keyed by image id or a list of records, got {describe(data)}")


def _desc(fields: Fields, image_id: str) -> DescRecord:
    if not image_id.strip():
        raise fields.error("image id must not be empty")
    return DescRecord(image_id=image_id, chosen=fields.strings("chosen"), rejected=fields.strings("rejected"))


def read_pope_data(path: str | Path, *, allow_empty: bool = True) -> list[PopeRecord]:
    """Read ``pope_data.json`` (list of QA preference records) in file order.

    ``allow_empty=False`` rejects a file with no record (see the module docstring for why it is allowed).
    """
    path = Path(path)
    out = []
    for fields in list_records(path, read_json(path), "QA preference records", allow_empty=allow_empty):
        has_reject, has_rejected = fields.has("reject"), fields.has("rejected")
        if has_reject and has_rejected:
            raise fields.error("both 'reject' and 'rejected' are present; keep one", "rejected")
        if not (has_reject or has_rejected):
            raise fields.error("missing required field (or its alias 'reject')", "rejected")
        out.append(
            PopeRecord(
                image_id=fields.ident("image_id"),
                question=fields.text("question", nonempty=True),
                answer=fields.opt_text("answer", nonempty=True),
                chosen=fields.text("chosen", nonempty=True),
                rejected=fields.text("reject" if has_reject else "rejected", nonempty=True),
                correct=fields.opt_boolean("correct"),
            )
        )
    return out
