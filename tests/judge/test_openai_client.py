"""The OpenAI-compatible client against a loopback server, through the real ``openai`` package."""

from __future__ import annotations

import json
import sqlite3

import pytest

from hadpo.errors import JudgeUnavailable, ParamsError
from hadpo.judge.base import ChatRequest
from hadpo.judge.cache import ReplyCache
from hadpo.judge.openai_client import OpenAIChatClient
from hadpo.judge.stub_server import StubChatServer, StubResponse
from hadpo.specs import JudgeSpec

SECRET = "test-key-4f1d9c0b7a2e-do-not-leak"
KEY_ENV = "HADPO_TEST_JUDGE_KEY"


def echo(body: dict) -> str:
    """Answer with the last user message upper-cased, so each reply is tied to its request."""
    return body["messages"][-1]["content"].upper()


@pytest.fixture
def server():
    with StubChatServer(echo, model="stub-judge-2024") as srv:
        yield srv


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, SECRET)
    return SECRET


def make_client(server: StubChatServer, tmp_path, waits: list[float] | None = None, **overrides) -> OpenAIChatClient:
    """A client of the stub server; ``overrides`` are JudgeSpec keys."""
    settings = dict(base_url=server.url, judge_model="judge-x", api_key_env=KEY_ENV, judge_max_retries=3,
                    judge_timeout=5.0)
    settings.update(overrides)
    sleep = waits.append if waits is not None else (lambda s: None)
    return OpenAIChatClient(JudgeSpec.from_dict(settings), cache_path=str(tmp_path / "cache.sqlite"), progress=False,
                            backoff_base=0.5, sleep=sleep)


def test_replies_come_back_in_request_order(server, tmp_path, key):
    requests = [ChatRequest.user(f"question {i}") for i in range(20)]
    with make_client(server, tmp_path) as client:
        replies = client.complete(requests)
        protocol = client.protocol()
    assert [r.text for r in replies] == [f"QUESTION {i}" for i in range(20)]
    assert all(r.ok and not r.cached and r.tries == 1 for r in replies)
    assert server.count == 20
    body = server.requests[0]
    assert body["model"] == "judge-x" and body["temperature"] == 0.0 and body["seed"] == 0
    assert body["max_tokens"] == 800
    assert protocol["served_models"] == ["stub-judge-2024"]
    assert server.headers[0]["authorization"] == f"Bearer {SECRET}"  # the key is used...


def test_key_is_never_written(server, tmp_path, key):
    # ...but never stored: not in the cache, the protocol, the repr, or an error message.
    server.fail_next([StubResponse(status=400, body={"error": {"message": f"Bad request for key {SECRET}"}})])
    with make_client(server, tmp_path) as client:
        failed = client.complete([ChatRequest.user("a")])[0]
        client.complete([ChatRequest.user("b")])
        server.fail_next([StubResponse(status=401, body={"error": {"message": f"Incorrect API key: {SECRET}"}})])
        with pytest.raises(JudgeUnavailable) as refused:
            client.complete([ChatRequest.user("c")])
        texts = [json.dumps(client.protocol()), repr(client), repr(client.spec), json.dumps(client.spec.to_dict()),
                 str(refused.value)]
    assert not failed.ok and "400" in (failed.error or "")
    assert SECRET not in (failed.error or "") and "401" in str(refused.value)
    db = tmp_path / "cache.sqlite"
    blobs = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith(db.name))
    assert SECRET.encode() not in blobs
    assert all(SECRET not in t for t in texts)


