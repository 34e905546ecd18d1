"""Write a shapes world under a data root, in the real datasets' file formats (see :mod:`hadpo.data.layout`).

Three disjoint splits are drawn: ``train`` (SFT corpus and preference mining), ``pope`` (a COCO-style pool of
3-object images that POPE questions are built from) and ``shr`` (SHR evaluation). Every image is a Visual Genome
image; the POPE pool images also exist as COCO val2014 images and carry their ``coco_id`` in VG's
``image_data.json``, as real VG does for the COCO images it contains. A fourth split, ``bench``, is in none of
those files: the CHAIR, AMBER and MMHal-Bench writers (:data:`BENCH_WRITERS`) put it in their benchmarks' own
released layouts (:mod:`hadpo.world.bench`).

Generation is all-or-nothing: a marker file is written first and ``world.json`` (with a hash of every file)
last, so a killed run leaves no ``world.json`` and a rerun starts again. A rerun with the same config finds
``world.json`` and skips; a different config is refused, since a world folder holds exactly one world.
"""

from __future__ import annotations

import hashlib
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hadpo.data.layout import DataLayout
from hadpo.errors import DataError, ParamsError
from hadpo.io import atomic_write_json, atomic_write_jsonl, atomic_write_text, read_json, sha256_file
from hadpo.world.bench import BenchImage, BenchObject, BenchWorld
from hadpo.world.config import WorldConfig
from hadpo.world.corpus import image_records
from hadpo.world.palette import Category, build_categories, category_pairs
from hadpo.world.render import encode_png, mask_area, render_pixels
from hadpo.world.scenes import PlacedObject, sample_scene
from hadpo.world.text import (
    COLUMNS,
    absence_fact,
    count_fact,
    describe,
    object_phrase,
    presence_fact,
)

#: Version tag of the ``world.json`` layout.
WORLD_FORMAT = "hadpo-shapes-world/1"

#: Split names, in id order.
SPLITS: tuple[str, ...] = ("train", "pope", "shr")
#: The benchmark split, numbered after every split above.
BENCH_SPLIT = "bench"
#: The writers of the benchmarks' files (``module:function`` taking a :class:`~hadpo.world.bench.BenchWorld` and
#: returning the paths written), in order.
BENCH_WRITERS: tuple[str, ...] = (
    "hadpo.world.chair_world:write_chair_world",
    "hadpo.world.amber_world:write_amber_world",
    "hadpo.world.mmhal_world:write_mmhal_world",
)

#: URL prefix of VG image records; the last two components give the local path ``VG/VG_100K/<id>.png``.
URL_PREFIX = "https://shapes.invalid/VG_100K"

#: COCO ids are numbered from here, far from the VG ids, so mixing the two up fails loudly.
COCO_ID_BASE = 900_000

#: Phrase of the whole-image region every image gets in ``region_descriptions.json``.
BACKGROUND_PHRASE = "a dark noisy background"

#: What the generator writes at the top of a root (a leftover of an interrupted run is removed).
OUTPUT_ENTRIES: tuple[str, ...] = ("VG", "coco2014", "shr", "llava", "chair", "AMBER", "MMHal-Bench")

_MARKER = ".hadpo-world-incomplete"

# Independent random streams, so e.g. a different p_hal leaves scenes and pixels unchanged.
_STREAM_SCENES = {"train": 1, "pope": 2, "shr": 3, BENCH_SPLIT: 6}
_STREAM_PIXELS = 4
_STREAM_CORPUS = 5


@dataclass(frozen=True)
class _Image:
    image_id: int
    split: str
    objects: tuple[PlacedObject, ...]
    coco_id: int | None


def coco_file_name(coco_id: int) -> str:
    """COCO val2014 file name of an image: ``COCO_val2014_000000900001.png``."""
    return f"COCO_val2014_{coco_id:012d}.png"


def _draw_images(cfg: WorldConfig) -> list[_Image]:
    """Scenes of every split, with consecutive image ids (train first)."""
    images: list[_Image] = []
    sizes = {"train": cfg.train_images, "pope": cfg.pope_images, "shr": cfg.shr_images}
    for split in SPLITS:
        rng = np.random.default_rng([cfg.seed, _STREAM_SCENES[split]])
        for k in range(sizes[split]):
            # POPE asks about 3 present objects per image, so the pool keeps only 3-object scenes.
            pope = split == "pope"
            # The first share of the pool is unpaired (deterministic count, not a coin per image).
            unpaired = pope and k < round(cfg.pope_unpaired_share * sizes["pope"])
            objects = sample_scene(rng, cfg, num_objects=3 if pope else None, unpaired=unpaired)
            coco_id = COCO_ID_BASE + k + 1 if split == "pope" else None
            images.append(_Image(len(images) + 1, split, objects, coco_id))
    return images


