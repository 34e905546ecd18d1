"""Step a: choose the images to mine.

An image is eligible when its annotation counts fall within the thresholds (objects in ``objects.json``, region
descriptions with a phrase in ``region_descriptions.json``): too few annotations leave the judge blind, too many
mean a cluttered scene. Evaluation images (POPE, SHR) are leaks: they are counted and, by default, excluded. The
eligible images are shuffled with the seed and taken in that order, skipping any whose file is missing, until
``n_images`` are chosen; the same seed and files always give the same selection.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from hadpo.mining.annotations import ImageAnnotations
from hadpo.mining.config import DataConfig
from hadpo.mining.leak import EvalImages, leak_report

#: Selection parameters: a rerun with other values cannot reuse an earlier selection.
SELECTION_KEYS = ("data_root", "n_images", "min_objects", "max_objects", "min_regions", "max_regions", "seed",
                  "exclude_leaks")


def ineligible_reason(image: ImageAnnotations, cfg: DataConfig) -> str | None:
    """Why an image fails the annotation thresholds (a count key of the selection), or None when it passes."""
    if image.num_objects < cfg.min_objects:
        return "too_few_objects"
    if image.num_objects > cfg.max_objects:
        return "too_many_objects"
    if image.num_regions < cfg.min_regions:
        return "too_few_regions"
    if cfg.max_regions is not None and image.num_regions > cfg.max_regions:
        return "too_many_regions"
    return None


def select_images(
    cfg: DataConfig, annotations: Mapping[int, ImageAnnotations], eval_images: EvalImages
) -> dict[str, Any]:
    """The selection record: chosen images (in draw order), counts of what was left out and why, leaks.

    ``counts`` holds ``listed`` (images in ``image_data.json``), one count per threshold failure, ``eligible``,
    ``leaks_excluded``, ``missing_file`` (drawn but not on disk) and ``selected``; ``leaks`` is the
    :func:`~hadpo.mining.leak.leak_report` over the eligible images.
    """
    counts = {"listed": len(annotations), "too_few_objects": 0, "too_many_objects": 0, "too_few_regions": 0,
              "too_many_regions": 0, "eligible": 0, "leaks_excluded": 0, "missing_file": 0, "selected": 0}
    eligible: list[ImageAnnotations] = []
    for image in annotations.values():
        reason = ineligible_reason(image, cfg)
        if reason is not None:
            counts[reason] += 1
            continue
        eligible.append(image)
    counts["eligible"] = len(eligible)
    leaks = leak_report(((im.image_id, im.coco_id) for im in eligible), eval_images, excluded=cfg.exclude_leaks)
    leaking = set(leaks["image_ids"])
    if cfg.exclude_leaks:
        counts["leaks_excluded"] = sum(1 for im in eligible if im.image_id in leaking)
        eligible = [im for im in eligible if im.image_id not in leaking]

    order = list(eligible)
    random.Random(cfg.seed).shuffle(order)
    chosen: list[ImageAnnotations] = []
    missing: list[int] = []
    for image in order:
        if len(chosen) == cfg.n_images:
            break
        if not image.path.is_file():
            missing.append(image.image_id)
            continue
        chosen.append(image)
    counts["missing_file"] = len(missing)
    counts["selected"] = len(chosen)
    return {
        "settings": {key: getattr(cfg, key) for key in SELECTION_KEYS},
        "counts": counts,
        "leaks": leaks,
        "selected_leaks": sum(1 for im in chosen if im.image_id in leaking),
        "missing_files": missing,
        "images": [
            {"image_id": im.image_id, "coco_id": im.coco_id, "path": str(im.path), "objects": im.num_objects,
             "regions": im.num_regions}
            for im in chosen
        ],
    }
