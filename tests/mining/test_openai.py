"""The LLM path: every step through an OpenAI-compatible server (the loopback stub), with re-asks and skips."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

from hadpo.data.hadpo_files import read_desc_data, read_pope_data
from hadpo.io import atomic_write_jsonl
from hadpo.judge.openai_client import OpenAIChatClient
from hadpo.judge.stub_server import StubChatServer
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
        assert by_id["3"]["status"] == "failed" and by_id["3"]["attempts"] == 3 and not by_id["3"]["retryable"]
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


def test_an_unreachable_server_marks_images_for_a_retry(tmp_path):
    client = OpenAIChatClient(JudgeSpec(base_url="http://127.0.0.1:9/v1", api_key_env="", judge_model="x",
                                        judge_max_retries=0, judge_timeout=2), progress=False)
    records = detect_and_correct([Description("1", "A dog.", "-")], client, max_attempts=2)
    assert records[0]["status"] == "failed" and records[0]["retryable"] and "no reply" in records[0]["error"]


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
        assert mine(cfg) == stats and server.count == calls  # the rerun is served from files and the cache
    assert stats["skipped"]["correct"] == {"count": 1, "by_reason": {"unusable reply": 1},
                                           "images": [{"image_id": ids[0], "error": stats["skipped"]["correct"]
                                                       ["images"][0]["error"]}]}
    desc = read_desc_data(root / "hadpo" / "llava-v1.5" / "desc_data.json")
    pope = read_pope_data(root / "hadpo" / "llava-v1.5" / "pope_data.json")
    assert ids[0] not in {r.image_id for r in desc} and len(desc) == stats["images"]["in_desc_data"] > 0
    assert all(r.chosen[i].startswith(f"[s{i + 1}]") for r in desc for i in range(3))
    assert len(pope) == 2 * len(desc) and stats["judge"] == {"backend": "openai", "model": "stub"}
