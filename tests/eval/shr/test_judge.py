"""Judging with bounded re-asks, skips and several runs; offline and through the real openai client."""

from __future__ import annotations

import json
import re

import pytest

from hadpo.eval.shr.judge import ShrItem, ShrProtocol, judge_descriptions, judge_run, status_counts
from hadpo.eval.shr.metrics import shr_metrics
from hadpo.eval.shr.prompt import NormalizedRegion, format_judgement
from hadpo.judge.base import ChatRequest
from hadpo.judge.local import LocalChatClient
from hadpo.judge.openai_client import OpenAIChatClient
from hadpo.judge.stub_server import StubChatServer
from hadpo.specs import JudgeSpec

ITEMS = [
    ShrItem("1", "There is a red circle. There is a blue square.", (NormalizedRegion(0, 0, 0.5, 0.5, "a red circle"),),
            ("A red circle is on the left.",)),
    ShrItem("2", "A cat sleeps.", (), ()),
]


def count_sentences(prompt: str) -> int:
    """Numbered lines after the prompt's sentence heading: what a well-behaved judge answers to."""
    block = prompt.split("Sentences to judge:\n", 1)[1]
    return len(re.findall(r"^\d+\. ", block, flags=re.M))


def good_reply(prompt: str) -> str:
    n = count_sentences(prompt)
    return format_judgement([("hallucination" if i == n else "correct", "checked") for i in range(1, n + 1)])


def test_good_replies_are_judged_on_the_first_attempt():
    seen: list[ChatRequest] = []

    def respond(request: ChatRequest) -> str:
        seen.append(request)
        return good_reply(request.messages[0]["content"])

    run = judge_run(ITEMS, LocalChatClient(respond, name="t"), protocol=ShrProtocol(seed=10))
    assert list(run) == ["1", "2"]
    assert [s["classification"] for s in run["1"]["judgement"]] == ["correct", "hallucination"]
    assert run["1"]["judgement"][0] == {"model_response": "There is a red circle.", "judgement": "correct: checked",
                                        "classification": "correct"}
    assert run["1"]["model_response"] == ITEMS[0].response and run["1"]["attempts"] == 1
    assert run["1"]["unusable"] == 0 and run["1"]["reason"] is None
    assert [r.variant for r in seen] == [{"run": 1, "attempt": 0}] * 2
    assert [r.seed for r in seen] == [10, 10]
    assert seen[0].context == {"run": 1, "image_id": "1",
                               "sentences": ["There is a red circle.", "There is a blue square."]}


def test_bad_replies_are_asked_again_then_counted_unjudged():
    asked: dict[str, int] = {}

    def respond(request: ChatRequest) -> str:
        image = request.context["image_id"]
        asked[image] = asked.get(image, 0) + 1
        if image == "1" and request.variant["attempt"] == 0:
            return "Judgement:\n1. correct: only one line"  # wrong count: asked again
        if image == "2":
            return "Judgement:\n1. maybe: unsure"  # unknown label, every time
        return good_reply(request.messages[0]["content"])

    client = LocalChatClient(respond, name="t")
    run = judge_run(ITEMS, client, protocol=ShrProtocol(max_attempts=3, seed=0))
    assert asked == {"1": 2, "2": 3}  # bounded: never more than max_attempts
    assert run["1"]["status"] == "judged" and run["1"]["attempts"] == 2 and run["1"]["unusable"] == 1
    assert run["2"]["status"] == "unjudged" and run["2"]["attempts"] == 3 and run["2"]["unusable"] == 3
    assert run["2"]["reason"] == "unusable reply"
    assert client.faults()["unusable_replies"] == 4 and client.faults()["requests"] == 5
    assert "unknown label 'maybe'" in run["2"]["error"]
    assert run["2"]["raw_judgement"] == "Judgement:\n1. maybe: unsure"
    assert run["2"]["judgement"] == [{"model_response": "A cat sleeps.", "judgement": None, "classification": None}]
    assert status_counts(run) == {"judged": 1, "unjudged": 1, "skipped": 0}


def test_over_long_prompts_are_skipped_and_empty_descriptions_need_no_call():
    client = LocalChatClient(lambda r: good_reply(r.messages[0]["content"]), name="t")
    items = [ShrItem("long", "Word " * 50 + ".", (NormalizedRegion(0, 0, 1, 1, "x" * 1000),), ()),
             ShrItem("empty", " . ", (), ())]
    run = judge_run(items, client, protocol=ShrProtocol(max_prompt_chars=1000))
    assert run["long"]["status"] == "skipped" and "max_prompt_chars 1000" in run["long"]["error"]
    assert run["empty"]["status"] == "judged" and run["empty"]["judgement"] == []
    assert client.calls == 0


def test_runs_differ_in_variant_and_seed():
    seen: list[ChatRequest] = []

    def respond(request: ChatRequest) -> str:
        seen.append(request)
        return good_reply(request.messages[0]["content"])

    out = judge_descriptions(ITEMS[:1], LocalChatClient(respond, name="t"), num_runs=3,
                             protocol=ShrProtocol(seed=5))
    assert list(out) == ["run1", "run2", "run3"]
    assert [(r.variant["run"], r.seed) for r in seen] == [(1, 5), (2, 6), (3, 7)]
    with pytest.raises(ValueError, match="num_runs"):
        judge_descriptions(ITEMS, LocalChatClient(respond, name="t"), num_runs=0)


# ------------------------------------------------------------------------------------ through the openai client
KEY_ENV = "HADPO_TEST_SHR_KEY"
SECRET = "sk-shr-secret-0d7e51"


def test_openai_judge_reasks_unusable_replies_and_caches_only_accepted_ones(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)

    def answer(body: dict) -> str:
        prompt = body["messages"][0]["content"]
        if "cat" in prompt:
            return "Judgement:\n1. correct: fine\n2. correct: an extra line"  # always one line too many
        return good_reply(prompt)

    with StubChatServer(answer) as server:
        def judge() -> dict:
            spec = JudgeSpec(base_url=server.url, judge_model="stub", api_key_env=KEY_ENV)
            with OpenAIChatClient(spec, cache_path=str(tmp_path / "cache.sqlite"), progress=False,
                                  backoff_base=0.0) as client:
                return judge_descriptions(ITEMS, client, num_runs=2, protocol=ShrProtocol(max_attempts=3))

        first = judge()
        # per run: image 1 once, image 2 three times (each re-ask is a new request, not the cached bad reply)
        assert server.count == 2 * (1 + 3)
        assert first["run1"]["2"]["status"] == "unjudged" and "2 judgement line(s) for 1" in first["run1"]["2"]["error"]
        assert first["run2"]["1"]["status"] == "judged"
        asked_seeds = sorted(b["seed"] for b in server.requests if "cat" in b["messages"][0]["content"])
        assert asked_seeds == [0, 1, 1000, 1001, 2000, 2001]

        second = judge()
        # the rerun takes image 1 from the cache and asks afresh for the unjudged image only (its replies were
        # unusable, so none was cached): 3 attempts in each of the 2 runs
        assert server.count == 8 + 2 * 3
        assert second == first

    metrics = shr_metrics(first, {i.image_id: i.response for i in ITEMS})
    assert metrics["run1"]["num_images"] == 1 and metrics["run1"]["hal_sents_ratio"] == 0.5
    assert metrics["unjudged"] == {"run1": 1, "run2": 1}
    assert SECRET not in json.dumps(first) + json.dumps(metrics)
