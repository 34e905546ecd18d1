"""The LLM path: every step through an OpenAI-compatible server (the loopback stub), with re-asks and skips."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from hadpo.data.hadpo_files import read_desc_data, read_pope_data
from hadpo.errors import JudgeUnavailable
from hadpo.io import atomic_write_jsonl
from hadpo.judge.openai_client import OpenAIChatClient
from hadpo.judge.stub_server import StubChatServer, StubResponse, completion
from hadpo.mining.annotations import load_annotations
from hadpo.mining.config import DataConfig
from hadpo.mining.correct import Description, detect_and_correct
from hadpo.mining.leak import load_eval_images
from hadpo.mining.mine import mine
from hadpo.mining.prompts import format_correction, format_questions
from hadpo.mining.qa import QASource, convert_to_qa
from hadpo.mining.rewrite import DescriptionPair, rewrite_pairs
from hadpo.mining.select import select_images
from hadpo.specs import JudgeSpec


def section(prompt: str, title: str) -> str:
    """The text under ``title:`` up to the next blank line."""
    return prompt.split(f"{title}:\n", 1)[1].split("\n\n", 1)[0].strip()


class Judge:
    """Stub replies in each step's format: the last of several sentences is the hallucination; images whose
    description contains BAD get a malformed reply always, those with ONCE on their first ask only."""

    def __init__(self) -> None:
        self.asked: Counter[str] = Counter()

    def __call__(self, body: dict) -> str:
        prompt = body["messages"][0]["content"]
        if "Sentences to check:" in prompt:
            sentences = [line.split(". ", 1)[1] for line in section(prompt, "Sentences to check").splitlines()]
            text = " ".join(sentences)
            self.asked[text] += 1
            if "BAD" in text or ("ONCE" in text and self.asked[text] == 1):
                return "I think the description is mostly fine."
            if len(sentences) == 1:
                return format_correction([("correct", "fine")], None)
            labels = [("correct", "fine")] * (len(sentences) - 1) + [("hallucination", "not there")]
            return format_correction(labels, " ".join(sentences[:-1]))
        if "pairs of rewrites" in prompt:
            k = int(re.search(r"Write (\d+) pairs", prompt).group(1))
            positive, negative = section(prompt, "Positive description"), section(prompt, "Negative description")
            return "\n\n".join(f"**Style {i}:** s{i}\nPositive: [s{i}] {positive}\nNegative: [s{i}] {negative}"
                               for i in range(1, k + 1))
        return format_questions([
            ("Is there a unicorn in the image?", "no", "No, there is no unicorn in the image.",
             "Yes, there is a unicorn in the image."),
            ("Is there a dog in the image?", "yes", "Yes, there is a dog in the image.",
             "No, there is no dog in the image."),
        ])


def client_for(server: StubChatServer, tmp_path: Path) -> OpenAIChatClient:
    return OpenAIChatClient(JudgeSpec(base_url=server.url, api_key_env="", judge_model="stub", judge_max_retries=0),
                            progress=False, cache_path=str(tmp_path / "cache.sqlite"))


def test_steps_parse_replies_reask_malformed_ones_and_skip_what_stays_bad(tmp_path):
    descriptions = [
        Description("1", "A dog sits. A unicorn flies.", "Objects:\n[0.00, 0.00, 1.00, 1.00]: dog"),
        Description("2", "A dog sits ONCE. A unicorn flies.", "-"),
        Description("3", "A dog sits BAD. A unicorn flies.", "-"),
        Description("4", "A dog sits.", "-"),
        Description("5", "", "-"),
    ]
    judge = Judge()
    with StubChatServer(judge) as server, client_for(server, tmp_path) as client:
        records = detect_and_correct(descriptions, client, max_attempts=3)
        assert server.count == 4 + 2 + 1  # the empty one is never sent; ONCE and BAD are asked again, BAD twice
        by_id = {r["image_id"]: r for r in records}
        assert by_id["1"]["status"] == "ok" and by_id["1"]["pair"] and by_id["1"]["positive"] == "A dog sits."
        assert by_id["1"]["labels"] == ["correct", "hallucination"] and by_id["1"]["hallucinated"] == [1]
        assert by_id["2"]["status"] == "ok" and by_id["2"]["attempts"] == 2
        assert by_id["3"]["status"] == "failed" and by_id["3"]["attempts"] == 3
        assert by_id["3"]["reason"] == "unusable reply" and by_id["3"]["unusable"] == 3
        assert "Corrected description" in by_id["3"]["error"] and by_id["3"]["raw"].startswith("I think")
        assert by_id["4"]["status"] == "ok" and not by_id["4"]["pair"]
        assert by_id["5"]["status"] == "ok" and by_id["5"]["sentences"] == [] and by_id["5"]["attempts"] == 0

        rewrites = rewrite_pairs([DescriptionPair("1", "A dog sits.", "A dog sits. A unicorn flies.")], client, k=3)
        assert rewrites[0]["status"] == "ok" and rewrites[0]["styles"] == ["s1", "s2", "s3"]
        assert rewrites[0]["chosen"][2] == "[s3] A dog sits."
        assert rewrites[0]["rejected"][2] == "[s3] A dog sits. A unicorn flies."

        qa = convert_to_qa([QASource("1", "-", "A dog sits.", "A dog sits. A unicorn flies.",
                                     ("A dog sits.", "A unicorn flies."), ("correct", "hallucination"))],
                           client, max_hallucinated=1, max_present=0)
        assert [i["answer"] for i in qa[0]["items"]] == ["no"]
        assert qa[0]["items"][0]["reject"] == "Yes, there is a unicorn in the image."


def test_an_image_without_a_reply_fails_with_its_reason_and_is_not_reasked(tmp_path):
    client = OpenAIChatClient(JudgeSpec(base_url="http://127.0.0.1:9/v1", api_key_env="", judge_model="x",
                                        judge_max_retries=0, judge_timeout=2), progress=False)
    records = detect_and_correct([Description("1", "A dog.", "-")], client, max_attempts=2)
    assert records[0]["status"] == "failed" and records[0]["reason"] == "no reply"
    assert "no reply" in records[0]["error"] and records[0]["attempts"] == 1
    assert client.faults()["connection_errors"] == 1 and client.faults()["gave_up"] == 1


def test_mine_with_an_openai_compatible_judge(mining_world, tiny_model_dir, tiny_loaded, tmp_path,
                                              planted_descriptions):
    root = tmp_path / "data"
    shutil.copytree(mining_world, root)
    judge = Judge()
    with StubChatServer(judge) as server:
        cfg = DataConfig.from_dict(dict(
            source="mine", data_root=str(root), run_dir=str(tmp_path / "run"), model=str(tiny_model_dir),
            judge="openai", base_url=server.url, api_key_env="", judge_model="stub", n_images=4, min_objects=1,
            max_objects=3, min_regions=1, qa_max_new_tokens=6, progress=False))
        selection = select_images(cfg, load_annotations(root), load_eval_images(root))
        ids = [str(im["image_id"]) for im in selection["images"]]
        texts = planted_descriptions(root, ids)
        texts[ids[0]] = texts[ids[0]] + " BAD."
        atomic_write_jsonl(tmp_path / "run" / "descriptions.jsonl",
                           [{"image_id": i, "response": texts[i], "num_tokens": 0} for i in ids])
        stats = mine(cfg, loaded=tiny_loaded)
        calls = server.count
        again = mine(cfg)
        # The rerun takes every finished image from the files and asks again only for the one whose replies were
        # unusable (a probe first, then its 3 attempts): unusable replies are never cached as answers.
        assert server.count == calls + 1 + 3
        assert again["judge"]["calls"]["requests"] == 3 and again["judge"]["calls"]["probes"] == 1
        assert {**again, "judge": None} == {**stats, "judge": None}
    assert stats["skipped"]["correct"] == {"count": 1, "by_reason": {"unusable reply": 1},
                                           "images": [{"image_id": ids[0], "error": stats["skipped"]["correct"]
                                                       ["images"][0]["error"]}]}
    desc = read_desc_data(root / "hadpo" / "llava-v1.5" / "desc_data.json")
    pope = read_pope_data(root / "hadpo" / "llava-v1.5" / "pope_data.json")
    assert ids[0] not in {r.image_id for r in desc} and len(desc) == stats["images"]["in_desc_data"] > 0
    assert all(r.chosen[i].startswith(f"[s{i + 1}]") for r in desc for i in range(3))
    assert len(pope) == 2 * len(desc)
    assert (stats["judge"]["backend"], stats["judge"]["model"]) == ("openai", "stub")
    assert stats["judge"]["steps"]["correct"]["failed_unusable"] == 1
    assert stats["judge"]["steps"]["correct"]["unusable_replies"] == 3
    assert stats["judge"]["calls"]["probes"] == 1 and stats["judge"]["calls"]["unusable_replies"] == 3


# ------------------------------------------------------------------------------------------------ judge faults
def mining_config(root: Path, run_dir: Path, url: str, model: str, **extra) -> DataConfig:
    return DataConfig.from_dict(dict(
        source="mine", data_root=str(root), run_dir=str(run_dir), model=model, judge="openai", base_url=url,
        api_key_env="", judge_model="stub", n_images=4, min_objects=1, max_objects=3, min_regions=1,
        qa_max_new_tokens=6, progress=False, **extra))


def plant_descriptions(cfg: DataConfig, planted_descriptions) -> list[str]:
    root = Path(cfg.data_root)
    selection = select_images(cfg, load_annotations(root), load_eval_images(root))
    ids = [str(im["image_id"]) for im in selection["images"]]
    texts = planted_descriptions(root, ids)
    atomic_write_jsonl(Path(cfg.run_dir) / "descriptions.jsonl",
                       [{"image_id": i, "response": texts[i], "num_tokens": 0} for i in ids])
    return ids


@pytest.mark.parametrize("status,says", [(401, "rejected the API key"), (404, "not found (404)")],
                         ids=["wrong-key", "unknown-model"])
def test_mining_probes_the_judge_before_describing(mining_world, tmp_path, status, says):
    root = tmp_path / "data"
    shutil.copytree(mining_world, root)
    with StubChatServer(Judge()) as server:
        server.fail_always(StubResponse(status=status, body={"error": {"message": "nope"}}))
        cfg = mining_config(root, tmp_path / "run", server.url, str(tmp_path / "no-model-here"))
        with pytest.raises(JudgeUnavailable, match=re.escape(says)):
            mine(cfg)
        assert server.count == 1
    assert not (tmp_path / "run" / "descriptions.jsonl").exists()  # the model was never loaded


def test_mining_with_a_refused_connection_stops_at_once(mining_world, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(mining_world, root)
    cfg = mining_config(root, tmp_path / "run", "http://127.0.0.1:9/v1", str(tmp_path / "no-model-here"))
    with pytest.raises(JudgeUnavailable, match="connection refused"):
        mine(cfg)


def test_mining_absorbs_transient_faults_counts_them_and_survives_an_outage(
        mining_world, tiny_model_dir, tiny_loaded, tmp_path, planted_descriptions):
    transient = [
        StubResponse(),  # the probe
        StubResponse(status=429, body={"error": {"message": "slow"}}, headers={"Retry-After": "0.1"}),
        StubResponse(status=502, body={"error": {"message": "bad gateway"}}),
        StubResponse(delay=2.0),  # hangs past judge_timeout
        StubResponse(body=b"not json"),
        StubResponse(body=completion("I am not sure.", "stub")),  # unusable: asked again
    ]
    outputs = {}
    for name in ("clean", "faulty", "outage"):
        root = tmp_path / name / "data"
        shutil.copytree(mining_world, root)
        with StubChatServer(Judge()) as server:
            cfg = mining_config(root, tmp_path / name / "run", server.url, str(tiny_model_dir), judge_timeout=1.0,
                                judge_max_concurrency=1, judge_failure_streak=4)
            plant_descriptions(cfg, planted_descriptions)
            if name == "faulty":
                server.fail_next(transient)
            if name == "outage":
                # the judge dies for good after the probe and two items: the run stops, nothing is lost
                server.fail_next([StubResponse()] * 3)
                server.fail_always(StubResponse(status=500, body={"error": {"message": "down"}}))
                with pytest.raises(JudgeUnavailable, match="looks down: 4 calls in a row failed"):
                    mine(cfg, loaded=tiny_loaded)
                server.fail_always(None)
            stats = mine(cfg, loaded=tiny_loaded)
        outputs[name] = (stats, (root / "hadpo" / "llava-v1.5" / "desc_data.json").read_text(),
                         (root / "hadpo" / "llava-v1.5" / "pope_data.json").read_text())
    clean = outputs["clean"]
    differ = ("judge", "files", "leaks")  # the judge's calls; paths under each run's own folder
    for name in ("faulty", "outage"):
        assert outputs[name][1:] == clean[1:]  # the same data, faults and outage notwithstanding
        assert {k: v for k, v in outputs[name][0].items() if k not in differ} == \
            {k: v for k, v in clean[0].items() if k not in differ}
    calls = outputs["faulty"][0]["judge"]["calls"]
    assert (calls["rate_limited"], calls["server_errors"], calls["timeouts"], calls["malformed"]) == (1, 1, 1, 1)
    assert calls["retry_after_wait_s"] == 0.1 and calls["retries"] == 4 and calls["unusable_replies"] == 1
    assert calls["requests"] == clean[0]["judge"]["calls"]["requests"] + 4 + 1
    assert sum(s["reasks"] for s in outputs["faulty"][0]["judge"]["steps"].values()) == 1
    assert outputs["outage"][0]["judge"]["calls"]["gave_up"] == 0  # the resumed run: the rest of the work
