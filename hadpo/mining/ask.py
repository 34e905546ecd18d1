"""Asking a chat client for one reply per image, with bounded re-asks of unreadable replies.

Every mining step sends one prompt per image and parses the reply. A reply that cannot be used is asked again,
up to ``max_attempts`` asks in all; each re-ask carries its step and attempt in the request's cache variant (and
a shifted seed), so the on-disk cache never hands back the reply being replaced while a rerun of the whole step is
still served from the cache. An image whose replies stay unusable is reported with the last reason, never retried
without end. An image that got no reply at all (the backend gave up) is marked ``retryable``: a later run asks
again, whereas an unusable reply is final (the cache would only repeat it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from hadpo.judge.base import ChatClient, ChatRequest

T = TypeVar("T")

#: Seed shift between re-asks.
_ATTEMPT_SEED_STRIDE = 1000

#: A parser: ``(reply text, job) -> (value, None)`` when usable, ``(None, reason)`` otherwise.
Parser = Callable[[str, "Job"], "tuple[T | None, str | None]"]


@dataclass(frozen=True)
class Job:
    """One prompt to send: ``key`` identifies the image, ``context`` feeds offline responders (never sent)."""

    key: str
    prompt: str
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What one job gave: ``value`` when a reply was usable, else ``error`` (and the last raw reply)."""

    key: str
    value: T | None
    raw: str | None
    attempts: int
    error: str | None = None
    retryable: bool = False

    @property
    def ok(self) -> bool:
        """Whether a usable reply was parsed."""
        return self.error is None


def ask(
    client: ChatClient,
    jobs: Sequence[Job],
    parse: Callable[[str, Job], tuple[T | None, str | None]],
    *,
    step: str,
    max_attempts: int,
    seed: int | None = 0,
) -> dict[str, Outcome[T]]:
    """Send every job (all at once, then the unusable ones again), parse, and return ``{key: outcome}`` in job order."""
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
    keys = [job.key for job in jobs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"{step}: job keys must be unique")
    pending = {job.key: job for job in jobs}
    done: dict[str, Outcome[T]] = {}
    last: dict[str, tuple[str | None, str, bool]] = {}
    for attempt in range(max_attempts):
        if not pending:
            break
        batch = list(pending.values())
        requests = [
            ChatRequest.user(
                job.prompt,
                variant={"step": step, "attempt": attempt},
                seed=None if seed is None else seed + _ATTEMPT_SEED_STRIDE * attempt,
                context={"step": step, **job.context},
            )
            for job in batch
        ]
        replies = client.complete(requests, desc=f"{step}" + (f" re-ask {attempt}" if attempt else ""))
        for job, reply in zip(batch, replies, strict=True):
            if not reply.ok:
                last[job.key] = (None, f"no reply: {reply.error}", True)
                continue
            value, error = parse(reply.text or "", job)
            if error is None:
                done[job.key] = Outcome(job.key, value, reply.text, attempt + 1)
                del pending[job.key]
            else:
                last[job.key] = (reply.text, f"unusable reply: {error}", False)
    for key in pending:
        raw, error, retryable = last[key]
        done[key] = Outcome(key, None, raw, max_attempts, f"{error} (after {max_attempts} attempts)", retryable)
    return {key: done[key] for key in keys}
