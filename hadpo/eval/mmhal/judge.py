"""Judging MMHal-Bench answers through any chat client: one prompt per question, bounded re-asks, resumable.

Each answer is rated by :func:`hadpo.judge.ask.ask` (an unreadable reply, one without a ``Rating: N`` line, is asked
again up to ``judge_attempts`` times and never cached; a rerun takes finished questions from the cache without a
request). Every question gets a record: ``judged`` with its rating, or ``unjudged`` with the reason (no reply, or
none readable) — never dropped silently.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hadpo.data.mmhal_files import MmhalItem
from hadpo.eval.mmhal.prompt import MmhalPrompt, parse_rating, prompt_blocks
from hadpo.judge.ask import Job, ask, resume
from hadpo.judge.base import ChatClient

JUDGED, UNJUDGED = "judged", "unjudged"
#: Unjudged questions listed by name in ``metrics.json`` and in the failure message.
LISTED_UNJUDGED = 5
#: The request variant of MMHal-Bench's judgement (part of every cache key).
VARIANT = {"step": "mmhal"}


@dataclass(frozen=True)
class MmhalProtocol:
    """How answers are judged: the template, the re-asks and the seed."""

    template: MmhalPrompt = field(default_factory=MmhalPrompt.kit)
    max_attempts: int = 3
    seed: int | None = 0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")

    def record(self) -> dict[str, Any]:
        """The settings as recorded with the results (SHR's names)."""
        return {"judge_prompt": self.template.record(), "judge_attempts": self.max_attempts, "judge_seed": self.seed}


def judge_jobs(items: Sequence[MmhalItem], answers: Mapping[int, str], protocol: MmhalProtocol) -> list[Job]:
    """One prompt per question; the context (never sent) lets an offline judge answer it."""
    jobs = []
    for item in items:
        answer = answers[item.index]
        jobs.append(Job(str(item.index), protocol.template.fill(prompt_blocks(
            item.image_content, item.question, item.gt_answer, answer)), context={
                "task": "mmhal", "image_id": item.image_id, "image_content": list(item.image_content),
                "question": item.question, "gt_answer": item.gt_answer, "answer": answer,
                "question_type": item.question_type}))
    return jobs


def _parse(reply: str, job: Job) -> tuple[int | None, str | None]:
    """The rating, or why the reply is unusable (so it is asked again)."""
    rating = parse_rating(reply)
    return (rating, None) if rating is not None else (None, "no 'Rating: N' line with N from 0 to 6")


def judge_work_left(items: Sequence[MmhalItem], answers: Mapping[int, str], client: ChatClient,
                    protocol: MmhalProtocol) -> bool:
    """Whether some question has no accepted reply on hand (so the judge will be asked)."""
    _, pending = resume(client, judge_jobs(items, answers, protocol), _parse, variant=VARIANT,
                        max_attempts=protocol.max_attempts, seed=protocol.seed, count=False)
    return bool(pending)


def judge_answers(items: Sequence[MmhalItem], answers: Mapping[int, str], client: ChatClient,
                  protocol: MmhalProtocol) -> dict[str, dict[str, Any]]:
    """``{item index: record}`` in item order: status, rating, the reply, attempts and errors."""
    outcomes = ask(client, judge_jobs(items, answers, protocol), _parse, variant=VARIANT,
                   max_attempts=protocol.max_attempts, seed=protocol.seed, label="MMHal judge")
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        o = outcomes[str(item.index)]
        record: dict[str, Any] = {"question_type": item.question_type, "image_id": item.image_id,
                                  "question": item.question, "answer": answers[item.index], "reply": o.raw,
                                  "attempts": o.attempts, "unusable": o.unusable}
        if o.ok:
            record.update(status=JUDGED, rating=o.value)
        else:
            record.update(status=UNJUDGED, rating=None, error=o.error, reason=o.reason)
        out[str(item.index)] = record
    return out


def judge_report(records: Mapping[str, Mapping[str, Any]], calls: Mapping[str, Any]) -> dict[str, Any]:
    """The ``judge`` section of ``metrics.json``: what the judge cost and what it left undone."""
    unjudged = [(k, r) for k, r in records.items() if r["status"] == UNJUDGED]
    return {
        "calls": dict(calls),
        "reasks": sum(max(int(r.get("attempts", 0)) - 1, 0) for r in records.values()),
        "unusable_replies": sum(int(r.get("unusable", 0)) for r in records.values()),
        "unjudged_questions": len(unjudged),
        "unjudged_reasons": dict(sorted(Counter(str(r.get("reason")) for _, r in unjudged).items())),
        "first_unjudged": [{"question": k, "error": r.get("error")} for k, r in unjudged[:LISTED_UNJUDGED]],
    }
