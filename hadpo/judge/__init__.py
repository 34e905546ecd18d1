"""The LLM judge behind SHR, mining and every judged benchmark: one interface, pluggable backends.

A caller builds :class:`ChatRequest` objects and hands them to a :class:`ChatClient`; :func:`build_judge` makes
the client a :class:`~hadpo.specs.JudgeSpec` names. Backends are registered under the entry point group
``hadpo.judges`` (:mod:`hadpo.plugins`): ``openai`` (any OpenAI-compatible server, cached, retried, concurrent)
ships here; the shapes world registers its offline ``oracle``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hadpo.judge.base import ChatClient, ChatReply, ChatRequest
from hadpo.judge.local import LocalChatClient
from hadpo.plugins import JUDGES, load
from hadpo.specs import JudgeSpec

#: The reply cache's file name in a run folder (when ``judge_cache`` is not set).
CACHE_FILE = "judge_cache.sqlite"


@dataclass(frozen=True)
class JudgeContext:
    """What a backend may need besides the spec: the task it judges, the data and run folders.

    ``task`` names the caller's protocol (``shr``, ``mining``, ...): an offline backend answers each in its format.
    """

    task: str
    data_root: str
    run_dir: str
    progress: bool = True

    @property
    def cache_path(self) -> str:
        """Where the reply cache lies when the spec does not name one."""
        return str(Path(self.run_dir) / CACHE_FILE)


#: A judge backend: builds a client from the spec and the context.
Backend = Callable[[JudgeSpec, JudgeContext], ChatClient]


def build_judge(spec: JudgeSpec, context: JudgeContext) -> ChatClient:
    """The chat client of the backend ``spec.judge`` names (see :mod:`hadpo.plugins`)."""
    backend: Backend = load(JUDGES, spec.judge)
    return backend(spec, context)


__all__ = [
    "CACHE_FILE",
    "ChatClient",
    "ChatReply",
    "ChatRequest",
    "JudgeContext",
    "LocalChatClient",
    "build_judge",
]
