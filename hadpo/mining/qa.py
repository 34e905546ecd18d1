"""Step e (first half): turn each description pair into existence questions with a right and a wrong response.

Questions ask about the objects the negative hallucinated (right answer: no) and about objects that are present
(right answer: yes). Each comes with a correct and an incorrect response in the model's own answer style, which
become ``chosen`` and ``reject`` of a ``pope_data.json`` record once the model has been asked the question
(:mod:`hadpo.mining.answer`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hadpo.judge.ask import Job, ask
from hadpo.judge.base import ChatClient
from hadpo.mining.parse import ParsedQuestions, parse_questions
from hadpo.mining.prompts import qa_prompt

STEP = "qa"


@dataclass(frozen=True)
class QASource:
    """What the QA conversion of one image sees: annotations, the pair, and the judged sentences."""

    image_id: str
    annotations: str
    positive: str
    negative: str
    sentences: tuple[str, ...]
    labels: tuple[str, ...]

    @property
    def hallucinated(self) -> list[str]:
        """The sentences labelled hallucination."""
        return [s for s, label in zip(self.sentences, self.labels, strict=True) if label == "hallucination"]


def convert_to_qa(
    sources: Sequence[QASource],
    client: ChatClient,
    *,
    max_hallucinated: int = 3,
    max_present: int = 2,
    yes_example: str = "Yes, there is a dog in the image.",
    no_example: str = "No, there is no dog in the image.",
    max_attempts: int = 3,
    seed: int | None = 0,
) -> list[dict[str, Any]]:
    """Questions for every source; one ``qa_items.jsonl`` record per source, in order."""
    jobs = [
        Job(
            s.image_id,
            qa_prompt(s.annotations, s.positive, s.negative, s.hallucinated, max_hallucinated=max_hallucinated,
                      max_present=max_present, yes_example=yes_example, no_example=no_example),
            {"image_id": s.image_id, "positive": s.positive, "negative": s.negative, "sentences": list(s.sentences),
             "labels": list(s.labels), "max_hallucinated": max_hallucinated, "max_present": max_present},
        )
        for s in sources
    ]

    def parse(reply: str, job: Job) -> tuple[ParsedQuestions | None, str | None]:
        parsed = parse_questions(reply, max_no=max_hallucinated, max_yes=max_present)
        return (parsed, None) if parsed.ok else (None, parsed.error)

    outcomes = ask(client, jobs, parse, variant={"step": STEP}, max_attempts=max_attempts, seed=seed,
                   label=STEP)
    records = []
    for s in sources:
        out = outcomes[s.image_id]
        items = out.value.items if out.ok and out.value is not None else []
        records.append({
            "image_id": s.image_id,
            "status": "ok" if out.ok else "failed",
            "items": [{"question": q.question, "answer": q.answer, "chosen": q.correct, "reject": q.incorrect}
                      for q in items],
            "attempts": out.attempts,
            "error": out.error,
            "reason": out.reason,
            "unusable": out.unusable,
            "raw": out.raw,
        })
    return records
