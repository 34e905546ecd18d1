"""Reading a shapes world back: categories, pairs, splits and each image's objects, for judges and mining.

Objects come from the world's VG ``objects.json`` (the real format), with each object's grid column and row
derived from its box, so the oracle judge and the miners see exactly what the annotation files say.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hadpo.data.layout import DataLayout
from hadpo.errors import DataError
from hadpo.io import read_json
from hadpo.models.prompts import (
    DESCRIPTION_INSTRUCTIONS,
    IMAGE_PLACEHOLDER,
    LLAVA_V1_SYSTEM,
    SHORT_ANSWER_SUFFIX,
    VICUNA_V1_SYSTEM,
    get_template,
)
from hadpo.world.config import GRID, WorldConfig
from hadpo.world.generate import SPLITS, WORLD_FORMAT
from hadpo.world.palette import Category
from hadpo.world.text import no_answer, object_sentence, question, yes_answer


@dataclass(frozen=True)
class WorldObject:
    """An object of a world image: category name, grid cell and box ``(x, y, w, h)``."""

    object_id: int
    name: str
    column: int
    row: int
    bbox: tuple[int, int, int, int]


@dataclass(frozen=True)
class WorldImage:
    """One image of the world: its split, COCO id (POPE pool only), file and objects left to right."""

    image_id: int
    split: str
    coco_id: int | None
    path: Path
    objects: tuple[WorldObject, ...]

    @property
    def present(self) -> frozenset[str]:
        """Names of the categories in the image."""
        return frozenset(o.name for o in self.objects)


@dataclass(frozen=True)
class World:
    """A generated shapes world, as read from its files."""

    root: Path
    seed: int
    config: WorldConfig
    categories: tuple[Category, ...]
    pairs: tuple[tuple[str, str], ...]
    splits: dict[str, tuple[int, ...]]
    images: dict[int, WorldImage]

    @property
    def category_names(self) -> tuple[str, ...]:
        """Category names in id order."""
        return tuple(c.name for c in self.categories)

    def category(self, name: str) -> Category:
        """The category called ``name`` (KeyError if the world has none)."""
        for c in self.categories:
            if c.name == name:
                return c
        raise KeyError(f"no category {name!r} in this world; known: {', '.join(self.category_names)}")

    def partner(self, name: str) -> str:
        """The co-occurrence partner of a category."""
        for a, b in self.pairs:
            if name == a:
                return b
            if name == b:
                return a
        raise KeyError(f"no category {name!r} in this world; known: {', '.join(self.category_names)}")

    def split(self, name: str) -> list[WorldImage]:
        """The images of a split (``train``, ``pope``, ``shr``) in id order."""
        if name not in self.splits:
            raise KeyError(f"no split {name!r}; known: {', '.join(self.splits)}")
        return [self.images[i] for i in self.splits[name]]

    def by_coco_id(self) -> dict[int, WorldImage]:
        """POPE pool images keyed by their COCO id."""
        return {img.coco_id: img for img in self.images.values() if img.coco_id is not None}


def _require(mapping: Any, key: str, kind: type | tuple[type, ...], file: Path, record: int | str | None = None) -> Any:
    """``mapping[key]``, which must exist and be of ``kind``; otherwise a DataError naming file, record, field."""
    if not isinstance(mapping, dict) or key not in mapping:
        raise DataError(file, "missing field", record=record, field=key)
    value = mapping[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise DataError(
            file, f"expected {getattr(kind, '__name__', kind)}, got {type(value).__name__}", record=record, field=key
        )
    return value


def _read_meta(layout: DataLayout) -> dict[str, Any]:
    path = layout.world_meta
    if not path.is_file():
        raise DataError(path.absolute(), "file not found; generate the world first (hadpo world DIR)")
    meta = read_json(path)
    if _require(meta, "format", str, path) != WORLD_FORMAT:
        raise DataError(path, f"unsupported format {meta['format']!r}, expected {WORLD_FORMAT!r}", field="format")
    for key in ("config", "splits"):
        _require(meta, key, dict, path)
    for key in ("categories", "pairs"):
        _require(meta, key, list, path)
    return meta


def _categories(meta: dict[str, Any], path: Path) -> tuple[Category, ...]:
    out = []
    for i, rec in enumerate(meta["categories"]):
        rgb = _require(rec, "rgb", list, path, i)
        out.append(
            Category(
                id=_require(rec, "id", int, path, i),
                name=_require(rec, "name", str, path, i),
                colour=_require(rec, "colour", str, path, i),
                shape=_require(rec, "shape", str, path, i),
                rgb=(int(rgb[0]), int(rgb[1]), int(rgb[2])),
            )
        )
    return tuple(out)


def _objects(layout: DataLayout, size: int) -> dict[int, tuple[WorldObject, ...]]:
    """``{image_id: objects left to right}`` from VG ``objects.json``; the cell comes from the box centre."""
    path = layout.objects
    records = read_json(path)
    if not isinstance(records, list):
        raise DataError(path, "expected a list of image records")
    cell = size / GRID
    out: dict[int, tuple[WorldObject, ...]] = {}
    for i, rec in enumerate(records):
        image_id = _require(rec, "image_id", int, path, i)
        objs = []
        for j, obj in enumerate(_require(rec, "objects", list, path, image_id)):
            where = f"{image_id}.objects[{j}]"
            x, y, w, h = (_require(obj, k, int, path, where) for k in ("x", "y", "w", "h"))
            names = _require(obj, "names", list, path, where)
            if not names or not isinstance(names[0], str):
                raise DataError(path, "expected a non-empty list of names", record=where, field="names")
            column = min(GRID - 1, int((x + w / 2) // cell))
            row = min(GRID - 1, int((y + h / 2) // cell))
            objs.append(WorldObject(_require(obj, "object_id", int, path, where), names[0], column, row, (x, y, w, h)))
        out[image_id] = tuple(sorted(objs, key=lambda o: o.column))
    return out


def load_world(root: str | Path) -> World:
    """Read the world under ``root`` (``world.json``, VG ``image_data.json`` and ``objects.json``)."""
    layout = DataLayout(root)
    meta = _read_meta(layout)
    path = layout.world_meta
    config = WorldConfig.from_dict(meta["config"], source=f"{path}: config")
    categories = _categories(meta, path)
    pairs = []
    for i, pair in enumerate(meta["pairs"]):
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(n, str) for n in pair)):
            raise DataError(path, "expected a pair of category names", record=i, field="pairs")
        pairs.append((pair[0], pair[1]))
    splits: dict[str, tuple[int, ...]] = {}
    for split in SPLITS:
        ids = _require(meta["splits"], split, list, path, "splits")
        splits[split] = tuple(int(i) for i in ids)

    records = read_json(layout.image_data)
    if not isinstance(records, list):
        raise DataError(layout.image_data, "expected a list of image records")
    image_records = {}
    for i, rec in enumerate(records):
        image_records[_require(rec, "image_id", int, layout.image_data, i)] = rec
    objects = _objects(layout, config.image_size)

    images: dict[int, WorldImage] = {}
    for split, ids in splits.items():
        for image_id in ids:
            rec = image_records.get(image_id)
            if rec is None:
                raise DataError(layout.image_data, f"image {image_id} of split {split!r} is not listed")
            url = _require(rec, "url", str, layout.image_data, image_id)
            images[image_id] = WorldImage(
                image_id=image_id,
                split=split,
                coco_id=rec.get("coco_id"),
                path=layout.vg_image_path(url),
                objects=objects.get(image_id, ()),
            )
    return World(
        root=Path(root),
        seed=int(meta.get("seed", config.seed)),
        config=config,
        categories=categories,
        pairs=tuple(pairs),
        splits=splits,
        images=images,
    )


def tokenizer_corpus(root: str | Path) -> list[str]:
    """Every text the tiny model will see, de-duplicated in first-seen order (for training its BPE tokenizer).

    Covers both conversation templates' system sentences and turn markers, the description instructions, the
    short-answer suffix, the SFT corpus (questions and answers), and POPE-style questions, answers and
    caption sentences for every category and column.
    """
    layout = DataLayout(root)
    meta = _read_meta(layout)
    names = [c.name for c in _categories(meta, layout.world_meta)]
    texts: dict[str, None] = {}

    def add(text: str) -> None:
        texts.setdefault(text, None)

    for system in (VICUNA_V1_SYSTEM, LLAVA_V1_SYSTEM, SHORT_ANSWER_SUFFIX, *DESCRIPTION_INSTRUCTIONS):
        add(system)
    for template in ("vicuna_v1", "llava_v1"):
        add(get_template(template).full(DESCRIPTION_INSTRUCTIONS[0], "", "</s>"))
    corpus = read_json(layout.sft_conversations)
    if not isinstance(corpus, list):
        raise DataError(layout.sft_conversations, "expected a list of conversation records")
    for i, rec in enumerate(corpus):
        for turn in _require(rec, "conversations", list, layout.sft_conversations, i):
            value = _require(turn, "value", str, layout.sft_conversations, i).replace(IMAGE_PLACEHOLDER, "").strip()
            # An answer always follows "ASSISTANT:" and a space: learn it with that space, so the first answer
            # word (the Yes/No decision) is one token, not a bare space followed by the word.
            add(" " + value if turn.get("from") == "gpt" else value)
    for name in names:
        add(question(name))
        add(" " + yes_answer(name))
        add(" " + no_answer(name))
        for column in range(GRID):
            add(object_sentence(name, column))
    return list(texts)
