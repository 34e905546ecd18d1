"""HA-DPO preference pairs from the description and QA records, sampled exactly as the original.

``offline`` (the original's default and only exercised path) replays its RNG: one ``random.seed(seed)``
before the description loop, then per image, in file order, ``choice(chosen)``, ``choice(rejected)``,
``choice(DESCRIPTION_INSTRUCTIONS)``. The training list is ``qa_pairs + desc_pairs * 2`` (each sampled
description pair twice, with the same instruction) after dropping QA records marked ``correct == True``.

``all`` follows the paper instead: every style-consistent rewrite becomes a pair, ~3 per image, each once.

Questions are stored without the ``<image>`` placeholder; the encoder puts the image in the prompt.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from hadpo.errors import DataError
from hadpo.models.prompts import DESCRIPTION_INSTRUCTIONS, strip_image_placeholder

if TYPE_CHECKING:
    from hadpo.data.hadpo_files import DescRecord, PopeRecord

PairKind = Literal["desc", "qa"]
Sampling = Literal["offline", "all"]


@dataclass(frozen=True)
class PreferencePair:
    """One preference pair on one image.

    ``source`` is the file the pair came from; ``record`` says where in it (the image id and rewrite indices
    of a description pair, the list index of a QA record), so errors about a pair can point at its input.
    """

    image_id: str
    question: str
    chosen: str
    rejected: str
    kind: PairKind
    source: str
    record: str = ""


def _check_rewrites(rec: DescRecord, desc_file: str) -> None:
    for field in ("chosen", "rejected"):
        texts = getattr(rec, field)
        if not texts:
            raise DataError(desc_file, "needs at least one description", record=rec.image_id, field=field)


def _qa_pairs(pope: Sequence[PopeRecord], pope_file: str) -> list[PreferencePair]:
    # The original skips only records whose `correct` is truthy; a missing flag keeps the record.
    return [
        PreferencePair(
            image_id=str(rec.image_id),
            question=strip_image_placeholder(rec.question),
            chosen=rec.chosen,
            rejected=rec.rejected,
            kind="qa",
            source=pope_file,
            record=str(index),
        )
        for index, rec in enumerate(pope)
        if rec.correct is not True
    ]


def _desc_offline(desc: Sequence[DescRecord], rng: random.Random, desc_file: str) -> list[PreferencePair]:
    pairs = []
    for rec in desc:
        _check_rewrites(rec, desc_file)
        # Call order matters for reproducing the released sampling: chosen, rejected, then the instruction.
        i = rng.choice(range(len(rec.chosen)))
        j = rng.choice(range(len(rec.rejected)))
        question = rng.choice(DESCRIPTION_INSTRUCTIONS)
        pairs.append(
            PreferencePair(
                image_id=str(rec.image_id),
                question=question,
                chosen=rec.chosen[i],
                rejected=rec.rejected[j],
                kind="desc",
                source=desc_file,
                record=f"{rec.image_id} chosen[{i}] rejected[{j}]",
            )
        )
    return pairs


def _desc_all(desc: Sequence[DescRecord], rng: random.Random, desc_file: str) -> list[PreferencePair]:
    pairs = []
    for rec in desc:
        _check_rewrites(rec, desc_file)
        # The i-th positive and the i-th negative are rewrites in one shared style; extras on the longer
        # side have no style-matched partner and are left out (zip stops at the shorter list).
        for i, (chosen, rejected) in enumerate(zip(rec.chosen, rec.rejected, strict=False)):
            pairs.append(
                PreferencePair(
                    image_id=str(rec.image_id),
                    question=rng.choice(DESCRIPTION_INSTRUCTIONS),
                    chosen=chosen,
                    rejected=rejected,
                    kind="desc",
                    source=desc_file,
                    record=f"{rec.image_id} chosen[{i}] rejected[{i}]",
                )
            )
    return pairs


def build_hadpo_pairs(
    desc: Sequence[DescRecord],
    pope: Sequence[PopeRecord],
    sampling: Sampling = "offline",
    seed: int = 42,
    *,
    desc_file: str = "desc_data.json",
    pope_file: str = "pope_data.json",
) -> list[PreferencePair]:
    """The HA-DPO training list: QA pairs first, then description pairs.

    Args:
        desc: description records in file order (``image_id``, ``chosen`` rewrites, ``rejected`` rewrites).
        pope: QA records in file order; those with ``correct is True`` are dropped, as in the original.
        sampling: ``"offline"`` reproduces the released code exactly: a private ``random.Random(seed)``
            (same sequence as ``random.seed(seed)``) draws, per image, one chosen, one rejected and one of
            the four description instructions, in that call order; each description pair then appears twice
            (``qa + desc * 2``), so 2K images give ~4K description rows. ``"all"`` is the paper's data
            volume (~6K description pairs from 3 rewrites per image): the i-th chosen is paired with the i-th
            rejected (when the lists differ in length the extras of the longer one are dropped, since only
            same-index rewrites share a style), each pair gets its own instruction drawn in pair order from
            the same seeded RNG, and each pair appears once (``qa + desc``).
        seed: the RNG seed (42 in the original).
        desc_file, pope_file: names recorded in each pair's ``source`` (and used in error messages).

    Raises:
        DataError: a description record with an empty ``chosen`` or ``rejected`` list.
        ValueError: an unknown ``sampling``.
    """
    rng = random.Random(seed)
    qa = _qa_pairs(pope, pope_file)
    if sampling == "offline":
        return qa + _desc_offline(desc, rng, desc_file) * 2
    if sampling == "all":
        return qa + _desc_all(desc, rng, desc_file)
    raise ValueError(f"sampling must be 'offline' or 'all', got {sampling!r}")
