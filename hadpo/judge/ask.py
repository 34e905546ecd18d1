"""Asking a judge one prompt per item, with bounded re-asks of unreadable replies and resumption from the cache.

Every judged step of the kit (SHR, mining's corrections, rewrites and questions) sends one prompt per item and
reads the reply with its own parser. The rules are shared:

* a reply the parser refuses is *unusable*: it is asked again, up to ``max_attempts`` asks in all; each re-ask
  carries its attempt in the request's cache variant (and a shifted seed), so it is a new question, never the
  cached old answer;
* only accepted replies are cached (the parser is the client's ``accept`` check), so an item that stayed
  unusable is asked afresh on a rerun, once the judge or the prompt is fixed;
* an item that got no reply at all (the client gave up on transient faults) is not re-asked in this run: the
  client already retried it, and asking again would only multiply the waiting; a rerun asks it again;
* before asking, every attempt's cache entry is looked up: an item accepted at any attempt of an earlier run is
  taken from there, with the same record as then, so a rerun makes no request for finished items and resumed
  equals uninterrupted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from hadpo.judge.base import ChatClient, ChatReply, ChatRequest

T = TypeVar("T")

#: Seed shift between re-asks (far from other shifts callers apply, e.g. +1 per SHR judge run).
ATTEMPT_SEED_STRIDE = 1000

#: Why an item has no value: the client gave up on it, or every reply was unreadable.
NO_REPLY, UNUSABLE = "no reply", "unusable reply"
FailureReason = Literal["no reply", "unusable reply"]


@dataclass(frozen=True)
class Job:
    """One prompt to send: ``key`` identifies the item, ``context`` feeds offline responders (never sent)."""

    key: str
    prompt: str
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What one job gave: ``value`` when a reply was usable, else ``error`` and its ``reason`` class.

    Attributes:
        raw: the last reply text (None when none came).
        attempts: asks made, the last included.
        unusable: replies refused by the parser on the way.
        cached: the accepted reply came from the cache.
    """

    key: str
    value: T | None
    raw: str | None
    attempts: int
    unusable: int = 0
    error: str | None = None
    reason: FailureReason | None = None
    cached: bool = False

    @property
    def ok(self) -> bool:
        """Whether a usable reply was parsed."""
        return self.error is None


#: A parser: ``(reply text, job) -> (value, None)`` when usable, ``(None, reason)`` otherwise.
Parser = Callable[[str, Job], "tuple[T | None, str | None]"]


def _request(job: Job, variant: Mapping[str, Any], attempt: int, seed: int | None) -> ChatRequest:
    return ChatRequest.user(
        job.prompt,
        variant={**variant, "attempt": attempt},
        seed=None if seed is None else seed + ATTEMPT_SEED_STRIDE * attempt,
        context={**variant, **job.context},
    )


def _accept_for(batch: Sequence[Job], parse: Callable[[str, Job], tuple[Any, str | None]]
                ) -> Callable[[int, str], str | None]:
    return lambda i, text: parse(text, batch[i])[1]


def _accepted(job: Job, reply: ChatReply, attempt: int, parse: Callable[[str, Job], tuple[T | None, str | None]]
              ) -> Outcome[T]:
    value, _ = parse(reply.text or "", job)
    return Outcome(job.key, value, reply.text, attempt + 1, unusable=attempt, cached=reply.cached)


def resume(
    client: ChatClient,
    jobs: Sequence[Job],
    parse: Callable[[str, Job], tuple[T | None, str | None]],
    *,
    variant: Mapping[str, Any],
    max_attempts: int,
    seed: int | None = 0,
    count: bool = True,
) -> tuple[dict[str, Outcome[T]], list[Job]]:
    """``(outcomes of the jobs accepted at some attempt of an earlier run, the jobs still to ask)``; no call made.

    ``count`` False only peeks (used to decide whether the judge will be needed at all).
    """
    done: dict[str, Outcome[T]] = {}
    pending = list(jobs)
    for attempt in range(max_attempts):
        if not pending:
            break
        hits = client.lookup([_request(j, variant, attempt, seed) for j in pending],
                             accept=_accept_for(pending, parse), count=count)
        for job, hit in zip(pending, hits, strict=True):
            if hit is not None:
                done[job.key] = _accepted(job, hit, attempt, parse)
        pending = [j for j in pending if j.key not in done]
    return done, pending


def ask(
    client: ChatClient,
    jobs: Sequence[Job],
    parse: Callable[[str, Job], tuple[T | None, str | None]],
    *,
    variant: Mapping[str, Any],
    max_attempts: int,
    seed: int | None = 0,
    label: str = "judge",
) -> dict[str, Outcome[T]]:
    """Send every job (all at once, then the unusable ones again); returns ``{key: outcome}`` in job order.

    ``variant`` names the step (e.g. ``{"step": "correct"}`` or ``{"run": 2}``): part of every request's cache
    key, so two steps asking the same prompt get separate answers. ``label`` names the progress bar. Raises
    :class:`~hadpo.errors.JudgeUnavailable` when the judge fails as a whole.
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
    keys = [job.key for job in jobs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"{label}: job keys must be unique")
    done, pending = resume(client, jobs, parse, variant=variant, max_attempts=max_attempts, seed=seed)
    last: dict[str, str | None] = {}
    for attempt in range(max_attempts):
        if not pending:
            break
        batch = pending
        replies = client.complete([_request(j, variant, attempt, seed) for j in batch],
                                  desc=label + (f" re-ask {attempt}" if attempt else ""),
                                  accept=_accept_for(batch, parse))
        pending = []
        for job, reply in zip(batch, replies, strict=True):
            if reply.usable:
                done[job.key] = _accepted(job, reply, attempt, parse)
            elif not reply.ok:
                done[job.key] = Outcome(job.key, None, last.get(job.key), attempt + 1, unusable=attempt,
                                        error=f"no reply: {reply.error}", reason=NO_REPLY)
            else:
                last[job.key] = reply.text
                if attempt + 1 < max_attempts:
                    pending.append(job)
                else:
                    done[job.key] = Outcome(job.key, None, reply.text, max_attempts, unusable=max_attempts,
                                            error=f"unusable reply: {reply.unusable} (after {max_attempts} attempts)",
                                            reason=UNUSABLE)
    return {key: done[key] for key in keys}
