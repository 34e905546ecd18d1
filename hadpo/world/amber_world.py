"""The shapes world's AMBER: its benchmark images in AMBER's released layout and formats under ``<data_root>/AMBER/``
(``data/annotations.json``, ``data/query/query_*.json``, ``data/relation.json``, ``data/safe_words.txt``,
``image/AMBER_<n>.png``).

Objects are annotated by their shape word ("circle"), which names one category in the world's palette, as
AMBER's annotations name objects by one noun: a description saying "red circle" or "circle" names it. Per image,
in the release's id order (every description first, then the attribute, existence and relation questions):

* one generative query, AMBER's own "Describe this image.": ``truth`` the shapes there, ``hallu`` the absent
  co-occurrence partners of present objects first (the base model's planted hallucinations), then other absent
  shapes, :data:`HALLU_OBJECTS` in all;
* attribute questions, the world's one attribute being the column: per object, its own column (yes) and another
  (no);
* existence questions: per object, it (yes), and its partner when absent (no); an image whose partners are all
  present asks about another absent category;
* relation questions, per pair of objects: is one to the left of the other (yes or no from the columns; typed as
  the release types them, ``discriminative-relation`` for a yes and ``relation`` for a no).

The word associations are empty (the world has no synonyms); the safe words are words of the world's sentences that
name no object.
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path
from typing import Any

from hadpo.io import atomic_write_json, atomic_write_text
from hadpo.world.bench import BenchImage, BenchWorld
from hadpo.world.text import COLUMN_PHRASES, with_article

#: AMBER's generative query, as the release asks it.
GENERATIVE_QUERY = "Describe this image."
#: Likely hallucinations listed per image (AMBER's annotations list three to six).
HALLU_OBJECTS = 5
#: Words of the world's sentences that never name an object.
SAFE_WORDS = ("image", "picture", "left", "middle", "right")
#: Annotation types, as the release spells them.
EXISTENCE, ATTRIBUTE, RELATION_YES, RELATION_NO = (
    "discriminative-hallucination", "discriminative-attribute-state", "discriminative-relation", "relation")


def amber_image_name(number: int) -> str:
    """The file name of the ``number``-th image (1-based), the release's ``AMBER_<n>`` with the world's PNG."""
    return f"AMBER_{number}.png"


def _shape(world: BenchWorld, name: str) -> str:
    return next(c.shape for c in world.categories if c.name == name)


def _hallu(world: BenchWorld, image: BenchImage) -> list[str]:
    """Absent shapes, the present objects' partners first."""
    present = {o.name for o in image.objects}
    partners = [world.partner(o.name) for o in image.objects]
    absent = [n for n in partners if n not in present] + [c.name for c in world.categories if c.name not in present]
    return [_shape(world, n) for n in dict.fromkeys(absent)][:HALLU_OBJECTS]


def _attribute(image: BenchImage, rng: random.Random) -> list[tuple[str, str, str]]:
    out = []
    for obj in image.objects:
        other = rng.choice([c for c in range(len(COLUMN_PHRASES)) if c != obj.column])
        out.append((ATTRIBUTE, f"Is the {obj.name} {COLUMN_PHRASES[obj.column]} in this image?", "yes"))
        out.append((ATTRIBUTE, f"Is the {obj.name} {COLUMN_PHRASES[other]} in this image?", "no"))
    return out


def _existence(world: BenchWorld, image: BenchImage, rng: random.Random) -> list[tuple[str, str, str]]:
    present = [o.name for o in image.objects]
    absent = [world.partner(n) for n in present if world.partner(n) not in present]
    if not absent:
        absent = [rng.choice([c.name for c in world.categories if c.name not in present])]
    return ([(EXISTENCE, f"Is there {with_article(n)} in this image?", "yes") for n in present]
            + [(EXISTENCE, f"Is there {with_article(n)} in this image?", "no") for n in dict.fromkeys(absent)])


def _relation(image: BenchImage, rng: random.Random) -> list[tuple[str, str, str]]:
    out = []
    for a, b in itertools.combinations(image.objects, 2):
        first, second = (a, b) if rng.random() < 0.5 else (b, a)
        left = first.column < second.column
        out.append((RELATION_YES if left else RELATION_NO,
                    f"Is the {first.name} to the left of the {second.name} in this image?", "yes" if left else "no"))
    return out


def write_amber_world(world: BenchWorld) -> list[Path]:
    """Write the AMBER files of ``world``'s benchmark images; returns the paths written."""
    root = Path(world.root) / "AMBER"
    images_dir, data = root / "image", root / "data"
    images_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(world.seed)
    written: list[Path] = []
    names = [amber_image_name(k) for k in range(1, len(world.images) + 1)]
    for image, name in zip(world.images, names, strict=True):
        path = images_dir / name
        path.write_bytes(image.png)
        written.append(path)
    # (part, image name, query, annotation without its id), in the release's order of parts.
    items: list[tuple[str, str, str, dict[str, Any]]] = [
        ("generative", name, GENERATIVE_QUERY,
         {"type": "generative", "truth": [_shape(world, o.name) for o in image.objects],
          "hallu": _hallu(world, image)})
        for image, name in zip(world.images, names, strict=True)]
    for part, questions in (("attribute", lambda image: _attribute(image, rng)),
                            ("existence", lambda image: _existence(world, image, rng)),
                            ("relation", lambda image: _relation(image, rng))):
        for image, name in zip(world.images, names, strict=True):
            items += [(part, name, text, {"type": kind, "truth": truth}) for kind, text, truth in questions(image)]
    queries = {part: [] for part in ("generative", "attribute", "existence", "relation")}
    annotations = []
    for number, (part, name, text, annotation) in enumerate(items, start=1):
        queries[part].append({"id": number, "image": name, "query": text})
        annotations.append({"id": number, **annotation})
    discriminative = queries["attribute"] + queries["existence"] + queries["relation"]
    files = {
        data / "annotations.json": annotations,
        data / "relation.json": {c.shape: [] for c in world.categories},
        data / "query" / "query_all.json": queries["generative"] + discriminative,
        data / "query" / "query_generative.json": queries["generative"],
        data / "query" / "query_discriminative.json": discriminative,
        data / "query" / "query_discriminative-attribute.json": queries["attribute"],
        data / "query" / "query_discriminative-existence.json": queries["existence"],
        data / "query" / "query_discriminative-relation.json": queries["relation"],
    }
    for path, content in files.items():
        atomic_write_json(path, content)
    atomic_write_text(data / "safe_words.txt", "".join(f"{w}\n" for w in SAFE_WORDS))
    return [*written, *files, data / "safe_words.txt"]
