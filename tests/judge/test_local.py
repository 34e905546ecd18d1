"""The function-backed chat client."""

from __future__ import annotations

from hadpo.judge.base import ChatClient, ChatRequest
from hadpo.judge.local import LocalChatClient


def test_answers_in_order_and_isolates_failures():
    def respond(request: ChatRequest) -> str:
        text = request.messages[-1]["content"]
        if text == "bad":
            raise KeyError("no annotations for image 3")
        return text[::-1]

    client = LocalChatClient(respond, name="reverser", settings={"rule": "reverse"})
    replies = client.complete([ChatRequest.user("abc"), ChatRequest.user("bad"), ChatRequest.user("xy")])
    assert [r.text for r in replies] == ["cba", None, "yx"]
    assert "no annotations for image 3" in (replies[1].error or "")
    assert client.calls == 3
    assert client.protocol() == {"backend": "local", "model": "reverser", "rule": "reverse"}
    assert isinstance(client, ChatClient)


def test_request_rejects_bad_messages():
    import pytest

    with pytest.raises(ValueError, match="role"):
        ChatRequest(messages=({"role": "robot", "content": "x"},))
    with pytest.raises(ValueError, match="at least one"):
        ChatRequest(messages=())
