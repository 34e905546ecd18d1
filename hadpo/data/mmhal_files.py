"""Reader of MMHal-Bench's released question file, ``response_template.json`` (Sun et al., 2023), validated.

The file is a JSON list of 96 records: ``question_type`` (attribute, adversarial, comparison, counting, relation,
environment, holistic, other; the release cycles through them in that order), ``question_topic``, ``image_id``,
``image_src`` (the OpenImages URL), ``image_content`` (a list of the object classes annotated in the image),
``question``, ``gt_answer`` and ``model_answer`` (empty in the template; a model's answers in a filled copy, which
is what the release's evaluation reads). The release's images lie in ``images/`` beside it, each named by the last
component of its ``image_src`` (as the release's evaluation scripts open them). An item is identified by its
position in the file: an ``image_id`` may repeat.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hadpo.data.fields import Fields, describe
from hadpo.data.images import ImageRef
from hadpo.errors import DataError
from hadpo.io import read_json

#: MMHal-Bench's question types, in the order its evaluation reports them. A file may name others (a user's own
#: questions); they are reported after these.
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
    #: The filled copy's answer; None in the template (whose ``model_answer`` is empty).
    model_answer: str | None

    @property
    def image_file(self) -> str:
        """The local file name: the last component of ``image_src``."""
        return image_file_name(self.image_src)


def image_file_name(image_src: str) -> str:
    """The local file name of an ``image_src``: its last path component (``.../8747592697_0ea0ec3d08_o.jpg``)."""
    return image_src.strip().rsplit("/", 1)[-1]


def type_order(types: Iterable[str]) -> list[str]:
    """The distinct ``types`` in report order: MMHal-Bench's own first, in :data:`QUESTION_TYPES` order, then any
    other in alphabetical order."""
    present = set(types)
    return [t for t in QUESTION_TYPES if t in present] + sorted(present - set(QUESTION_TYPES))


def _item(path: Path, index: int, record: object) -> MmhalItem:
    fields = Fields.of(path, record, record=index)
    content = fields.items("image_content")
    for k, value in enumerate(content):
        if not isinstance(value, str):
            raise fields.error(f"expected a list of strings, got {describe(value)} at position {k}", "image_content")
    image_id = fields.get("image_id")
    if not isinstance(image_id, str | int) or isinstance(image_id, bool):
        raise fields.error(f"expected a string, got {describe(image_id)}", "image_id")
    src = fields.text("image_src", nonempty=True)
    if not image_file_name(src):
        raise fields.error(f"no file name in {src!r} (the local image is named by its last component)", "image_src")
    topic = fields.opt_text("question_topic") or ""
    answer = fields.opt_text("model_answer")
    return MmhalItem(index, fields.text("question_type", nonempty=True).strip(), topic, str(image_id), src,
                     tuple(content), fields.text("question", nonempty=True), fields.text("gt_answer", nonempty=True),
                     answer if answer and answer.strip() else None)


def read_mmhal(path: str | Path) -> list[MmhalItem]:
    """Every item of a ``response_template.json`` (or a filled copy), in file order.

    Raises:
        DataError: naming the file, the record (its position) and the field of the first bad value.
    """
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, list) or not data:
        raise DataError(path, f"expected a non-empty JSON list of questions, got {describe(data)}")
    return [_item(path, index, record) for index, record in enumerate(data)]


def image_path(item: MmhalItem, images_dir: str | Path) -> Path:
    """Where ``item``'s image lies locally: ``images_dir / <last component of image_src>``."""
    return Path(images_dir) / item.image_file


def image_refs(items: Sequence[MmhalItem], images_dir: str | Path, source: str | Path) -> list[ImageRef]:
    """Each item's local image as an :class:`~hadpo.data.images.ImageRef` located at its record and ``image_src``
    in ``source`` (the question file), for :func:`hadpo.data.images.preflight_images`: a missing or unreadable
    image is reported naming the file, the record and the field."""
    return [ImageRef(str(image_path(item, images_dir)), record=item.index, field="image_src", file=str(source))
            for item in items]