def test_missing_key_variable_is_a_params_error(server, tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(ParamsError, match=KEY_ENV):
        make_client(server, tmp_path)


def test_rate_limit_honours_retry_after(server, tmp_path, key):
    server.fail_next([StubResponse(status=429, headers={"Retry-After": "2.5"}, body={"error": {"message": "slow"}})])
    waits: list[float] = []
    with make_client(server, tmp_path, waits) as client:
        reply = client.complete([ChatRequest.user("hi")])[0]
    assert reply.text == "HI" and reply.tries == 2
    assert waits == [2.5]
    assert server.count == 2


def test_server_errors_back_off_exponentially_then_succeed(server, tmp_path, key):
    server.fail_next([StubResponse(status=500, body={"error": {"message": "boom"}})] * 2
                     + [StubResponse(status=503, body={"error": {"message": "busy"}})])
    waits: list[float] = []
    with make_client(server, tmp_path, waits) as client:
        reply = client.complete([ChatRequest.user("hi")])[0]
    assert reply.text == "HI" and reply.tries == 4
    # backoff_base 0.5 doubles per retry; jitter adds at most 25 %
    for wait, base in zip(waits, (0.5, 1.0, 2.0), strict=True):
        assert base <= wait <= base * 1.25


def test_timeout_is_retried(server, tmp_path, key):
    server.fail_next([StubResponse(body={"never": "seen"}, delay=1.5)])
    with make_client(server, tmp_path, judge_timeout=0.3) as client:
        reply = client.complete([ChatRequest.user("hi")])[0]
    assert reply.text == "HI" and reply.tries == 2


@pytest.mark.parametrize(
    "bad",
    [StubResponse(body=b"<html>gateway</html>"), StubResponse(body={"id": "x", "object": "chat.completion"}),
     StubResponse(body={"choices": []}), StubResponse(body={"choices": [{"message": {"role": "assistant"}}]})],
    ids=["not-json", "no-choices", "empty-choices", "no-content"],
)
def test_malformed_reply_is_retried(server, tmp_path, key, bad):
    server.fail_next([bad])
    with make_client(server, tmp_path) as client:
        reply = client.complete([ChatRequest.user("hi")])[0]
    assert reply.text == "HI" and reply.tries == 2


def test_persistent_failure_gives_an_error_reply_not_an_exception(server, tmp_path, key):
    server.fail_next([StubResponse(body=b"garbage")] * 10)
    with make_client(server, tmp_path, judge_max_retries=2) as client:
        replies = client.complete([ChatRequest.user("hi")])
        assert len(client.cache or []) == 0  # failures are not cached
    assert not replies[0].ok and replies[0].tries == 3
    assert "malformed reply" in (replies[0].error or "")
    assert server.count == 3


def test_bad_request_is_not_retried(server, tmp_path, key):
    server.fail_next([StubResponse(status=400, body={"error": {"message": "context too long"}})])
    with make_client(server, tmp_path) as client:
        reply = client.complete([ChatRequest.user("hi")])[0]
    assert not reply.ok and reply.tries == 1 and "context too long" in (reply.error or "")


def test_rerun_is_served_from_the_cache_with_zero_requests(server, tmp_path, key):
    requests = [ChatRequest.user(f"q{i}") for i in range(6)]
    with make_client(server, tmp_path) as client:
        first = client.complete(requests)
    made = server.count
    with make_client(server, tmp_path) as client:  # a fresh process would look the same
        second = client.complete(requests)
        served = client.protocol()["served_models"]
    assert server.count == made == 6
    assert [r.text for r in second] == [r.text for r in first]
    assert all(r.cached and r.tries == 0 for r in second)
    assert served == ["stub-judge-2024"]


def test_cache_key_covers_settings_and_variant(server, tmp_path, key):
    with make_client(server, tmp_path) as client:
        client.complete([ChatRequest.user("q")])
        client.complete([ChatRequest.user("q", variant={"attempt": 1})])  # a re-ask: must not hit
        client.complete([ChatRequest.user("q", seed=7)])
    assert server.count == 3
    with make_client(server, tmp_path, judge_temperature=0.7) as client:
        client.complete([ChatRequest.user("q")])
    with make_client(server, tmp_path, judge_model="judge-y") as client:
        client.complete([ChatRequest.user("q")])
    assert server.count == 5
    with sqlite3.connect(tmp_path / "cache.sqlite") as conn:
        stored = [json.loads(r[0]) for r in conn.execute("SELECT request FROM replies")]
    assert {s["model"] for s in stored} == {"judge-x", "judge-y"}
    assert all(s["base_url"] == server.url for s in stored)


def test_identical_requests_in_one_batch_are_made_once(server, tmp_path, key):
    with make_client(server, tmp_path) as client:
        replies = client.complete([ChatRequest.user("same")] * 4)
    assert server.count == 1 and [r.text for r in replies] == ["SAME"] * 4


def test_requests_in_flight_are_bounded(tmp_path, key):
    with StubChatServer(echo, delay=0.2) as slow:
        with make_client(slow, tmp_path, judge_max_concurrency=4) as client:
            replies = client.complete([ChatRequest.user(f"q{i}") for i in range(12)])
        assert all(r.ok for r in replies)
        assert 1 < slow.max_in_flight <= 4


def test_keyless_server_and_shared_cache_object(server, tmp_path):
    cache = ReplyCache(tmp_path / "shared.sqlite")
    client = OpenAIChatClient(JudgeSpec(base_url=server.url, judge_model="m", api_key_env=""), cache=cache,
                              progress=False)
    assert client.complete([ChatRequest.user("x")])[0].text == "X"
    assert len(cache) == 1
    client.close()


@pytest.mark.parametrize("field,value", [("judge_max_concurrency", 0), ("judge_top_p", 0.0),
                                         ("base_url", "api.openai.com"), ("judge_max_retries", -1),
                                         ("judge_temperature", -0.1)])
def test_bad_params_name_the_field(field, value):
    with pytest.raises(ParamsError, match=field):
        JudgeSpec.from_dict({field: value})


@pytest.mark.parametrize("pasted", ["sk-proj-4f1d9c0b7a2e", "4f1d 9c0b", "key=abc", "1PASSWORD"])
def test_a_key_pasted_into_api_key_env_is_refused_without_echoing_it(pasted):
    with pytest.raises(ParamsError, match="api_key_env") as refused:
        JudgeSpec.from_dict({"api_key_env": pasted})
    assert pasted not in str(refused.value)


def test_a_short_key_is_not_scrubbed_and_is_warned_about(server, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "k")
    server.fail_next([StubResponse(status=400, body={"error": {"message": "fake server says no"}})])
    with pytest.warns(UserWarning, match=rf"\${KEY_ENV} is suspiciously short \(1 characters\)"):
        client = make_client(server, tmp_path)
    with client:
        failed = client.complete([ChatRequest.user("a")])[0]
    assert "fake server says no" in (failed.error or "")