def _bench_world(root: Path, cfg: WorldConfig, categories: tuple[Category, ...], first_id: int) -> BenchWorld:
    """The ``bench`` split: scenes of the training distribution from their own stream, ids after ``first_id``."""
    rng = np.random.default_rng([cfg.seed, _STREAM_SCENES[BENCH_SPLIT]])
    images = []
    for k in range(cfg.bench_images):
        image_id = first_id + k
        objects = sample_scene(rng, cfg)
        pixels = render_pixels(objects, categories, np.random.default_rng([cfg.seed, _STREAM_PIXELS, image_id]),
                               image_size=cfg.image_size, background_level=cfg.background_level,
                               colour_jitter=cfg.colour_jitter)
        named = tuple(BenchObject(categories[o.category].name, o.column, o.bbox) for o in objects)
        images.append(BenchImage(image_id=image_id, coco_id=COCO_ID_BASE + cfg.pope_images + k + 1,
                                 png=encode_png(pixels), width=cfg.image_size, height=cfg.image_size,
                                 objects=named, caption=describe((o.name, o.column) for o in named)))
    return BenchWorld(root=root, images=tuple(images), categories=categories,
                      pairs=category_pairs(categories), seed=cfg.seed)


def _write_bench(world: BenchWorld) -> list[Path]:
    """Every benchmark's files for the ``bench`` split (:data:`BENCH_WRITERS`); the paths written."""
    import importlib

    written: list[Path] = []
    for target in BENCH_WRITERS:
        module, function = target.split(":")
        written += getattr(importlib.import_module(module), function)(world)
    return written


def _folder_digest(entries: dict[str, str]) -> dict[str, Any]:
    """``{"count", "sha256"}`` of a folder from ``{file name: sha256}`` (order-independent)."""
    h = hashlib.sha256()
    for name in sorted(entries):
        h.update(f"{name}\t{entries[name]}\n".encode())
    return {"count": len(entries), "sha256": h.hexdigest()}


def _write_images(
    layout: DataLayout, images: list[_Image], categories: tuple[Category, ...], cfg: WorldConfig
) -> dict[str, dict[str, Any]]:
    """Render every image to ``VG/VG_100K`` (and the POPE pool also to COCO val2014); returns folder digests."""
    vg_dir = layout.vg_dir / "VG_100K"
    vg_dir.mkdir(parents=True, exist_ok=True)
    layout.coco_images.mkdir(parents=True, exist_ok=True)
    vg_hashes: dict[str, str] = {}
    coco_hashes: dict[str, str] = {}
    for image in images:
        rng = np.random.default_rng([cfg.seed, _STREAM_PIXELS, image.image_id])
        pixels = render_pixels(
            image.objects,
            categories,
            rng,
            image_size=cfg.image_size,
            background_level=cfg.background_level,
            colour_jitter=cfg.colour_jitter,
        )
        data = encode_png(pixels)
        digest = hashlib.sha256(data).hexdigest()
        # Plain writes: the folder as a whole is committed by world.json, written last.
        name = f"{image.image_id}.png"
        (vg_dir / name).write_bytes(data)
        vg_hashes[name] = digest
        if image.coco_id is not None:
            coco_name = coco_file_name(image.coco_id)
            (layout.coco_images / coco_name).write_bytes(data)
            coco_hashes[coco_name] = digest
    return {"VG/VG_100K": _folder_digest(vg_hashes), "coco2014/val2014": _folder_digest(coco_hashes)}


def _image_record(image: _Image, size: int) -> dict[str, Any]:
    return {
        "image_id": image.image_id,
        "url": f"{URL_PREFIX}/{image.image_id}.png",
        "width": size,
        "height": size,
        "coco_id": image.coco_id,
        "flickr_id": None,
    }


