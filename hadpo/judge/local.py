"""A chat client backed by a local Python function: offline judges (the shapes-world annotation oracle) and
deterministic stand-ins for LLM steps plug into the same interface as an HTTP API."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hadpo.judge.base import Accept, ChatReply, ChatRequest
from hadpo.judge.faults import FaultCounter

Responder = Callable[[ChatRequest], str]


class LocalChatClient:
    """:class:`~hadpo.judge.base.ChatClient` that answers each request with ``responder(request)``.

    A responder that raises fails only that request (the reply carries the error), like an API error would.
    There is no cache (answering is cheap) and nothing to probe.
    """

    def __init__(self, responder: Responder, *, name: str, settings: Mapping[str, Any] | None = None) -> None:
        self.responder = responder
        self.name = name
        self.settings = dict(settings or {})
        self._faults = FaultCounter()

    @property
    def calls(self) -> int:
        """Requests answered so far."""
        return int(self._faults.snapshot()["requests"])

    def complete(self, requests: Sequence[ChatRequest], *, desc: str = "chat",
                 accept: Accept | None = None) -> list[ChatReply]:
        """Answer every request in order (synchronously: a local function is CPU work, not I/O)."""
        replies = []
        for i, request in enumerate(requests):
            self._faults.add("requests")
            try:
                text = self.responder(request)
            except Exception as exc:  # a bad request fails alone, as with a remote backend
                self._faults.add("gave_up")
                replies.append(ChatReply(None, error=f"{type(exc).__name__}: {exc}", model=self.name))
                continue
            unusable = accept(i, text) if accept is not None else None
            if unusable is not None:
                self._faults.add("unusable_replies")
            replies.append(ChatReply(text=text, model=self.name, unusable=unusable))
        return replies

    def lookup(self, requests: Sequence[ChatRequest], *, accept: Accept | None = None,
               count: bool = True) -> list[ChatReply | None]:
        """Nothing is kept between calls: no reply is on hand."""
        return [None] * len(requests)

    def probe(self) -> None:
        """A local function is always reachable."""

    def faults(self) -> dict[str, Any]:
        """Requests answered, failures and unusable replies so far."""
        return self._faults.snapshot()

    def protocol(self) -> dict[str, Any]:
        """Backend name and its settings."""
        return {"backend": "local", "model": self.name, **self.settings}

    def close(self) -> None:
        """Nothing to release (present so every client can be closed the same way)."""

    def __repr__(self) -> str:
        return f"LocalChatClient(name={self.name!r})"
