"""Chat-completion clients behind one interface: OpenAI-compatible servers (cached, retried, concurrent) and
local functions (offline judges). Used by SHR judging and by the LLM steps of preference mining."""

from hadpo.eval.judge.base import ChatClient, ChatReply, ChatRequest
from hadpo.eval.judge.cache import ReplyCache
from hadpo.eval.judge.local import LocalChatClient
from hadpo.eval.judge.openai_client import OpenAIChatClient, OpenAIChatParams

__all__ = [
    "ChatClient",
    "ChatReply",
    "ChatRequest",
    "LocalChatClient",
    "OpenAIChatClient",
    "OpenAIChatParams",
    "ReplyCache",
]