def _vg_files(images: list[_Image], categories: tuple[Category, ...], size: int) -> dict[str, Any]:
    """The three VG annotation files' contents: image records, objects, region descriptions."""
    image_data, objects, regions = [], [], []
    object_id = region_id = 0
    for image in images:
        image_data.append(_image_record(image, size))
        vg_objects, vg_regions = [], []
        for obj in image.objects:
            name = categories[obj.category].name
            object_id += 1
            x, y, w, h = obj.bbox
            vg_objects.append({"object_id": object_id, "x": x, "y": y, "w": w, "h": h, "names": [name], "synsets": []})
            region_id += 1
            vg_regions.append(
                {
                    "region_id": region_id,
                    "image_id": image.image_id,
                    "phrase": object_phrase(name, obj.column),
                    "x": x,
                    "y": y,
                    "width": w,
                    "height": h,
                }
            )
        region_id += 1
        vg_regions.append(
            {
                "region_id": region_id,
                "image_id": image.image_id,
                "phrase": BACKGROUND_PHRASE,
                "x": 0,
                "y": 0,
                "width": size,
                "height": size,
            }
        )
        objects.append({"image_id": image.image_id, "objects": vg_objects})
        regions.append({"id": image.image_id, "regions": vg_regions})
    return {"image_data": image_data, "objects": objects, "regions": regions}


def _coco_instances(images: list[_Image], categories: tuple[Category, ...], size: int) -> dict[str, Any]:
    """COCO ``instances_val2014.json`` of the POPE pool (one annotation per object, same boxes as VG)."""
    coco_images, annotations = [], []
    for image in images:
        if image.coco_id is None:
            continue
        coco_images.append(
            {"id": image.coco_id, "file_name": coco_file_name(image.coco_id), "width": size, "height": size}
        )
        for obj in image.objects:
            category = categories[obj.category]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image.coco_id,
                    "category_id": category.id,
                    "bbox": [float(v) for v in obj.bbox],
                    "area": float(mask_area(category.shape, obj.size)),
                    "iscrowd": 0,
                }
            )
    return {
        "images": coco_images,
        "annotations": annotations,
        "categories": [{"id": c.id, "name": c.name, "supercategory": c.shape} for c in categories],
    }


def shr_facts(objects: tuple[PlacedObject, ...], categories: tuple[Category, ...]) -> list[str]:
    """Human-style factual statements about a scene, as SHR's annotators add them for the judge."""
    present = {o.category for o in objects}
    facts = [count_fact(len(objects))]
    facts += [presence_fact(categories[o.category].name, o.column) for o in objects]
    facts += [absence_fact(categories[c].name) for c in sorted({o.category ^ 1 for o in objects} - present)]
    facts.append("There are no other objects in the image.")
    return facts


def _write_shr(layout: DataLayout, images: list[_Image], categories: tuple[Category, ...], size: int) -> None:
    shr = [image for image in images if image.split == "shr"]
    atomic_write_json(layout.shr_val_images, [{"image_id": i.image_id, "image": _image_record(i, size)} for i in shr])
    facts = [{str(i.image_id): shr_facts(i.objects, categories)} for i in shr]
    half = (len(facts) + 1) // 2
    part1, part2 = layout.shr_factual
    atomic_write_jsonl(part1, facts[:half])
    atomic_write_jsonl(part2, facts[half:])


def _sft_corpus(images: list[_Image], categories: tuple[Category, ...], cfg: WorldConfig) -> list[dict[str, Any]]:
    rng = np.random.default_rng([cfg.seed, _STREAM_CORPUS])
    records: list[dict[str, Any]] = []
    for image in images:
        if image.split == "train":
            records.extend(image_records(image.image_id, image.objects, categories, rng, cfg))
    return records


def _category_records(categories: tuple[Category, ...]) -> list[dict[str, Any]]:
    return [{"id": c.id, "name": c.name, "colour": c.colour, "shape": c.shape, "rgb": list(c.rgb)} for c in categories]


