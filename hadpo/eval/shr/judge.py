"""Judging descriptions sentence by sentence through any chat client, with bounded re-asks.

For every image and every judge run the description is split into sentences, the prompt is filled and sent
(:func:`hadpo.judge.ask.ask`: unusable replies asked again up to ``judge_attempts`` times, never cached; a rerun
takes finished images from the cache without a request). Each run carries its index in the request (and a
shifted seed), so run 2 is a new judgement, not run 1's cached one. Every image gets a record with a status:

* ``judged``: the reply gave a label per sentence (under ``counting: original`` some labels may be unknown);
* ``unjudged``: no reply, or none usable (the reason is in ``error``; under ``counting: original`` also a reply
  with the wrong number of lines, kept with no labels as the original did);
* ``skipped``: the prompt is longer than ``max_prompt_chars`` (no call made, as in the original).

Nothing is dropped silently and nothing loops forever.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hadpo.eval.shr.parse import Counting, ParsedJudgement, parse_judgement, unusable_reason
from hadpo.eval.shr.prompt import (
    DEFAULT_MAX_PROMPT_CHARS,
    JudgeFormat,
    JudgePrompt,
    NormalizedRegion,
    build_judge_prompt,
)
from hadpo.eval.shr.sentences import judged_sentences, split_sentences
from hadpo.judge.ask import NO_REPLY, UNUSABLE, Job, ask
from hadpo.judge.base import ChatClient

#: Status of an image in one judge run.
JUDGED, UNJUDGED, SKIPPED = "judged", "unjudged", "skipped"

#: Why an image stayed unjudged beyond "no reply" / "unusable reply": the original counting's line-count mismatch.
LINE_COUNT = "wrong line count"


@dataclass(frozen=True)
class ShrItem:
    """What the judge needs about one image: its description and the ground truth to check it against."""

    image_id: str
    response: str
    regions: tuple[NormalizedRegion, ...] = ()
    facts: tuple[str, ...] = ()


@dataclass(frozen=True)
class ShrProtocol:
    """How descriptions are judged: the template and its slot format, the reading of replies, the limits."""

    template: JudgePrompt = field(default_factory=JudgePrompt.kit)
    judge_format: JudgeFormat = "kit"
    counting: Counting = "kit"
    max_attempts: int = 3
    max_prompt_chars: int = DEFAULT_MAX_PROMPT_CHARS
    seed: int | None = 0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")

    def record(self) -> dict[str, Any]:
        """The settings as recorded with the results."""
        return {"judge_prompt": self.template.record(), "judge_format": self.judge_format, "counting": self.counting,
                "judge_attempts": self.max_attempts, "max_prompt_chars": self.max_prompt_chars,
                "judge_seed": self.seed}


def _record(response: str, sentences: list[str], status: str, raw: str | None, parsed: ParsedJudgement | None, *,
            attempts: int = 0, unusable: int = 0, error: str | None = None,
            reason: str | None = None) -> dict[str, Any]:
    """One image's entry in ``judgement.json`` (the original's keys plus status, attempts and why)."""
    labelled = parsed is not None and len(parsed.lines) == len(sentences)
    per_sentence = [
        {
            "model_response": sentence,
            "judgement": parsed.lines[i] if labelled and parsed is not None else None,
            "classification": parsed.labels[i] if labelled and parsed is not None else None,
        }
        for i, sentence in enumerate(sentences)
    ]
    return {
        "raw_judgement": raw,
        "model_response": response,
        "judgement": per_sentence,
        "status": status,
        "attempts": attempts,
        "unusable": unusable,
        "error": error,
        "reason": reason,
    }


def judge_jobs(items: Sequence[ShrItem], protocol: ShrProtocol) -> tuple[list[Job], dict[str, dict[str, Any]]]:
    """The prompts to send, and the records of images settled without asking (empty or over-long)."""
    jobs: list[Job] = []
    settled: dict[str, dict[str, Any]] = {}
    for item in items:
        sentences = judged_sentences(item.response)
        if not sentences:
            # Nothing to check: an empty description is judged, with zero sentences, without asking anyone.
            settled[item.image_id] = _record(item.response, [], JUDGED, None, ParsedJudgement([], [], None))
            continue
        prompt = build_judge_prompt(item.regions, item.facts, split_sentences(item.response),
                                    template=protocol.template, judge_format=protocol.judge_format)
        if len(prompt) > protocol.max_prompt_chars:
            settled[item.image_id] = _record(
                item.response, sentences, SKIPPED, None, None,
                error=f"prompt has {len(prompt)} characters > max_prompt_chars {protocol.max_prompt_chars}")
            continue
        jobs.append(Job(item.image_id, prompt, {"image_id": item.image_id, "sentences": sentences}))
    return jobs, settled


def reply_parser(protocol: ShrProtocol):
    """``parse(reply, job) -> (parsed, None)`` when usable under the protocol's counting, else ``(None, reason)``."""

    def parse(reply: str, job: Job) -> tuple[ParsedJudgement | None, str | None]:
        parsed = parse_judgement(reply, len(job.context["sentences"]), protocol.counting)
        problem = unusable_reason(parsed, protocol.counting)
        return (parsed, None) if problem is None else (None, problem)

    return parse


