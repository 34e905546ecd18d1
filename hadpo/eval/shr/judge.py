"""Judging descriptions sentence by sentence through any chat client, with bounded re-asks.

For every image and every judge run the description is split into sentences, the prompt is filled and sent;
a reply that cannot be read (no ``Judgement:`` line, a wrong number of lines, an unknown label) is asked again
up to ``max_attempts`` times in all. Each re-ask and each run carries its attempt and run index in the request
(and a shifted seed), so the reply cache never hands back the reply being replaced, while a rerun of the whole
evaluation is still served entirely from the cache. Whatever stays unreadable is recorded as ``unjudged``
with the reason; prompts over ``max_prompt_chars`` are recorded as ``skipped`` without a call. Nothing is
dropped silently and nothing loops forever.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hadpo.eval.shr.parse import parse_judgement
from hadpo.eval.shr.prompt import DEFAULT_MAX_PROMPT_CHARS, build_judge_prompt
from hadpo.eval.shr.sentences import judged_sentences
from hadpo.judge.base import ChatClient, ChatRequest

#: Status of an image in one judge run.
JUDGED, UNJUDGED, SKIPPED = "judged", "unjudged", "skipped"

#: Seed shift between re-asks, far from the run shift (+1 per run) so the two never collide.
_ATTEMPT_SEED_STRIDE = 1000


@dataclass(frozen=True)
class ShrItem:
    """What the judge needs about one image: its description and the ground truth to check it against."""

    image_id: str
    response: str
    region_text: tuple[str, ...]
    facts: tuple[str, ...]


def _seed(seed: int | None, run: int, attempt: int) -> int | None:
    return None if seed is None else seed + (run - 1) + _ATTEMPT_SEED_STRIDE * attempt


def _record(response: str, sentences: list[str], status: str, raw: str | None, labels: list[str] | None,
            lines: list[str] | None, attempts: int, error: str | None) -> dict[str, Any]:
    """One image's entry in ``judgement.json`` (the original's keys plus status, attempts and error)."""
    per_sentence = [
        {
            "model_response": sentence,
            "judgement": lines[i] if lines is not None else None,
            "classification": labels[i] if labels is not None else None,
        }
        for i, sentence in enumerate(sentences)
    ]
    return {
        "raw_judgement": raw,
        "model_response": response,
        "judgement": per_sentence,
        "status": status,
        "attempts": attempts,
        "error": error,
    }


def judge_run(
    items: Sequence[ShrItem],
    client: ChatClient,
    *,
    run: int = 1,
    max_attempts: int = 3,
    max_prompt_chars: int = DEFAULT_MAX_PROMPT_CHARS,
    seed: int | None = 0,
) -> dict[str, dict[str, Any]]:
    """Judge every item once (with re-asks); returns ``{image_id: record}`` in item order."""
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
    out: dict[str, dict[str, Any]] = {}
    pending: dict[str, tuple[ShrItem, list[str], str]] = {}
    for item in items:
        sentences = judged_sentences(item.response)
        if not sentences:
            # Nothing to check: an empty description is judged, with zero sentences, without asking anyone.
            out[item.image_id] = _record(item.response, [], JUDGED, None, [], [], 0, None)
            continue
        prompt = build_judge_prompt(item.region_text, item.facts, sentences)
        if len(prompt) > max_prompt_chars:
            out[item.image_id] = _record(item.response, sentences, SKIPPED, None, None, None, 0,
                                         f"prompt has {len(prompt)} characters > max_prompt_chars {max_prompt_chars}")
            continue
        out[item.image_id] = {}  # keeps item order; filled below
        pending[item.image_id] = (item, sentences, prompt)

    last: dict[str, tuple[str | None, str]] = {}
    for attempt in range(max_attempts):
        if not pending:
            break
        ids = list(pending)
        requests = [
            ChatRequest.user(
                pending[i][2],
                variant={"run": run, "attempt": attempt},
                seed=_seed(seed, run, attempt),
                context={"image_id": i, "sentences": pending[i][1]},
            )
            for i in ids
        ]
        label = f"SHR judge run {run}" + (f" re-ask {attempt}" if attempt else "")
        replies = client.complete(requests, desc=label)
        for image_id, reply in zip(ids, replies, strict=True):
            item, sentences, _ = pending[image_id]
            if not reply.ok:
                last[image_id] = (None, f"no reply: {reply.error}")
                continue
            parsed = parse_judgement(reply.text or "", len(sentences))
            if parsed.ok:
                out[image_id] = _record(item.response, sentences, JUDGED, reply.text, parsed.labels, parsed.lines,
                                        attempt + 1, None)
                del pending[image_id]
            else:
                last[image_id] = (reply.text, f"unusable reply: {parsed.error}")
    for image_id, (item, sentences, _) in pending.items():
        raw, error = last[image_id]
        out[image_id] = _record(item.response, sentences, UNJUDGED, raw, None, None, max_attempts,
                                f"{error} (after {max_attempts} attempts)")
    return out


def judge_descriptions(
    items: Sequence[ShrItem],
    client: ChatClient,
    *,
    num_runs: int = 1,
    max_attempts: int = 3,
    max_prompt_chars: int = DEFAULT_MAX_PROMPT_CHARS,
    seed: int | None = 0,
) -> dict[str, dict[str, dict[str, Any]]]:
    """``{"run1": {image_id: record}, "run2": ...}``: ``num_runs`` independent judge runs (see :func:`judge_run`)."""
    if num_runs < 1:
        raise ValueError(f"num_runs must be >= 1, got {num_runs}")
    return {
        f"run{run}": judge_run(items, client, run=run, max_attempts=max_attempts,
                               max_prompt_chars=max_prompt_chars, seed=seed)
        for run in range(1, num_runs + 1)
    }


def status_counts(run: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """How many images of one run are judged, unjudged and skipped."""
    counts = {JUDGED: 0, UNJUDGED: 0, SKIPPED: 0}
    for record in run.values():
        counts[record["status"]] += 1
    return counts
