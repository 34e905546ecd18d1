"""SHR under a failing judge, end to end through ``hadpo shr-judge`` / ``hadpo shr``, the real ``openai`` client and
the loopback fault server: a failed judge fails the run, unjudged is never counted as correct, every fault is
counted, a rerun asks again for exactly what failed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hadpo.cli import main
from hadpo.distributed import free_port
from hadpo.eval.shr.prompt import format_judgement
from hadpo.io import read_json
from hadpo.judge.openai_client import PROBE_TRIES
from hadpo.judge.stub_server import StubChatServer, StubResponse, completion

SECRET = "shr-faults-placeholder-8c1f"
KEY_ENV = "HADPO_TEST_SHR_FAULTS_KEY"
BROKEN = "BROKEN"  # a description holding this word gets an unusable reply while the judge is "broken"


def sentences_of(body: dict) -> list[str]:
    return body["messages"][0]["content"].split("Sentences to judge:\n", 1)[1].strip().splitlines()


def good(body: dict) -> str:
    """The last sentence of every description names an absent object; the rest are right."""
    n = len(sentences_of(body))
    return format_judgement([("correct", "checked")] * (n - 1) + [("hallucination", "absent")])


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)


@pytest.fixture
def responses(shr_world: Path, tmp_path: Path, captions) -> Path:
    path = tmp_path / "responses.json"
    path.write_text(json.dumps(captions))
    return path


@pytest.fixture
def shr_judge(shr_world: Path, responses: Path):
    """``hadpo shr-judge`` of the world's descriptions against a judge at ``url``; returns the exit code."""

    def run(run_dir: Path, url: str, *extra: str) -> int:
        return main(["shr-judge", str(responses), "-p", "data_root", str(shr_world), "-p", "run_dir", str(run_dir),
                     "-p", "judge", "openai", "-p", "base_url", url, "-p", "judge_model", "judge-x",
                     "-p", "api_key_env", KEY_ENV, "-p", "progress", "False", *extra])

    return run


def one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert SECRET not in err
    return lines[0]


# ---------------------------------------------------------------------------------------- 1. a failed judge
@pytest.mark.parametrize(
    "status,message,says,calls",
    [(401, f"Incorrect API key provided: {SECRET}", "rejected the API key (401)", 1),
     (404, "The model `judge-x` does not exist or you do not have access to it.", "not found (404)", 1),
     (500, "upstream exploded", f"did not answer a probe request in {PROBE_TRIES} tries", PROBE_TRIES)],
    ids=["wrong-key", "unknown-model", "dead-server"],
)
def test_a_failed_judge_fails_the_run_before_any_item(shr_judge, tmp_path, capsys, status, message, says, calls):
    with StubChatServer(good) as server:
        server.fail_always(StubResponse(status=status, body={"error": {"message": message}}))
        assert shr_judge(tmp_path / "out", server.url) == 1
        assert server.count == calls  # the probe only: no image was sent, nothing was re-asked
    line = one_error_line(capsys.readouterr().err)
    assert says in line and server.url in line and "judge-x" in line
    assert not (tmp_path / "out" / "metrics.json").exists()  # no "SHR 0.0"


def test_a_refused_connection_fails_the_run_at_once(shr_judge, tmp_path, capsys):
    url = f"http://127.0.0.1:{free_port('127.0.0.1')}/v1"
    assert shr_judge(tmp_path / "out", url) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "connection refused" in line and url in line


def test_the_judge_is_probed_before_any_description_is_generated(shr_world, tmp_path, capsys):
    with StubChatServer(good) as server:
        server.fail_always(StubResponse(status=401, body={"error": {"message": "bad key"}}))
        rc = main(["shr", "-p", "data_root", str(shr_world), "-p", "model", str(tmp_path / "no-model-here"),
                   "-p", "run_dir", str(tmp_path / "out"), "-p", "judge", "openai", "-p", "base_url", server.url,
                   "-p", "judge_model", "judge-x", "-p", "api_key_env", KEY_ENV, "-p", "progress", "False"])
    assert rc == 1
    line = one_error_line(capsys.readouterr().err)
    assert "rejected the API key" in line  # the judge's error, not the (missing) model's
    assert not (tmp_path / "out" / "descriptions.jsonl").exists()


def test_a_judge_that_dies_mid_run_stops_it_and_a_rerun_resumes(shr_judge, tmp_path, capsys):
    with StubChatServer(good) as server:
        server.fail_next([StubResponse()] * 3)  # the probe and two images pass...
        server.fail_always(StubResponse(status=503, body={"error": {"message": "overloaded"}}))  # ...then it dies
        rc = shr_judge(tmp_path / "out", server.url, "-p", "judge_max_concurrency", "1",
                       "-p", "judge_failure_streak", "4")
        dead = server.count
        assert rc == 1 and dead <= 3 + 4
        line = one_error_line(capsys.readouterr().err)
        assert "looks down: 4 calls in a row failed" in line and "503" in line
        server.fail_always(None)  # the server is back
        assert shr_judge(tmp_path / "out", server.url) == 0
        # the probe, then only the images that had no accepted reply
        assert server.count - dead == 1 + 3
    assert read_json(tmp_path / "out" / "metrics.json")["complete"] is True


