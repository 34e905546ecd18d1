"""A chat client backed by a local Python function: offline judges (the shapes-world annotation oracle) and
deterministic stand-ins for LLM steps plug into the same interface as an HTTP API."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hadpo.judge.base import ChatReply, ChatRequest

Responder = Callable[[ChatRequest], str]


class LocalChatClient:
    """:class:`~hadpo.judge.base.ChatClient` that answers each request with ``responder(request)``.

    A responder that raises fails only that request (the reply carries the error), like an API error would.
    """

    def __init__(self, responder: Responder, *, name: str, settings: Mapping[str, Any] | None = None) -> None:
        self.responder = responder
        self.name = name
        self.settings = dict(settings or {})
        #: Requests answered so far.
        self.calls = 0

    def complete(self, requests: Sequence[ChatRequest], *, desc: str = "chat") -> list[ChatReply]:
        """Answer every request in order (synchronously: a local function is CPU work, not I/O)."""
        replies = []
        for request in requests:
            self.calls += 1
            try:
                replies.append(ChatReply(text=self.responder(request), model=self.name))
            except Exception as exc:  # a bad request fails alone, as with a remote backend
                replies.append(ChatReply(None, error=f"{type(exc).__name__}: {exc}", model=self.name))
        return replies

    def protocol(self) -> dict[str, Any]:
        """Backend name and its settings."""
        return {"backend": "local", "model": self.name, **self.settings}

    def close(self) -> None:
        """Nothing to release (present so every client can be closed the same way)."""

    def __repr__(self) -> str:
        return f"LocalChatClient(name={self.name!r})"
