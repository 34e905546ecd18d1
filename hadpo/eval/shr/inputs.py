"""The SHR evaluation set under a data root: each image's file, size, region lines and human-written facts.

Reads ``shr/val_images_final.json`` (which images), ``shr/shr_factual_part{1,2}.jsonl`` (facts),
``VG/image_data.json`` (file and size, unless the SHR entry embeds the record) and
``VG/region_descriptions.json`` (the judge's region context), through the kit's validating readers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hadpo.data.layout import DataLayout
from hadpo.data.shr_files import read_shr_factual, read_shr_images
from hadpo.data.vg import read_vg_images, read_vg_regions, vg_image_index
from hadpo.errors import DataError
from hadpo.eval.shr.prompt import NormalizedRegion, normalized_regions


@dataclass(frozen=True)
class ShrImageInput:
    """One SHR image ready to describe and judge."""

    image_id: str
    image_path: Path
    width: int
    height: int
    regions: tuple[NormalizedRegion, ...]
    facts: tuple[str, ...]


def load_shr_inputs(data_root: str | Path, *, limit: int | None = None) -> list[ShrImageInput]:
    """The SHR images in file order (the first ``limit`` when given), with everything the judge needs.

    An SHR image missing from ``image_data.json`` (when not embedded) or from ``region_descriptions.json`` is a
    :class:`~hadpo.errors.DataError` naming that file and the image; an image without facts gets none, as in
    the original.
    """
    layout = DataLayout(data_root)
    shr_images = read_shr_images(layout.shr_val_images)
    if limit is not None:
        shr_images = shr_images[:limit]
    facts = read_shr_factual(layout.shr_factual)
    vg_images = None
    if any(s.image is None for s in shr_images):
        vg_images = vg_image_index(read_vg_images(layout.image_data))
    regions = read_vg_regions(layout.region_descriptions)
    out = []
    for entry in shr_images:
        image = entry.image
        if image is None:
            assert vg_images is not None
            image = vg_images.get(entry.image_id)
            if image is None:
                raise DataError(layout.image_data, "SHR image has no VG image record", record=entry.image_id)
        if entry.image_id not in regions:
            raise DataError(layout.region_descriptions, "SHR image has no region descriptions",
                            record=entry.image_id)
        out.append(
            ShrImageInput(
                image_id=str(entry.image_id),
                image_path=image.path(layout),
                width=image.width,
                height=image.height,
                regions=tuple(normalized_regions(regions[entry.image_id], image.width, image.height)),
                facts=tuple(facts.get(str(entry.image_id), [])),
            )
        )
    return out
