"""CHAIR's evaluation images: sampled from a COCO instances file with a recorded seed, each with its ground truth.

An image's ground-truth categories are, as the original metric defines them, the union of the categories its
instance annotations name and those its human captions mention (read with the same synonym table as the
descriptions). Every category of the instances file must be one of the table's, so a table that does not fit the
annotations is an error before any description is generated.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from hadpo.data.coco import read_coco_captions, read_coco_instances
from hadpo.errors import DataError
from hadpo.eval.chair.mentions import mentioned_categories
from hadpo.eval.chair.synonyms import SynonymTable


@dataclass(frozen=True)
class ChairImage:
    """One image to describe: its COCO id (as a string, the records' key), file and ground-truth categories."""

    image_id: str
    path: Path
    truth: tuple[str, ...]


def sample_ids(ids: list[int], num_images: int | None, seed: int) -> list[int]:
    """``num_images`` ids drawn without replacement by ``random.Random(seed)`` from the sorted ids, in draw order
    (all of them, sorted, when None)."""
    ordered = sorted(ids)
    if num_images is None:
        return ordered
    return random.Random(seed).sample(ordered, num_images)


def load_chair_images(instances: str | Path, captions: str | Path, images_dir: str | Path, table: SynonymTable, *,
                      num_images: int | None, seed: int) -> list[ChairImage]:
    """The sampled images with their files and ground truth (see the module docstring)."""
    coco = read_coco_instances(instances)
    known = set(table.categories)
    for category in coco.categories:
        if category.name not in known:
            raise DataError(instances, f"category {category.name!r} is not in the synonym table ({table.source})",
                            record=category.category_id, field="name")
    by_image = coco.objects_by_image()
    files = {image.image_id: image.file_name for image in coco.images}
    if num_images is not None and num_images > len(files):
        raise DataError(instances, f"num_images={num_images} but the file lists {len(files)} images")
    chosen = sample_ids(list(files), num_images, seed)
    texts = read_coco_captions(captions)
    out = []
    for image_id in chosen:
        if image_id not in texts:
            raise DataError(captions, "image of the instances file has no captions entry", record=image_id)
        truth = set(by_image[image_id])
        for caption in texts[image_id]:
            truth |= mentioned_categories(caption, table)
        out.append(ChairImage(str(image_id), Path(images_dir) / files[image_id], tuple(sorted(truth))))
    return out
