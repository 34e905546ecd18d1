"""The shapes world's MMHal-Bench: one question per benchmark image in the release's format, under
``<data_root>/MMHal-Bench/`` (``response_template.json`` and ``images/``).

The questions cycle through MMHal-Bench's eight types in the release's order, each asked the way the world allows:

* attribute — the colour of a shape in the image;
* adversarial — where the absent co-occurrence partner of a present object is (the planted hallucination the base
  model is prone to); the answer says there is none;
* comparison — which of two objects is further to the left;
* counting — how many objects there are;
* relation — what is to the right of the leftmost object (every object that is);
* environment — what the background is like;
* holistic — a detailed description;
* other — which shapes the image shows.

Comparison and relation need two objects: when one falls on a one-object image it moves to the next image with two.

``image_content`` lists the objects as region phrases ("a red circle on the left"), so a judge sees where each one
is, and ``gt_answer`` answers in the world's grammar (:mod:`hadpo.world.text`). Each image is copied into
``images/`` under the last component of its ``image_src``, as the release names its files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hadpo.data.mmhal_files import QUESTION_TYPES
from hadpo.io import atomic_write_json
from hadpo.world.bench import BenchImage, BenchWorld
from hadpo.world.text import absence_fact, column_phrase, count_fact, object_phrase, object_sentence, with_article

#: What the world's images show behind the objects (:mod:`hadpo.world.render`: dark, noisy pixels).
BACKGROUND = "The background is dark and noisy."
#: Words that describe that background rightly, and words that contradict it (read by the oracle).
BACKGROUND_WORDS = ("dark", "black", "dim", "noisy", "noise", "grainy", "speckled")
CONTRARY_BACKGROUND_WORDS = ("bright", "light", "white")
#: The URL prefix of the world's ``image_src`` (the local file is its last component).
IMAGE_URL = "https://shapes.invalid/mmhal"
#: The ``question_topic`` of every world question (the release's topics name kinds of scene).
TOPIC = "shapes"
#: The holistic question.
DESCRIBE = "Describe this image in detail."
#: The question types that need two objects in the image.
PAIR_TYPES = ("comparison", "relation")


def _question(world: BenchWorld, image: BenchImage, kind: str) -> tuple[str, str]:
    """``(question, ground-truth answer)`` of one type for one image (objects run left to right)."""
    objects = list(image.objects)
    first, last = objects[0], objects[-1]
    category = {c.name: c for c in world.categories}
    present = {o.name for o in objects}
    if kind == "attribute":
        # Every category has its own shape, so the shape word picks out one object.
        target = category[first.name]
        return (f"What colour is the {target.shape} in this image?",
                f"The {target.shape} is {target.colour}: it is {object_phrase(first.name, first.column)}.")
    if kind == "adversarial":
        # The first object's partner when absent, else another's; with every partner there, any absent category.
        absent = [world.partner(o.name) for o in objects if world.partner(o.name) not in present]
        partner = absent[0] if absent else next(c.name for c in world.categories if c.name not in present)
        return f"Where is the {partner} in this image?", absence_fact(partner)
    if kind == "comparison":
        return (f"Which is further to the left, the {last.name} or the {first.name}?",
                f"The {first.name} is further to the left: it is {column_phrase(first.column)}, and the "
                f"{last.name} is {column_phrase(last.column)}.")
    if kind == "counting":
        return "How many objects are there in this image?", count_fact(len(objects))
    if kind == "relation":
        return (f"What is to the right of the {first.name}?",
                " ".join(object_sentence(o.name, o.column) for o in objects[1:]))
    if kind == "environment":
        return "What is the background of this image like?", BACKGROUND
    if kind == "other":
        return ("Which shapes are in this image?",
                " ".join(f"There is {with_article(o.name)} {column_phrase(o.column)}." for o in objects))
    return DESCRIBE, image.caption  # holistic


def _question_types(world: BenchWorld) -> list[str]:
    """Each image's question type: MMHal-Bench's types in turn, a two-object type (comparison, relation) that falls
    on a one-object image deferred to the next image that has two, so every type keeps its share."""
    kinds: list[str] = []
    deferred: list[str] = []
    turn = 0
    for image in world.images:
        several = len(image.objects) >= 2
        if deferred and several:
            kinds.append(deferred.pop(0))
            continue
        kind = QUESTION_TYPES[turn % len(QUESTION_TYPES)]
        turn += 1
        if kind in PAIR_TYPES and not several:
            deferred.append(kind)
            kind = QUESTION_TYPES[turn % len(QUESTION_TYPES)]  # never a pair type: they are not adjacent
            turn += 1
        kinds.append(kind)
    return kinds


def mmhal_records(world: BenchWorld) -> list[dict[str, Any]]:
    """The question file's records, one per benchmark image (see :func:`_question_types` for their types)."""
    records: list[dict[str, Any]] = []
    for image, kind in zip(world.images, _question_types(world), strict=True):
        question, answer = _question(world, image, kind)
        records.append({"question_type": kind, "question_topic": TOPIC, "image_id": str(image.image_id),
                        "image_src": f"{IMAGE_URL}/{image.image_id}.png",
                        "image_content": [object_phrase(o.name, o.column) for o in image.objects],
                        "question": question, "gt_answer": answer, "model_answer": ""})
    return records


def write_mmhal_world(world: BenchWorld) -> list[Path]:
    """Write the MMHal-Bench files of ``world``'s benchmark images; returns the paths written."""
    root = Path(world.root) / "MMHal-Bench"
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for image in world.images:
        path = images / f"{image.image_id}.png"
        path.write_bytes(image.png)
        written.append(path)
    path = root / "response_template.json"
    atomic_write_json(path, mmhal_records(world))
    return [*written, path]
