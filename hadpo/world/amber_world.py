"""The shapes world's AMBER files: its benchmark images in AMBER's released layout under ``<data_root>/AMBER/``.

Objects are named by their shape word ("circle"), which is unique to a category in the world's palette, as
AMBER's annotations name objects by one noun. Per image: one generative query ("Describe this image.", AMBER's own
wording) whose ``truth`` is the shapes there and ``hallu`` the absent co-occurrence partners first (the base model's
planted hallucinations), then the other absent shapes; and discriminative questions in the world's phrasing of
categories: existence (a present object: yes; its absent partner, or another absent category: no), attribute (is
an object in a given column: yes for its own, no for another) and relation (is one object to the left of another,
for images with two objects or more). The word associations are empty (the world has no synonyms), and the safe
words are words of the world's captions that name no object.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from hadpo.io import atomic_write_json, atomic_write_text
from hadpo.world.bench import BenchImage, BenchWorld
from hadpo.world.text import COLUMN_PHRASES, with_article

#: AMBER's generative query, verbatim as the release asks it.
GENERATIVE_QUERY = "Describe this image."
#: Words of the world's captions that never name an object.
SAFE_WORDS = ("image", "left", "middle", "right")


def _shape(world: BenchWorld, name: str) -> str:
    return next(c.shape for c in world.categories if c.name == name)


def _discriminative(world: BenchWorld, image: BenchImage, rng: random.Random) -> list[tuple[str, str, str]]:
    """``(type, question, truth)`` of one image's yes/no questions."""
    present = [o.name for o in image.objects]
    absent = [c.name for c in world.categories if c.name not in present]
    first = image.objects[0]
    partner = world.partner(first.name)
    negative = partner if partner not in present else rng.choice(absent)
    other_column = rng.choice([c for c in range(len(COLUMN_PHRASES)) if c != first.column])
    out = [
        ("discriminative-hallucination", f"Is there {with_article(first.name)} in this image?", "yes"),
        ("discriminative-hallucination", f"Is there {with_article(negative)} in this image?", "no"),
        ("discriminative-attribute-state", f"Is the {first.name} {COLUMN_PHRASES[first.column]} in this image?",
         "yes"),
        ("discriminative-attribute-state", f"Is the {first.name} {COLUMN_PHRASES[other_column]} in this image?",
         "no"),
    ]
    if len(image.objects) >= 2:
        a, b = rng.sample(list(image.objects), 2)
        out.append(("discriminative-relation", f"Is the {a.name} to the left of the {b.name} in this image?",
                    "yes" if a.column < b.column else "no"))
    return out


def write_amber_world(world: BenchWorld) -> list[Path]:
    """Write the AMBER files of ``world``'s benchmark images; returns the paths written."""
    root = Path(world.root) / "AMBER"
    images_dir = root / "image"
    images_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(world.seed)
    shapes = [c.shape for c in world.categories]
    queries: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    written: list[Path] = []
    names = [f"AMBER_{k}.png" for k in range(1, len(world.images) + 1)]
    for image, name in zip(world.images, names, strict=True):
        path = images_dir / name
        path.write_bytes(image.png)
        written.append(path)
        truth = [_shape(world, o.name) for o in image.objects]
        partners = [_shape(world, world.partner(o.name)) for o in image.objects]
        hallu = list(dict.fromkeys([s for s in partners if s not in truth] + [s for s in shapes if s not in truth]))
        queries.append({"id": len(queries) + 1, "image": name, "query": GENERATIVE_QUERY})
        annotations.append({"id": len(annotations) + 1, "type": "generative", "truth": truth, "hallu": hallu[:5]})
    for image, name in zip(world.images, names, strict=True):
        for kind, question, truth_answer in _discriminative(world, image, rng):
            queries.append({"id": len(queries) + 1, "image": name, "query": question})
            annotations.append({"id": len(annotations) + 1, "type": kind, "truth": truth_answer})
    data = root / "data"
    files = {"annotations": data / "annotations.json", "relation": data / "relation.json",
             "safe_words": data / "safe_words.txt", "query_all": data / "query" / "query_all.json"}
    atomic_write_json(files["annotations"], annotations)
    atomic_write_json(files["relation"], {shape: [] for shape in shapes})
    atomic_write_text(files["safe_words"], "".join(f"{w}\n" for w in SAFE_WORDS))
    atomic_write_json(files["query_all"], queries)
    return [*written, *files.values()]