def run_variant(run: int, seed: int | None) -> tuple[dict[str, int], int | None]:
    """The cache variant and base seed of judge run ``run`` (1-based): each run is its own judgement."""
    return {"run": run}, None if seed is None else seed + (run - 1)


def judge_run(
    items: Sequence[ShrItem],
    client: ChatClient,
    *,
    run: int = 1,
    protocol: ShrProtocol | None = None,
) -> dict[str, dict[str, Any]]:
    """Judge every item once (with re-asks); returns ``{image_id: record}`` in item order."""
    protocol = protocol or ShrProtocol()
    jobs, settled = judge_jobs(items, protocol)
    variant, seed = run_variant(run, protocol.seed)
    outcomes = ask(client, jobs, reply_parser(protocol), variant=variant, max_attempts=protocol.max_attempts,
                   seed=seed, label=f"SHR judge run {run}")
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        if item.image_id in settled:
            out[item.image_id] = settled[item.image_id]
            continue
        o = outcomes[item.image_id]
        sentences = judged_sentences(item.response)
        counts = {"attempts": o.attempts, "unusable": o.unusable}
        if not o.ok:
            out[item.image_id] = _record(item.response, sentences, UNJUDGED, o.raw, None, error=o.error,
                                         reason=o.reason, **counts)
        elif o.value is not None and len(o.value.lines) != len(sentences):
            # Only under counting: original, which keeps such a reply without labels, as the original did.
            out[item.image_id] = _record(item.response, sentences, UNJUDGED, o.raw, o.value, error=o.value.error,
                                         reason=LINE_COUNT, **counts)
        else:
            out[item.image_id] = _record(item.response, sentences, JUDGED, o.raw, o.value, **counts)
    return out


def judge_descriptions(
    items: Sequence[ShrItem],
    client: ChatClient,
    *,
    num_runs: int = 1,
    protocol: ShrProtocol | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """``{"run1": {image_id: record}, "run2": ...}``: ``num_runs`` independent judge runs (see :func:`judge_run`)."""
    if num_runs < 1:
        raise ValueError(f"num_runs must be >= 1, got {num_runs}")
    return {f"run{run}": judge_run(items, client, run=run, protocol=protocol) for run in range(1, num_runs + 1)}


def status_counts(run: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """How many images of one run are judged, unjudged and skipped."""
    counts = {JUDGED: 0, UNJUDGED: 0, SKIPPED: 0}
    for record in run.values():
        counts[record["status"]] += 1
    return counts


#: Reasons an image stays unjudged, as recorded (``reason``).
UNJUDGED_REASONS = (NO_REPLY, UNUSABLE, LINE_COUNT)
