"""Judge faults through the real ``openai`` client against the loopback fault server: what stops a run at once,
what is retried and counted, when the breaker trips, and what is (not) cached."""

from __future__ import annotations

import pytest

from hadpo.distributed import free_port
from hadpo.errors import JudgeUnavailable
from hadpo.judge.base import ChatRequest
from hadpo.judge.faults import FAULT_FIELDS, FaultCounter
from hadpo.judge.openai_client import GAVE_UP_STREAK, PROBE_TRIES, OpenAIChatClient
from hadpo.judge.stub_server import StubChatServer, StubResponse
from hadpo.specs import JudgeSpec

SECRET = "faults-placeholder-5e0c"
KEY_ENV = "HADPO_TEST_FAULTS_KEY"


def echo(body: dict) -> str:
    return body["messages"][-1]["content"].upper()


def error(status: int, message: str, **headers: str) -> StubResponse:
    return StubResponse(status=status, body={"error": {"message": message}}, headers=dict(headers))


@pytest.fixture
def server():
    with StubChatServer(echo, model="stub-judge") as srv:
        yield srv


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)


def client_for(url: str, tmp_path, waits: list[float] | None = None, **overrides) -> OpenAIChatClient:
    settings = dict(base_url=url, judge_model="judge-x", api_key_env=KEY_ENV, judge_timeout=5.0)
    settings.update(overrides)
    return OpenAIChatClient(JudgeSpec.from_dict(settings), cache_path=str(tmp_path / "cache.sqlite"), progress=False,
                            backoff_base=0.01, sleep=(waits.append if waits is not None else lambda s: None))


# ------------------------------------------------------------------------------------------------ the probe
@pytest.mark.parametrize(
    "status,message,says",
    [(401, f"Incorrect API key provided: {SECRET}", "rejected the API key (401)"),
     (403, "Project does not have access to model judge-x", "access denied (403)"),
     (404, "The model `judge-x` does not exist", "unknown model id")],
    ids=["401", "403", "404"],
)
def test_probe_stops_at_once_on_auth_and_unknown_model(server, tmp_path, status, message, says):
    server.fail_always(error(status, message))
    with client_for(server.url, tmp_path) as client:
        with pytest.raises(JudgeUnavailable) as raised:
            client.probe()
        faults = client.faults()
    text = str(raised.value)
    assert server.count == 1 and faults["probes"] == 1 and faults["requests"] == 0  # never retried
    assert says in text and server.url in text and "'judge-x'" in text
    assert message.split(":")[0] in text  # the server's own words
    assert SECRET not in text and "\n" not in text


def test_probe_refused_connection_stops_at_once(tmp_path):
    url = f"http://127.0.0.1:{free_port('127.0.0.1')}/v1"
    with client_for(url, tmp_path) as client:
        with pytest.raises(JudgeUnavailable, match="connection refused") as raised:
            client.probe()
        assert client.faults()["probes"] == 1  # not retried
    assert url in str(raised.value)


def test_probe_sends_the_run_settings_so_a_refused_setting_stops_the_run(server, tmp_path):
    server.fail_next([error(400, "Unsupported parameter: 'seed'")])
    with (client_for(server.url, tmp_path, judge_temperature=0.7, judge_stop=["###"]) as client,
          pytest.raises(JudgeUnavailable, match=r"probe request was refused.*Unsupported parameter")):
        client.probe()
    body = server.requests[0]
    assert body["model"] == "judge-x" and body["temperature"] == 0.7 and body["stop"] == ["###"]
    assert body["max_tokens"] <= 5


def test_probe_gives_a_dead_server_three_short_tries(server, tmp_path):
    server.fail_always(error(500, "upstream down"))
    waits: list[float] = []
    with (client_for(server.url, tmp_path, waits) as client,
          pytest.raises(JudgeUnavailable, match=rf"did not answer a probe request in {PROBE_TRIES} tries.*500")):
        client.probe()
    assert server.count == PROBE_TRIES and len(waits) == PROBE_TRIES - 1


def test_probe_passes_through_a_transient_fault_and_runs_once(server, tmp_path):
    server.fail_next([error(503, "warming up")])
    with client_for(server.url, tmp_path) as client:
        client.probe()
        client.probe()
        assert client.faults()["probes"] == 2 and client.protocol()["served_models"] == ["stub-judge"]
    assert server.count == 2 and server.probes == 1


def test_exhausted_quota_is_fatal_not_a_rate_limit(server, tmp_path):
    server.fail_always(StubResponse(status=429, body={"error": {"message": "You exceeded your current quota",
                                                                 "code": "insufficient_quota"}}))
    with client_for(server.url, tmp_path) as client, pytest.raises(JudgeUnavailable, match="no quota left"):
        client.complete([ChatRequest.user("a")])
    assert server.count == 1


# ------------------------------------------------------------------------------------------------ mid-run
def test_auth_failure_mid_run_stops_every_request(server, tmp_path):
    with client_for(server.url, tmp_path, judge_max_concurrency=2) as client:
        client.complete([ChatRequest.user("warm")])
        server.fail_always(error(401, "key revoked"))
        with pytest.raises(JudgeUnavailable, match="rejected the API key"):
            client.complete([ChatRequest.user(f"q{i}") for i in range(20)])
        with pytest.raises(JudgeUnavailable):  # the client stays stopped
            client.complete([ChatRequest.user("again")])
    assert server.count <= 1 + 2  # the warm-up, then at most one call per worker: none retried


