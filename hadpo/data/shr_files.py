"""Readers for the SHR evaluation files: ``val_images_final.json`` and the two factual JSON-lines parts.

``val_images_final.json`` is a list of ``{"image_id": <VG id>, ...}``; entries may embed the image's VG
``image_data.json`` record under ``image``, which is then parsed and must agree on the id. Each factual part has one
single-key object per line, ``{"<image id>": ["statement", ...]}``; the parts are merged into one dict and an image
may appear only once across them. One part may hold no line (a world with one SHR image writes an empty second
part), but the parts together must hold at least one image, as must the image list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hadpo.data.fields import Fields, UniqueIds, jsonl_records, list_records, no_records
from hadpo.data.vg import VGImage, parse_vg_image
from hadpo.io import read_json

_FACT_RECORD = "single-key object {image id: [statements]}"


@dataclass(frozen=True)
class ShrImage:
    """One SHR evaluation image: its VG id and, when the file embeds it, its VG image record."""

    image_id: int
    image: VGImage | None


def read_shr_images(path: str | Path) -> list[ShrImage]:
    """Read ``val_images_final.json`` in file order; image ids must be unique."""
    path = Path(path)
    ids = UniqueIds("image id")
    out = []
    for fields in list_records(path, read_json(path), "SHR image records"):
        image_id = fields.int_id("image_id")
        ids.add(image_id, fields, "image_id")
        image = None
        if fields.obj.get("image") is not None:
            image = parse_vg_image(fields.child("image", what="a VG image record"))
            if image.image_id != image_id:
                key = "image.image_id" if "image_id" in fields.obj["image"] else "image.id"
                raise fields.error(f"embedded image record has id {image.image_id}, entry has {image_id}", key)
        out.append(ShrImage(image_id=image_id, image=image))
    return out


def read_shr_factual(paths: str | Path | Sequence[str | Path]) -> dict[str, list[str]]:
    """Merge the factual JSON-lines parts into image id → statements, in file then line order."""
    files = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    ids = UniqueIds("image id")
    out: dict[str, list[str]] = {}
    for path in files:
        for fields in jsonl_records(path, _FACT_RECORD, allow_empty=True):
            image_id = _single_key(fields)
            ids.add(image_id, fields, image_id)
            # a listed image with no statements is legitimate: the judge then gets empty factual text
            out[image_id] = list(fields.strings(image_id, nonempty=False))
    if not out:
        raise no_records(files, _FACT_RECORD, ", got empty or blank file(s)")
    return out


def _single_key(fields: Fields) -> str:
    keys = list(fields.obj)
    if len(keys) != 1:
        raise fields.error(f"expected exactly one key (the image id), got {len(keys)}: {keys[:5]!r}")
    if not keys[0].strip():
        raise fields.error("image id key must not be empty")
    return keys[0]
