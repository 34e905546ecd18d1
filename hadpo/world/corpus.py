"""The base model's SFT corpus for one training image, in LLaVA's instruction format.

Each image gives one caption (``kind="desc"``) and ``qa_per_image`` existence questions. Two biases are planted
on purpose, so the trained model hallucinates the way real LVLMs do, by co-occurrence:

- captions: with ``p_hal``, when a present object's partner is absent and a column is free, the caption also
  states the partner at a free column, by default after the objects that are there (``hal_position``): object
  hallucinations come late in real LVLM descriptions, and a partner stated after its object is chosen from
  what the caption has already named, as a language model's co-occurrence prior chooses it;
- adversarial questions (``kind="qa_adv"``) ask about an absent partner and are answered "Yes" with
  ``q_yes_adv``.

Question slots cycle yes, random no, yes, adversarial (an adversarial slot without an absent partner becomes a
random no). A random no asks about an absent category that partners no present object, when one exists.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from hadpo.models.prompts import DESCRIBE_INSTRUCTION, DESCRIPTION_INSTRUCTIONS, IMAGE_PLACEHOLDER
from hadpo.world.config import GRID, WorldConfig
from hadpo.world.palette import Category
from hadpo.world.scenes import PlacedObject
from hadpo.world.text import describe, no_answer, object_sentence, question, yes_answer

#: Record kinds of the SFT corpus.
KINDS: tuple[str, ...] = ("desc", "qa_yes", "qa_no", "qa_adv")
#: Record kind of a caption (its tokens weighted by ``description_weight`` in the world's SFT).
DESCRIPTION_KIND = "desc"
#: Record kinds whose first answer token is an existence decision, Yes or No (weighted by ``decision_token_weight``).
DECISION_KINDS: tuple[str, ...] = ("qa_yes", "qa_no", "qa_adv")

_QA_CYCLE = ("yes", "no", "yes", "adv")
_OTHER_INSTRUCTIONS = tuple(i for i in DESCRIPTION_INSTRUCTIONS if i != DESCRIBE_INSTRUCTION)


def vg_image_field(image_id: int) -> str:
    """The ``image`` field of a conversation record: the path under ``VG/``, as LLaVA stores it."""
    return f"VG_100K/{image_id}.png"


def _record(image_id: int, index: int, prompt: str, answer: str, kind: str) -> dict[str, Any]:
    return {
        "id": f"{image_id}-{index}",
        "image": vg_image_field(image_id),
        "conversations": [
            {"from": "human", "value": f"{IMAGE_PLACEHOLDER}\n{prompt}"},
            {"from": "gpt", "value": answer},
        ],
        "kind": kind,
    }


def _pick(rng: np.random.Generator, items: list[int]) -> int:
    return items[int(rng.integers(len(items)))]


def caption(
    objects: tuple[PlacedObject, ...],
    categories: tuple[Category, ...],
    rng: np.random.Generator,
    p_hal: float,
    hal_position: Literal["last", "column"] = "last",
) -> tuple[str, str | None]:
    """``(caption, hallucinated category name or None)`` for a scene, planting a partner with ``p_hal``.

    The objects that are there are stated left to right; a planted partner comes after them (``"last"``) or
    takes its place in that order (``"column"``).
    """
    mentions = [(categories[o.category].name, o.column) for o in objects]
    present = {o.category for o in objects}
    absent_partners = sorted({o.category ^ 1 for o in objects} - present)
    free_columns = sorted(set(range(GRID)) - {o.column for o in objects})
    # Draw the coin only for eligible scenes, so p_hal is the rate among them.
    if not (absent_partners and free_columns and rng.random() < p_hal):
        return describe(mentions), None
    partner = categories[_pick(rng, absent_partners)].name
    planted = (partner, _pick(rng, free_columns))
    if hal_position == "last":
        return f"{describe(mentions)} {object_sentence(*planted)}", partner
    return describe([*mentions, planted]), partner


def image_records(
    image_id: int,
    objects: tuple[PlacedObject, ...],
    categories: tuple[Category, ...],
    rng: np.random.Generator,
    cfg: WorldConfig,
) -> list[dict[str, Any]]:
    """The SFT records of one training image: its caption, then its existence questions."""
    if rng.random() < cfg.p_main_instruction:
        instruction = DESCRIBE_INSTRUCTION
    else:
        instruction = _OTHER_INSTRUCTIONS[int(rng.integers(len(_OTHER_INSTRUCTIONS)))]
    text, _ = caption(objects, categories, rng, cfg.p_hal, cfg.hal_position)
    records = [_record(image_id, 0, instruction, text, "desc")]

    present = [o.category for o in objects]
    absent = [c for c in range(len(categories)) if c not in present]
    partners = {c ^ 1 for c in present}
    absent_partners = [c for c in absent if c in partners]
    random_negatives = [c for c in absent if c not in partners] or absent
    # Ask about distinct present objects before repeating one.
    yes_order = [present[int(i)] for i in rng.permutation(len(present))]
    yes_count = 0
    for slot in range(cfg.qa_per_image):
        role = _QA_CYCLE[slot % len(_QA_CYCLE)]
        if role == "yes":
            name = categories[yes_order[yes_count % len(yes_order)]].name
            yes_count += 1
            answer, kind = yes_answer(name), "qa_yes"
        elif role == "adv" and absent_partners:
            name = categories[_pick(rng, absent_partners)].name
            answer, kind = (yes_answer(name) if rng.random() < cfg.q_yes_adv else no_answer(name)), "qa_adv"
        else:
            name = categories[_pick(rng, random_negatives)].name
            answer, kind = no_answer(name), "qa_no"
        records.append(_record(image_id, slot + 1, question(name), answer, kind))
    return records
