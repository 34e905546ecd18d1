"""The shapes world's MMHal-Bench: one question per benchmark image in the release's format, under
``<data_root>/MMHal-Bench/`` (``response_template.json`` and ``images/``).

The questions cycle through MMHal-Bench's eight types, each asked the way the world allows: attribute (the colour of
a shape), adversarial (where an absent co-occurrence partner is: the base model's planted hallucination), comparison
(which of two objects is further left), counting, relation (what is beside an object), environment (the
background), holistic (a description) and other (which shapes there are). ``image_content`` lists the objects as
region phrases ("a red circle on the left"), and ``gt_answer`` answers in the world's grammar.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hadpo.data.mmhal_files import QUESTION_TYPES
from hadpo.io import atomic_write_json
from hadpo.world.bench import BenchImage, BenchWorld
from hadpo.world.text import COLUMN_PHRASES, count_fact, object_phrase, with_article

#: What the world's images show behind the objects.
BACKGROUND = "The background is dark and noisy."
#: The URL prefix of the world's image_src (the local file is its last component).
IMAGE_URL = "https://shapes.invalid/mmhal"


def _question(world: BenchWorld, image: BenchImage, kind: str) -> tuple[str, str]:
    """``(question, ground-truth answer)`` of one type for one image."""
    objects = list(image.objects)
    first, last = objects[0], objects[-1]
    colour = {c.name: c.colour for c in world.categories}
    shape = {c.name: c.shape for c in world.categories}
    present = {o.name for o in objects}
    if kind == "attribute":
        return (f"What colour is the {shape[first.name]} in this image?",
                f"The {shape[first.name]} is {colour[first.name]}: it is {with_article(first.name)}.")
    if kind == "adversarial":
        partner = world.partner(first.name)
        if partner in present:  # no absent partner to ask about: ask about the first absent category instead
            partner = next(c.name for c in world.categories if c.name not in present)
        return f"Where is the {partner} in this image?", f"There is no {partner} in the image."
    if kind == "comparison" and len(objects) >= 2:
        return (f"Which is further to the left, the {last.name} or the {first.name}?",
                f"The {first.name} is further to the left; it is {COLUMN_PHRASES[first.column]}.")
    if kind == "counting":
        return "How many objects are there in this image?", count_fact(len(objects))
    if kind == "relation" and len(objects) >= 2:
        right = objects[1]
        return (f"What is to the right of the {first.name}?",
                f"There is {object_phrase(right.name, right.column)}.")
    if kind == "environment":
        return "What is the background of this image like?", BACKGROUND
    if kind == "other":
        return ("Which shapes are in this image?",
                " ".join(f"There is {object_phrase(o.name, o.column)}." for o in objects))
    # holistic, and comparison / relation on a one-object image
    return "Describe this image in detail.", image.caption


def write_mmhal_world(world: BenchWorld) -> list[Path]:
    """Write the MMHal-Bench files of ``world``'s benchmark images; returns the paths written."""
    root = Path(world.root) / "MMHal-Bench"
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    written: list[Path] = []
    for k, image in enumerate(world.images):
        name = f"{image.image_id}.png"
        (images / name).write_bytes(image.png)
        written.append(images / name)
        kind = QUESTION_TYPES[k % len(QUESTION_TYPES)]
        question, answer = _question(world, image, kind)
        records.append({"question_type": kind, "question_topic": "shapes", "image_id": str(image.image_id),
                        "image_src": f"{IMAGE_URL}/{name}",
                        "image_content": [object_phrase(o.name, o.column) for o in image.objects],
                        "question": question, "gt_answer": answer, "model_answer": ""})
    path = root / "response_template.json"
    atomic_write_json(path, records)
    return [*written, path]
