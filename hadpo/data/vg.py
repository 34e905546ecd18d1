"""Readers for Visual Genome annotation files: ``image_data.json``, ``objects.json``, ``region_descriptions.json``.

VG releases differ slightly in key names (v1.2 uses ``id`` where v1.4 uses ``image_id``; old ``objects.json``
has ``name`` where newer ones have a ``names`` list), so both spellings are accepted. Results keep file order.

Boxes must have a positive width and height; ``x`` and ``y`` may be negative, because the released region
descriptions hold thousands of boxes starting above or left of their image (e.g. ``y: -904``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hadpo.data.fields import MAX_PIXELS, Fields, UniqueIds, list_records
from hadpo.data.layout import DataLayout
from hadpo.io import read_json


@dataclass(frozen=True)
class VGImage:
    """One ``image_data.json`` record; the local file is found from the url (see :meth:`path`)."""

    image_id: int
    url: str
    width: int
    height: int
    coco_id: int | None

    def path(self, layout: DataLayout) -> Path:
        """Local image path under a data root: ``VG/<second-to-last url component>/<file name>``."""
        return layout.vg_image_path(self.url)


@dataclass(frozen=True)
class VGObject:
    """One annotated object: its first name and its box in pixels (x, y = top-left corner)."""

    object_id: int
    name: str
    x: float
    y: float
    w: float
    h: float


@dataclass(frozen=True)
class Region:
    """One region description: a phrase (possibly empty in VG) and its box in pixels."""

    region_id: int
    image_id: int
    phrase: str
    x: float
    y: float
    width: float
    height: float


def _image_id(fields: Fields) -> tuple[int, str]:
    """The image id of a record and the key it was read from (``image_id``, else v1.2's ``id``)."""
    key = "image_id" if fields.has("image_id") or not fields.has("id") else "id"
    return fields.int_id(key), key


def parse_vg_image(fields: Fields) -> VGImage:
    """Parse one ``image_data.json`` record (also used for records embedded in other files)."""
    image_id, _ = _image_id(fields)
    url = fields.text("url", nonempty=True)
    if len(url.rstrip("/").split("/")) < 2:
        raise fields.error(f"url {url!r} needs at least two path components (<folder>/<file>)", "url")
    return VGImage(
        image_id=image_id,
        url=url,
        width=fields.integer("width", minimum=1, maximum=MAX_PIXELS),
        height=fields.integer("height", minimum=1, maximum=MAX_PIXELS),
        coco_id=fields.opt_integer("coco_id"),
    )


def read_vg_images(path: str | Path) -> list[VGImage]:
    """Read ``image_data.json`` in file order; image ids must be unique."""
    path = Path(path)
    ids = UniqueIds("image id")
    out = []
    for fields in list_records(path, read_json(path), "VG image records"):
        image = parse_vg_image(fields)
        ids.add(image.image_id, fields, _image_id(fields)[1])
        out.append(image)
    return out


def vg_image_index(images: Iterable[VGImage]) -> dict[int, VGImage]:
    """Images keyed by id, in the given order."""
    return {image.image_id: image for image in images}


def read_vg_objects(path: str | Path) -> dict[int, list[VGObject]]:
    """Read ``objects.json``: image id → its objects, both in file order; image ids must be unique."""
    path = Path(path)
    ids = UniqueIds("image id")
    out: dict[int, list[VGObject]] = {}
    for fields in list_records(path, read_json(path), "per-image object lists"):
        image_id, key = _image_id(fields)
        ids.add(image_id, fields, key)
        out[image_id] = [_vg_object(obj) for obj in fields.objects("objects")]
    return out


def _vg_object(fields: Fields) -> VGObject:
    # VG v1.4 lists names (the first is the canonical one); older releases have a single name
    name = fields.strings("names")[0] if fields.has("names") else fields.text("name", nonempty=True)
    x, y, w, h = fields.box(("x", "y", "w", "h"))
    return VGObject(object_id=fields.integer("object_id"), name=name, x=x, y=y, w=w, h=h)


def read_vg_regions(path: str | Path) -> dict[int, list[Region]]:
    """Read ``region_descriptions.json``: image id → its regions in file order.

    An entry's image is its ``id`` when present, otherwise its first region's ``image_id`` (which is how the
    original SHR code indexes the file). Every region must agree with that id, and image ids must be unique.
    """
    path = Path(path)
    ids = UniqueIds("image id")
    out: dict[int, list[Region]] = {}
    for fields in list_records(path, read_json(path), "per-image region lists"):
        regions = [_region(region) for region in fields.objects("regions", nonempty=not fields.has("id"))]
        if fields.has("id"):
            image_id, key = fields.int_id("id"), "id"
        else:
            image_id, key = regions[0].image_id, "regions[0].image_id"
        for i, region in enumerate(regions):
            if region.image_id != image_id:
                raise fields.error(f"region of image {region.image_id} listed under image {image_id}",
                                   f"regions[{i}].image_id")
        ids.add(image_id, fields, key)
        out[image_id] = regions
    return out


def _region(fields: Fields) -> Region:
    region_id, image_id, phrase = fields.integer("region_id"), fields.int_id("image_id"), fields.text("phrase")
    x, y, width, height = fields.box(("x", "y", "width", "height"))
    return Region(region_id=region_id, image_id=image_id, phrase=phrase, x=x, y=y, width=width, height=height)
