"""Step c: the judge marks hallucinated sentences of each description and writes a corrected one.

The corrected description is the positive and the model's original the negative. A description without a
hallucinated sentence gives no pair (it is counted), and so does an empty one (no call is made for it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hadpo.eval.shr.sentences import judged_sentences
from hadpo.judge.ask import Job, ask
from hadpo.judge.base import ChatClient
from hadpo.mining.parse import ParsedCorrection, parse_correction
from hadpo.mining.prompts import correct_prompt

STEP = "correct"


@dataclass(frozen=True)
class Description:
    """A model description of one image, with the annotation block the judge checks it against."""

    image_id: str
    response: str
    annotations: str


def _normal(text: str) -> str:
    return " ".join(text.lower().split()).rstrip(".")


def correction_record(description: Description, sentences: list[str], parsed: ParsedCorrection | None, *,
                      status: str, attempts: int, raw: str | None, error: str | None = None,
                      reason: str | None = None, unusable: int = 0) -> dict[str, Any]:
    """One line of ``corrections.jsonl``."""
    labels = parsed.labels if parsed is not None else []
    positive = parsed.corrected if parsed is not None else None
    return {
        "image_id": description.image_id,
        "status": status,
        "negative": description.response,
        "sentences": sentences,
        "labels": labels,
        "judgements": parsed.lines if parsed is not None else [],
        "hallucinated": parsed.hallucinated if parsed is not None else [],
        "positive": positive,
        "pair": status == "ok" and positive is not None,
        "attempts": attempts,
        "error": error,
        "reason": reason,
        "unusable": unusable,
        "raw": raw,
    }


def detect_and_correct(
    descriptions: Sequence[Description],
    client: ChatClient,
    *,
    max_attempts: int = 3,
    seed: int | None = 0,
) -> list[dict[str, Any]]:
    """Judge and correct every description; one record per description, in order (see :func:`correction_record`)."""
    split = {d.image_id: judged_sentences(d.response) for d in descriptions}
    by_id: Mapping[str, Description] = {d.image_id: d for d in descriptions}
    jobs = [
        Job(d.image_id, correct_prompt(d.annotations, split[d.image_id]),
            {"image_id": d.image_id, "sentences": split[d.image_id]})
        for d in descriptions if split[d.image_id]
    ]

    def parse(reply: str, job: Job) -> tuple[ParsedCorrection | None, str | None]:
        parsed = parse_correction(reply, len(split[job.key]))
        if not parsed.ok:
            return None, parsed.error
        if parsed.corrected is not None and _normal(parsed.corrected) == _normal(by_id[job.key].response):
            return None, "the corrected description is the original unchanged"
        return parsed, None

    outcomes = ask(client, jobs, parse, variant={"step": STEP}, max_attempts=max_attempts, seed=seed,
                   label=STEP)
    records = []
    for d in descriptions:
        sentences = split[d.image_id]
        if not sentences:
            records.append(correction_record(d, [], ParsedCorrection(), status="ok", attempts=0, raw=None))
            continue
        out = outcomes[d.image_id]
        if out.ok:
            records.append(correction_record(d, sentences, out.value, status="ok", attempts=out.attempts, raw=out.raw,
                                             unusable=out.unusable))
        else:
            records.append(correction_record(d, sentences, None, status="failed", attempts=out.attempts, raw=out.raw,
                                             error=out.error, reason=out.reason, unusable=out.unusable))
    return records
