"""Each Visual Genome image's annotations in one place: file, size, objects and region descriptions.

Image selection counts them, the judge is shown them, and the shapes-world oracle reads its truth from the same
files, so every step agrees on what an image contains.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hadpo.data.layout import DataLayout
from hadpo.data.vg import Region, VGObject, read_vg_images, read_vg_objects, read_vg_regions


@dataclass(frozen=True)
class ImageAnnotations:
    """One VG image with its annotations (empty tuples when a file lists none for it)."""

    image_id: int
    coco_id: int | None
    path: Path
    width: int
    height: int
    objects: tuple[VGObject, ...]
    regions: tuple[Region, ...]

    @property
    def num_objects(self) -> int:
        """Annotated objects."""
        return len(self.objects)

    @property
    def num_regions(self) -> int:
        """Region descriptions with a non-empty phrase (VG has some empty ones)."""
        return sum(1 for r in self.regions if r.phrase.strip())


def load_annotations(data_root: str | Path) -> dict[int, ImageAnnotations]:
    """Every image of ``VG/image_data.json`` (file order) with its objects and regions, when those files exist."""
    layout = DataLayout(data_root)
    images = read_vg_images(layout.image_data)
    objects = read_vg_objects(layout.objects) if layout.objects.is_file() else {}
    regions = read_vg_regions(layout.region_descriptions) if layout.region_descriptions.is_file() else {}
    return {
        image.image_id: ImageAnnotations(
            image_id=image.image_id,
            coco_id=image.coco_id,
            path=image.path(layout),
            width=image.width,
            height=image.height,
            objects=tuple(objects.get(image.image_id, ())),
            regions=tuple(regions.get(image.image_id, ())),
        )
        for image in images
    }
