"""MMHal-Bench's numbers from the judge's ratings: the mean score (0–6) overall and per question type, and the
hallucination rate, the share of judged answers rated below 3 (the ratings of answers with hallucination).

Only judged answers count; the unjudged are counted beside the numbers, and the stage refuses to present a score
from a judgement with more unjudged answers than ``max_unjudged`` allows (:class:`~hadpo.errors.JudgeIncomplete`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hadpo.data.mmhal_files import QUESTION_TYPES
from hadpo.eval.mmhal.prompt import HALLUCINATION_BELOW


def _mean(values: list[int]) -> float | None:
    return sum(values) / len(values) if values else None


def mmhal_metrics(records: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Score, hallucination rate and counts from :func:`hadpo.eval.mmhal.judge.judge_answers`' records."""
    ratings = [int(r["rating"]) for r in records.values() if r.get("rating") is not None]
    by_type = {kind: _mean([int(r["rating"]) for r in records.values()
                            if r["question_type"] == kind and r.get("rating") is not None])
               for kind in QUESTION_TYPES}
    return {
        "questions": len(records),
        "judged": len(ratings),
        "unjudged": len(records) - len(ratings),
        "score": _mean(ratings),
        "hallucination_rate": (sum(1 for r in ratings if r < HALLUCINATION_BELOW) / len(ratings)) if ratings else None,
        "score_by_type": {k: v for k, v in by_type.items() if v is not None},
    }
