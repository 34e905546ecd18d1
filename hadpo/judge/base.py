"""The chat-completion interface every LLM step of the kit talks to (SHR judging, mining corrections, rewrites).

A caller builds :class:`ChatRequest` objects and hands a batch of them to a :class:`ChatClient`; it gets one
:class:`ChatReply` per request, in order. A reply either carries text or says why there is none: a backend
never raises for a single failed request, so one bad request cannot sink a whole evaluation and the caller
decides how to count it. A judge that fails as a whole (a rejected key, an unknown model, a server that is down)
raises :class:`~hadpo.errors.JudgeUnavailable` instead: every further request would fail the same way.

The caller may pass ``accept``, its own check of a reply (e.g. "one judgement line per sentence"): only accepted
replies are cached, so an unusable reply is asked again on a rerun rather than remembered as the answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion to make.

    Attributes:
        messages: ``({"role": ..., "content": ...}, ...)`` in order.
        variant: extra values that make otherwise identical requests distinct in the reply cache, e.g.
            ``{"run": 2, "attempt": 1}``: a re-ask or a second judge run must not be answered from the cache
            with the first reply. Part of the cache key; never sent to the server.
        seed: per-request sampling seed; ``None`` uses the client's default.
        context: structured data for offline backends (an annotation oracle needs the image id); neither sent
            nor hashed.
    """

    messages: tuple[Mapping[str, str], ...]
    variant: Mapping[str, Any] = field(default_factory=dict)
    seed: int | None = None
    context: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.messages:
            raise ValueError("a chat request needs at least one message")
        for i, msg in enumerate(self.messages):
            if msg.get("role") not in ROLES or not isinstance(msg.get("content"), str):
                raise ValueError(f"message {i} must have a role in {ROLES} and string content, got {msg!r}")

    @classmethod
    def user(cls, text: str, **kwargs: Any) -> ChatRequest:
        """A request holding a single user message (how the original SHR judge asks)."""
        return cls(messages=({"role": "user", "content": text},), **kwargs)


@dataclass(frozen=True)
class ChatReply:
    """The outcome of one request: ``text`` on success, otherwise ``error`` says why.

    Attributes:
        text: the assistant message, or None when every try failed.
        error: a one-line reason when ``text`` is None.
        cached: True when the reply came from the on-disk cache (no request was made).
        tries: HTTP calls made for this reply (0 when cached or offline).
        model: the model id the server reported, when it reported one.
        unusable: why the caller's ``accept`` check refused ``text`` (None when accepted or not checked).
    """

    text: str | None
    error: str | None = None
    cached: bool = False
    tries: int = 0
    model: str | None = None
    unusable: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the reply carries text."""
        return self.text is not None

    @property
    def usable(self) -> bool:
        """Whether the reply carries text the caller accepted."""
        return self.text is not None and self.unusable is None


#: The caller's check of a reply: ``accept(i, text)`` is None when the reply to request ``i`` can be used,
#: otherwise the reason it cannot.
Accept = Callable[[int, str], "str | None"]


@runtime_checkable
class ChatClient(Protocol):
    """A backend that answers chat requests (an HTTP API, or an offline function)."""

    def complete(self, requests: Sequence[ChatRequest], *, desc: str = "chat",
                 accept: Accept | None = None) -> list[ChatReply]:
        """Answer every request; the i-th reply belongs to the i-th request. ``desc`` labels the progress bar.

        ``accept`` marks replies the caller cannot use (:attr:`ChatReply.unusable`); those are never cached.
        Raises :class:`~hadpo.errors.JudgeUnavailable` when the judge as a whole fails.
        """
        ...

    def lookup(self, requests: Sequence[ChatRequest], *, accept: Accept | None = None,
               count: bool = True) -> list[ChatReply | None]:
        """Accepted replies already on hand (cached) for ``requests``, None where there is none; makes no call.

        ``count`` False only peeks: the hits are not counted as used (``cache_hits``).
        """
        ...

    def probe(self) -> None:
        """Check with one small request that the key, the model and the endpoint work.

        Raises :class:`~hadpo.errors.JudgeUnavailable` naming the endpoint, the model and the server's message.
        """
        ...

    def faults(self) -> dict[str, Any]:
        """Requests made and faults met so far (:data:`hadpo.judge.faults.FAULT_FIELDS`)."""
        ...

    def protocol(self) -> dict[str, Any]:
        """What decides the replies (backend, model id, sampling settings), to record with results.

        Must never contain a secret.
        """
        ...