def test_breaker_trips_on_a_streak_of_server_errors(server, tmp_path):
    with client_for(server.url, tmp_path, judge_failure_streak=10, judge_max_concurrency=4) as client:
        server.fail_always(error(500, "boom"))
        with pytest.raises(JudgeUnavailable, match=r"looks down: 10 calls in a row failed.*500"):
            client.complete([ChatRequest.user(f"q{i}") for i in range(50)])
        faults = client.faults()
    # 50 items x 7 tries would be 350 calls; the breaker stops within a worker round of the streak
    assert 10 <= server.count <= 10 + 4 and 10 <= faults["server_errors"] <= server.count


def test_breaker_trips_on_items_given_up_in_a_row(server, tmp_path):
    # 429s do not count towards the failure streak (they are back-pressure), but items given up do.
    server.fail_always(error(429, "slow down", **{"Retry-After": "0"}))
    with client_for(server.url, tmp_path, judge_max_retries=1, judge_max_concurrency=1) as client:
        with pytest.raises(JudgeUnavailable, match=f"{GAVE_UP_STREAK} items in a row got no reply"):
            client.complete([ChatRequest.user(f"q{i}") for i in range(10)])
        faults = client.faults()
    assert faults["gave_up"] == GAVE_UP_STREAK and server.count == 2 * GAVE_UP_STREAK
    assert faults["rate_limited"] == server.count


def test_a_success_resets_the_streak(server, tmp_path):
    # 3 failures, a success, 3 failures...: never 4 in a row, so a streak limit of 4 never trips
    pattern = [error(502, "bad gateway")] * 3 + [StubResponse(body=None)]
    server.fail_next(pattern * 5)
    with client_for(server.url, tmp_path, judge_failure_streak=4, judge_max_concurrency=1) as client:
        replies = client.complete([ChatRequest.user(f"q{i}") for i in range(5)])
    assert all(r.ok for r in replies) and server.count == 20


# ------------------------------------------------------------------------------------------------ counters
def test_every_transient_fault_is_counted(server, tmp_path):
    server.fail_next([
        error(429, "slow", **{"Retry-After": "1.5"}),
        error(503, "busy"),
        StubResponse(body=b"<html>proxy</html>"),
        StubResponse(body={"never": "seen"}, delay=1.0),  # a hang past the timeout
        StubResponse(),  # a normal answer
        error(400, "context too long"),
    ])
    waits: list[float] = []
    with client_for(server.url, tmp_path, waits, judge_timeout=0.3, judge_max_concurrency=1) as client:
        replies = client.complete([ChatRequest.user("a"), ChatRequest.user("b")])
        faults = client.faults()
    # "a": 429, 503, malformed, timeout, then its answer; "b": refused with a 400 (not retried)
    assert replies[0].text == "A" and replies[0].tries == 5
    assert not replies[1].ok and "400" in (replies[1].error or "")
    assert faults == {**{k: 0 for k in FAULT_FIELDS}, "requests": 6, "retries": 4, "rate_limited": 1,
                      "retry_after_wait_s": 1.5, "server_errors": 1, "malformed": 1, "timeouts": 1,
                      "client_errors": 1}
    assert waits[0] == 1.5


def test_connection_errors_and_given_up_items_are_counted(tmp_path):
    with client_for(f"http://127.0.0.1:{free_port('127.0.0.1')}/v1", tmp_path, judge_max_retries=2) as client:
        reply = client.complete([ChatRequest.user("a")])[0]
        faults = client.faults()
    assert not reply.ok and "gave up after 3 tries" in (reply.error or "")
    assert (faults["connection_errors"], faults["retries"], faults["gave_up"]) == (3, 2, 1)


def test_unusable_replies_are_marked_counted_and_never_cached(server, tmp_path):
    def accept(i: int, text: str) -> str | None:
        return None if text.startswith("GOOD") else "not good"

    with client_for(server.url, tmp_path) as client:
        replies = client.complete([ChatRequest.user("good one"), ChatRequest.user("bad one")], accept=accept)
        assert replies[0].usable and not replies[1].usable and replies[1].unusable == "not good"
        assert client.faults()["unusable_replies"] == 1
        again = client.complete([ChatRequest.user("good one"), ChatRequest.user("bad one")], accept=accept)
        assert again[0].cached and not again[1].cached  # only the accepted reply was cached
        assert client.lookup([ChatRequest.user("good one"), ChatRequest.user("bad one")], accept=accept,
                             count=False)[1] is None
    assert server.count == 3


def test_a_cached_reply_the_caller_now_refuses_is_asked_again(server, tmp_path):
    with client_for(server.url, tmp_path) as client:
        client.complete([ChatRequest.user("x")])  # cached without a check
        reply = client.complete([ChatRequest.user("x")], accept=lambda i, t: "refused")[0]
    assert not reply.cached and server.count == 2


def test_lookup_peeks_without_counting(server, tmp_path):
    with client_for(server.url, tmp_path) as client:
        client.complete([ChatRequest.user("x")])
        assert client.lookup([ChatRequest.user("x")], count=False)[0] is not None
        assert client.faults()["cache_hits"] == 0
        assert client.lookup([ChatRequest.user("x")])[0].cached
        assert client.faults()["cache_hits"] == 1


def test_fault_counter_knows_its_fields():
    counter = FaultCounter()
    counter.add("retries", 2)
    assert counter.snapshot()["retries"] == 2 and set(counter.snapshot()) == set(FAULT_FIELDS)
    with pytest.raises(KeyError):
        counter.add("nope")