def _prepare_root(root: Path, cfg: WorldConfig) -> bool:
    """Check the root before writing; returns False when an identical world is already there."""
    layout = DataLayout(root)
    if layout.world_meta.is_file():
        meta = read_json(layout.world_meta)
        stored = meta.get("config") if isinstance(meta, dict) else None
        if stored == cfg.to_dict():
            # Same settings, but written with another palette (an older version of the kit): not this world.
            if meta.get("categories") != _category_records(build_categories(cfg.num_pairs)):
                raise DataError(
                    layout.world_meta,
                    "was written with other categories than this version of the kit draws; generate the world "
                    "again into a new folder",
                    field="categories",
                )
            missing = [rel for rel in meta.get("files", {}) if not (root / rel).is_file()]
            if missing:
                raise DataError(
                    layout.world_meta,
                    f"lists files that are missing: {', '.join(missing)}; generate the world again into a new folder",
                )
            return False
        if not isinstance(stored, dict):
            raise DataError(layout.world_meta, "no 'config' mapping; this is not a shapes world", field="config")
        changed = sorted(k for k in set(stored) | set(cfg.to_dict()) if stored.get(k) != cfg.to_dict().get(k))
        detail = ", ".join(f"{k}: {stored.get(k)!r} there, {cfg.to_dict().get(k)!r} asked" for k in changed)
        raise ParamsError(
            f"{root} already holds a shapes world with a different config ({detail}); "
            "pick another output folder (one world per folder)"
        )
    marker = root / _MARKER
    if root.exists():
        if not root.is_dir():
            raise ParamsError(f"{root} is a file; the world's output must be a folder")
        if marker.exists():
            # An interrupted generation of ours: clear what it wrote, nothing else.
            for name in OUTPUT_ENTRIES:
                shutil.rmtree(root / name, ignore_errors=True)
        elif any(root.iterdir()):
            raise ParamsError(
                f"{root} is not empty and holds no world.json; pick an empty or new folder for the shapes world"
            )
    atomic_write_text(marker, "shapes world generation in progress; an interrupted run is redone on rerun\n")
    return True


def generate_world(root: str | Path, cfg: WorldConfig | None = None) -> Path:
    """Write the shapes world of ``cfg`` under ``root`` and return ``root``.

    Rerunning with the same config skips (after checking the listed files exist); a different config is a
    :class:`ParamsError` asking for another folder. A non-empty folder without ``world.json`` is refused, so
    a real data root is never overwritten.
    """
    cfg = cfg or WorldConfig()
    root = Path(root)
    if not _prepare_root(root, cfg):
        return root
    layout = DataLayout(root)
    categories = build_categories(cfg.num_pairs)
    images = _draw_images(cfg)
    size = cfg.image_size

    folders = _write_images(layout, images, categories, cfg)
    vg = _vg_files(images, categories, size)
    # The big files are written compact, as the real VG / COCO / LLaVA files are.
    atomic_write_json(layout.image_data, vg["image_data"], indent=None)
    atomic_write_json(layout.objects, vg["objects"], indent=None)
    atomic_write_json(layout.region_descriptions, vg["regions"], indent=None)
    atomic_write_json(layout.coco_instances, _coco_instances(images, categories, size), indent=None)
    _write_shr(layout, images, categories, size)
    corpus = _sft_corpus(images, categories, cfg)
    atomic_write_json(layout.sft_conversations, corpus, indent=None)
    bench = _bench_world(root, cfg, categories, first_id=len(images) + 1)
    bench_files = _write_bench(bench)

    written = [
        layout.image_data,
        layout.objects,
        layout.region_descriptions,
        layout.coco_instances,
        layout.shr_val_images,
        *layout.shr_factual,
        layout.sft_conversations,
        *bench_files,
    ]
    meta = {
        "format": WORLD_FORMAT,
        "seed": cfg.seed,
        "config": cfg.to_dict(),
        "categories": _category_records(categories),
        "pairs": [list(p) for p in category_pairs(categories)],
        "columns": list(COLUMNS),
        "counts": {
            "images": {**{s: sum(1 for i in images if i.split == s) for s in SPLITS}, BENCH_SPLIT: len(bench.images)},
            "objects": sum(len(i.objects) for i in images),
            "sft": dict(sorted(Counter(r["kind"] for r in corpus).items())),
        },
        "splits": {**{s: [i.image_id for i in images if i.split == s] for s in SPLITS},
                   BENCH_SPLIT: [i.image_id for i in bench.images]},
        "files": {p.relative_to(root).as_posix(): sha256_file(p) for p in written},
        "image_folders": folders,
    }
    atomic_write_json(layout.world_meta, meta)
    (root / _MARKER).unlink(missing_ok=True)
    return root


def verify_world(root: str | Path) -> list[str]:
    """Recompute every hash ``world.json`` records; returns the problems found (empty when all match)."""
    root = Path(root)
    meta = read_json(DataLayout(root).world_meta)
    problems = []
    for rel, expected in meta.get("files", {}).items():
        path = root / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
        elif sha256_file(path) != expected:
            problems.append(f"{rel}: content differs from the recorded sha256")
    for rel, expected in meta.get("image_folders", {}).items():
        folder = root / rel
        files = sorted(p for p in folder.glob("*.png")) if folder.is_dir() else []
        actual = _folder_digest({p.name: sha256_file(p) for p in files})
        if actual != expected:
            problems.append(
                f"{rel}: the images' hashes differ from world.json ({actual['count']} found, "
                f"{expected.get('count')} recorded)"
            )
    return problems
