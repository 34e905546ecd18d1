"""Which Visual Genome images are evaluation images, so that no training pair is built on one.

Visual Genome contains about 50K COCO images and records each one's ``coco_id`` in ``image_data.json``. POPE asks
about COCO val2014 images, and SHR evaluates on VG images listed in ``shr/val_images_final.json``; training on
either inflates the evaluation. The evaluation set is read from the files under the data root:

- POPE: the COCO ids of the images in the POPE question files that exist (``COCO_val2014_<id>.<ext>``). When no
  question file exists yet, every image of COCO ``instances_val2014.json`` counts instead, since a POPE set
  built later may draw any of them;
- SHR: the image ids of ``val_images_final.json``, when it exists.

A VG image whose ``coco_id`` is a POPE image, or whose id is an SHR image, is a leak. Which sources were found is
part of the report, so a missing evaluation file shows up instead of reading as "no leaks".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hadpo.data.layout import POPE_SETS, DataLayout
from hadpo.errors import DataError

_COCO_FILE_ID = re.compile(r"(\d+)\.[A-Za-z0-9]+$")


@dataclass(frozen=True)
class EvalImages:
    """The evaluation images found under a data root, and the files they were read from."""

    pope_coco_ids: frozenset[int]
    shr_image_ids: frozenset[int]
    sources: dict[str, list[str]] = field(default_factory=dict)

    def leak_kinds(self, image_id: int, coco_id: int | None) -> list[str]:
        """``["pope"]``, ``["shr"]``, both or none, for a VG image."""
        kinds = []
        if coco_id is not None and coco_id in self.pope_coco_ids:
            kinds.append("pope")
        if image_id in self.shr_image_ids:
            kinds.append("shr")
        return kinds


def coco_id_of(file_name: str) -> int | None:
    """The COCO id in an image file name (``COCO_val2014_000000310196.jpg`` → 310196), or None."""
    match = _COCO_FILE_ID.search(file_name)
    return int(match.group(1)) if match else None


def load_eval_images(data_root: str | Path) -> EvalImages:
    """Read the POPE and SHR evaluation images under ``data_root`` (see the module docstring)."""
    from hadpo.data.pope_files import read_pope_questions
    from hadpo.data.shr_files import read_shr_images

    layout = DataLayout(data_root)
    pope: set[int] = set()
    sources: dict[str, list[str]] = {"pope": [], "shr": []}
    for pope_set in POPE_SETS:
        path = layout.pope_file(pope_set)
        if not path.is_file():
            continue
        sources["pope"].append(str(path))
        for q in read_pope_questions(path, require_label=False):
            coco_id = coco_id_of(q.image)
            if coco_id is None:
                raise DataError(path, f"cannot read a COCO id from image name {q.image!r}", record=q.question_id,
                                field="image")
            pope.add(coco_id)
    if not sources["pope"] and layout.coco_instances.is_file():
        from hadpo.data.coco import read_coco_instances

        sources["pope"].append(str(layout.coco_instances))
        pope.update(image.image_id for image in read_coco_instances(layout.coco_instances).images)
    shr: set[int] = set()
    if layout.shr_val_images.is_file():
        sources["shr"].append(str(layout.shr_val_images))
        shr.update(entry.image_id for entry in read_shr_images(layout.shr_val_images))
    return EvalImages(frozenset(pope), frozenset(shr), sources)


def leak_report(
    images: Iterable[tuple[int, int | None]], eval_images: EvalImages, *, excluded: bool
) -> dict[str, Any]:
    """Counts of leaks among ``(image_id, coco_id)`` candidates, and the leaking ids (sorted).

    ``excluded`` records whether the caller dropped them (``exclude_leaks``).
    """
    pope_ids, shr_ids = [], []
    checked = 0
    for image_id, coco_id in images:
        checked += 1
        kinds = eval_images.leak_kinds(image_id, coco_id)
        if "pope" in kinds:
            pope_ids.append(image_id)
        if "shr" in kinds:
            shr_ids.append(image_id)
    leaking = sorted(set(pope_ids) | set(shr_ids))
    return {
        "checked": checked,
        "pope": len(pope_ids),
        "shr": len(shr_ids),
        "total": len(leaking),
        "excluded": excluded,
        "image_ids": leaking,
        "sources": {k: list(v) for k, v in eval_images.sources.items()},
        "missing_sources": [k for k, v in eval_images.sources.items() if not v],
    }


def leaking_ids(report: Mapping[str, Any]) -> set[int]:
    """The leaking image ids of a :func:`leak_report`."""
    return {int(i) for i in report["image_ids"]}
