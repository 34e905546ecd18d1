"""Reader for COCO ``instances_*.json``: images, object annotations and categories, cross-checked.

POPE builds its questions from which categories are annotated in each image, so every annotation must point at
an image and a category that exist; a dangling id is an error rather than a silently dropped object. None of the
three lists may be empty (there would be nothing to ask about), and a box lies inside its image's coordinates:
``x``, ``y`` >= 0 and a positive width and height.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hadpo.data.fields import MAX_PIXELS, Fields, UniqueIds, describe
from hadpo.errors import DataError
from hadpo.io import read_json


@dataclass(frozen=True)
class CocoImage:
    """One image record; ``file_name`` is relative to the image folder (e.g. ``val2014/``)."""

    image_id: int
    file_name: str
    width: int
    height: int


@dataclass(frozen=True)
class CocoCategory:
    """One object category."""

    category_id: int
    name: str
    supercategory: str | None


@dataclass(frozen=True)
class CocoAnnotation:
    """One object instance: its image, category and ``[x, y, w, h]`` box in pixels."""

    annotation_id: int
    image_id: int
    category_id: int
    bbox: tuple[float, float, float, float]
    iscrowd: bool


@dataclass(frozen=True)
class CocoInstances:
    """The three lists of an instances file, in file order."""

    images: tuple[CocoImage, ...]
    annotations: tuple[CocoAnnotation, ...]
    categories: tuple[CocoCategory, ...]

    def category_names(self) -> dict[int, str]:
        """Category id → name."""
        return {c.category_id: c.name for c in self.categories}

    def objects_by_image(self) -> dict[int, list[str]]:
        """Image id → distinct category names annotated in it (first-annotation order); every image is a key."""
        names = self.category_names()
        out: dict[int, list[str]] = {image.image_id: [] for image in self.images}
        for ann in self.annotations:
            name = names[ann.category_id]
            if name not in out[ann.image_id]:
                out[ann.image_id].append(name)
        return out


def read_coco_instances(path: str | Path) -> CocoInstances:
    """Read and cross-check a COCO instances file."""
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict):
        raise DataError(path, f"expected a JSON object with images, annotations and categories, got {describe(data)}")
    top = Fields(path, data)

    images: list[CocoImage] = []
    image_ids = UniqueIds("image id")
    for fields in top.objects("images", nonempty=True):
        image = _image(fields)
        image_ids.add(image.image_id, fields, "id")
        images.append(image)

    categories: list[CocoCategory] = []
    category_ids = UniqueIds("category id")
    for fields in top.objects("categories", nonempty=True):
        category = _category(fields)
        category_ids.add(category.category_id, fields, "id")
        categories.append(category)

    annotations: list[CocoAnnotation] = []
    annotation_ids = UniqueIds("annotation id")
    for fields in top.objects("annotations", nonempty=True):
        ann = _annotation(fields)
        annotation_ids.add(ann.annotation_id, fields, "id")
        if ann.image_id not in image_ids:
            raise fields.error(f"image id {ann.image_id} is not in 'images'", "image_id")
        if ann.category_id not in category_ids:
            raise fields.error(f"category id {ann.category_id} is not in 'categories'", "category_id")
        annotations.append(ann)
    return CocoInstances(images=tuple(images), annotations=tuple(annotations), categories=tuple(categories))


def _image(fields: Fields) -> CocoImage:
    return CocoImage(
        image_id=fields.integer("id"),
        file_name=fields.text("file_name", nonempty=True),
        width=fields.integer("width", minimum=1, maximum=MAX_PIXELS),
        height=fields.integer("height", minimum=1, maximum=MAX_PIXELS),
    )


def _category(fields: Fields) -> CocoCategory:
    return CocoCategory(
        category_id=fields.integer("id"),
        name=fields.text("name", nonempty=True),
        supercategory=fields.opt_text("supercategory"),
    )


def _annotation(fields: Fields) -> CocoAnnotation:
    bbox = fields.items("bbox")
    if len(bbox) != 4:
        raise fields.error(f"expected [x, y, width, height], got a list of {len(bbox)}", "bbox")
    x, y, w, h = fields.box([f"bbox[{i}]" for i in range(4)], bbox, origin_minimum=0)
    # COCO writes iscrowd as 0/1; a JSON boolean is accepted too.
    crowd = fields.obj.get("iscrowd", 0)
    if crowd not in (0, 1) or isinstance(crowd, float):
        raise fields.error(f"expected 0 or 1, got {describe(crowd)}", "iscrowd")
    return CocoAnnotation(
        annotation_id=fields.integer("id"),
        image_id=fields.integer("image_id"),
        category_id=fields.integer("category_id"),
        bbox=(x, y, w, h),
        iscrowd=bool(crowd),
    )


def read_coco_captions(path: str | Path) -> dict[int, list[str]]:
    """Image id → its captions (file order) from a COCO ``captions_*.json``; every listed image is a key.

    A caption must be a non-empty string and point at an image of the file's ``images`` list.
    """
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict):
        raise DataError(path, f"expected a JSON object with images and annotations, got {describe(data)}")
    top = Fields(path, data)
    captions: dict[int, list[str]] = {}
    image_ids = UniqueIds("image id")
    for fields in top.objects("images", nonempty=True):
        image_id = fields.integer("id")
        image_ids.add(image_id, fields, "id")
        captions[image_id] = []
    for fields in top.objects("annotations", nonempty=True):
        image_id = fields.integer("image_id")
        if image_id not in image_ids:
            raise fields.error(f"image id {image_id} is not in 'images'", "image_id")
        captions[image_id].append(fields.text("caption", nonempty=True))
    return captions
