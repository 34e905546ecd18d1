"""Step d: style-consistent rewriting of each description pair.

The judge rewrites the positive and the negative ``k`` times; rewrite ``i`` of both shares style ``i``, so a pair
differs in facts, not in style, and DPO learns what is true rather than how it is phrased. ``desc_data.json`` then
holds, per image, the ``k`` positive rewrites as ``chosen`` and the ``k`` negative rewrites as ``rejected``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hadpo.judge.ask import Job, ask
from hadpo.judge.base import ChatClient
from hadpo.mining.parse import ParsedRewrites, parse_rewrites
from hadpo.mining.prompts import rewrite_prompt

STEP = "rewrite"


@dataclass(frozen=True)
class DescriptionPair:
    """The corrected (positive) and original (negative) description of one image."""

    image_id: str
    positive: str
    negative: str


def rewrite_pairs(
    pairs: Sequence[DescriptionPair],
    client: ChatClient,
    *,
    k: int = 3,
    max_attempts: int = 3,
    seed: int | None = 0,
) -> list[dict[str, Any]]:
    """``k`` style-matched rewrites of every pair; one ``rewrites.jsonl`` record per pair, in order."""
    jobs = [
        Job(p.image_id, rewrite_prompt(p.positive, p.negative, k),
            {"image_id": p.image_id, "positive": p.positive, "negative": p.negative, "k": k})
        for p in pairs
    ]

    def parse(reply: str, job: Job) -> tuple[ParsedRewrites | None, str | None]:
        parsed = parse_rewrites(reply, k)
        if not parsed.ok:
            return None, parsed.error
        for i, pair in enumerate(parsed.pairs, start=1):
            if " ".join(pair.positive.split()) == " ".join(pair.negative.split()):
                return None, f"pair {i}: the positive and negative rewrites are identical"
        return parsed, None

    outcomes = ask(client, jobs, parse, variant={"step": STEP}, max_attempts=max_attempts, seed=seed,
                   label=STEP)
    records = []
    for p in pairs:
        out = outcomes[p.image_id]
        rewrites = out.value.pairs if out.ok and out.value is not None else []
        records.append({
            "image_id": p.image_id,
            "status": "ok" if out.ok else "failed",
            "styles": [r.style for r in rewrites],
            "chosen": [r.positive for r in rewrites],
            "rejected": [r.negative for r in rewrites],
            "attempts": out.attempts,
            "error": out.error,
            "reason": out.reason,
            "unusable": out.unusable,
            "raw": out.raw,
        })
    return records