# ---------------------------------------------------------------------------------------- 2. unjudged ≠ correct
def broken_judge(state: dict):
    def answer(body: dict) -> str:
        text = "\n".join(sentences_of(body))
        if state["broken"] and any(w in text for w in state["words"]):
            return "I am sorry, I cannot help with that."
        return good(body)

    return answer


def test_unjudged_images_fail_the_run_and_a_rerun_asks_exactly_for_them(shr_judge, tmp_path, capsys, captions):
    texts = captions
    ids = list(texts)
    # two of the five descriptions get unusable replies while the judge is broken
    state = {"broken": True, "words": [texts[ids[1]].split(".")[0], texts[ids[3]].split(".")[0]]}
    run_dir = tmp_path / "out"
    with StubChatServer(broken_judge(state)) as server:
        assert shr_judge(run_dir, server.url) == 1
        line = one_error_line(capsys.readouterr().err)
        assert "SHR judgement incomplete: 2 of 5 image judgements unjudged" in line
        assert f"run1 image {ids[1]}: unusable reply: no 'Judgement:' line" in line
        assert server.count == 1 + 3 + 2 * 3  # the probe, 3 good images, 2 broken ones asked 3 times each
        metrics = read_json(run_dir / "metrics.json")
        assert metrics["complete"] is False and metrics["unjudged_share"] == 0.4
        assert metrics["run1"]["num_images"] == 3 and metrics["run1"]["num_unjudged"] == 2
        judge = metrics["judge"]
        assert judge["unjudged_images"] == 2 and judge["unjudged_reasons"] == {"unusable reply": 2}
        assert judge["reasks"] == 4 and judge["unusable_replies"] == 6
        assert judge["calls"]["requests"] == 9 and judge["calls"]["unusable_replies"] == 6
        assert [u["image_id"] for u in judge["first_unjudged"]] == [ids[1], ids[3]]

        # allowed by the threshold: exit 0, with a warning on stderr; the broken replies were not cached
        before = server.count
        assert shr_judge(run_dir, server.url, "-p", "max_unjudged", "0.5") == 0
        assert "warning: SHR judgement incomplete but within max_unjudged" in capsys.readouterr().err
        assert server.count - before == 1 + 2 * 3
        assert read_json(run_dir / "metrics.json")["complete"] is False

        # the judge is fixed: a rerun asks for exactly the two unjudged images, once each (plus the probe)
        state["broken"] = False
        before = server.count
        assert shr_judge(run_dir, server.url) == 0
        assert server.count - before == 1 + 2
        capsys.readouterr()
        assert shr_judge(run_dir, server.url) == 0
        assert server.count - before == 3  # finished: no request, not even a probe
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["complete"] is True and metrics["run1"]["num_images"] == 5
    assert metrics["run1"]["hal_sents_per_image"] == 1.0


# ---------------------------------------------------------------------------------------- 3. faults counted
def test_transient_faults_are_absorbed_and_counted(shr_judge, tmp_path):
    with StubChatServer(good) as server:
        assert shr_judge(tmp_path / "clean", server.url) == 0
        clean = read_json(tmp_path / "clean" / "metrics.json")
        server.fail_next([
            StubResponse(),  # the probe
            StubResponse(status=429, body={"error": {"message": "slow down"}}, headers={"Retry-After": "0.2"}),
            StubResponse(status=500, body={"error": {"message": "boom"}}),
            StubResponse(body=None, delay=2.0),  # hangs past judge_timeout
            StubResponse(body=b"\x00not json"),  # malformed
            StubResponse(body=completion("Judgement:\n1. correct: only one line", "stub")),  # wrong line count
        ])
        assert shr_judge(tmp_path / "faulty", server.url, "-p", "judge_timeout", "1.0",
                         "-p", "judge_max_concurrency", "1") == 0
    faulty = read_json(tmp_path / "faulty" / "metrics.json")
    calls = faulty["judge"]["calls"]
    assert (calls["rate_limited"], calls["server_errors"], calls["timeouts"], calls["malformed"]) == (1, 1, 1, 1)
    assert calls["retry_after_wait_s"] == 0.2 and calls["retries"] == 4 and calls["gave_up"] == 0
    assert calls["requests"] == 5 + 4 + 1 and calls["probes"] == 1  # 5 images, 4 retries, 1 re-ask
    assert faulty["judge"]["reasks"] == 1 and faulty["judge"]["unusable_replies"] == 1
    assert clean["judge"]["calls"]["requests"] == 5 and clean["judge"]["reasks"] == 0
    for key in ("run1", "mean_hal_ratio", "gram-1-repetition", "length", "complete"):
        assert faulty[key] == clean[key]
