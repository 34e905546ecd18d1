"""The 7B path without a GPU: ``params/7b`` runs 01 → 08 on LLaVA-1.5-7B's real geometry (depth cut, random weights,
the hub's layout, the real Llama-2 tokenizer), with CPU overrides only: the device and dtype, a few steps and pairs,
a few POPE questions, SHR, CHAIR, AMBER and MMHal-Bench items, and a loopback OpenAI-compatible judge. Training runs
through the python launcher and DeepSpeed ZeRO-2 and ZeRO-3.

The project is laid out as a user's would be: ``params/`` (the kit's), ``data/`` in the original HA-DPO layout and
the model where the presets name it, ``llava-hf/llava-1.5-7b-hf`` (a folder of that name under the project root is
read as that folder, not as a hub id).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from hadpo.io import read_json, read_jsonl
from hadpo.notebooks import REPO_ROOT, resolve_parameters, stage

pytestmark = pytest.mark.slow

#: The only things changed from params/7b: what a CPU and a test's time allow.
CPU = {"device": "cpu", "dtype": "bfloat16"}
TRAIN = {**CPU, "num_gpus": 1, "max_steps": 1, "per_device_batch_size": 1, "max_pairs": 2}
POPE = {**CPU, "limit": 4, "max_new_tokens": 4}  # 4 questions of each of the 3 sets
SHR = {**CPU, "limit": 3, "max_new_tokens": 8, "num_beams": 2}  # beam search, batched, at a CPU's cost
CHAIR = {**CPU, "num_images": 3, "max_new_tokens": 8}
AMBER = {**CPU, "limit": 1, "max_new_tokens": 8, "answer_max_new_tokens": 4}  # 1 description, 3 yes/no questions
MMHAL = {**CPU, "limit": 2, "max_new_tokens": 8}
#: COCO's category names that stand in for the world's in the COCO val2014 files CHAIR reads.
COCO_NAMES = ("person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "dog", "cat",
              "horse")


def _write_data(root: Path) -> None:
    """A handful of images and annotations in the original HA-DPO data layout, with released-style preference data."""
    from hadpo.eval.pope.build import build_pope_files
    from hadpo.eval.pope.config import PopeBuildConfig
    from hadpo.world.config import WorldConfig
    from hadpo.world.generate import generate_world

    # The benchmark split also writes AMBER's and MMHal-Bench's files in their releases' layouts.
    generate_world(root, WorldConfig(seed=4, train_images=6, pope_images=4, shr_images=3, bench_images=4))
    build_pope_files(PopeBuildConfig(data_root=str(root), n_images=4, seed=4))
    # COCO val2014's instances and captions as CHAIR reads them (COCO's category names), once POPE is built.
    annotations = root / "coco2014" / "annotations"
    instances = json.loads((annotations / "instances_val2014.json").read_text())
    for category in instances["categories"]:
        category["name"] = COCO_NAMES[category["id"] - 1]
    (annotations / "instances_val2014.json").write_text(json.dumps(instances))
    names = {c["id"]: c["name"] for c in instances["categories"]}
    captions = [{"id": i + 1, "image_id": image["id"], "caption": "A photo of a " + " and a ".join(
        names[a["category_id"]] for a in instances["annotations"] if a["image_id"] == image["id"]) + "."}
        for i, image in enumerate(instances["images"])]
    (annotations / "captions_val2014.json").write_text(json.dumps({"images": instances["images"],
                                                                   "annotations": captions}))
    records = json.loads((root / "llava" / "llava_instruct.json").read_text())
    desc, pope = {}, []
    for rec in records:
        image_id = rec["image"].split("/")[-1].split(".")[0]
        answer = rec["conversations"][1]["value"]
        if rec["kind"] == "desc" and len(desc) < 2:
            desc[image_id] = {"chosen": [answer], "rejected": [answer + " There is a white bar on the right."]}
        elif rec["kind"] == "qa_no" and len(pope) < 2:
            question = rec["conversations"][0]["value"].split("\n", 1)[1]
            pope.append({"image_id": int(image_id), "question": question, "answer": "no", "chosen": answer,
                         "reject": "Yes, there is one.", "correct": False})
    folder = root / "hadpo" / "llava-v1.5"
    folder.mkdir(parents=True)
    (folder / "desc_data.json").write_text(json.dumps(desc))
    (folder / "pope_data.json").write_text(json.dumps(pope))


@pytest.fixture(scope="module")
def project(llava15_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    (root / "params").symlink_to(REPO_ROOT / "params")
    (root / "llava-hf").mkdir()
    (root / "llava-hf" / "llava-1.5-7b-hf").symlink_to(llava15_dir)
    _write_data(root / "data")
    return root


def _run(notebook: str, overrides: dict[str, Any] | None = None) -> Any:
    cfg = resolve_parameters(notebook, Path("params") / "7b" / f"{notebook}.yaml", overrides or {})
    return stage(notebook).run(cfg)


def test_the_7b_presets_run_01_to_08(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hadpo.eval.shr.prompt import format_judgement
    from hadpo.judge.stub_server import StubChatServer

    monkeypatch.chdir(project)
    monkeypatch.delenv("HADPO_ROOT", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "placeholder-for-the-loopback-judge")
    monkeypatch.setenv("OMP_NUM_THREADS", str(os.cpu_count() or 1))

    stats = _run("01_data")
    assert (project / "runs" / "7b" / "data" / "desc_data.json").is_file() and stats

    for variant, extra in (("train", {"launcher": "python", "deepspeed_config": None}),
                           ("train-zero2", {"deepspeed_config": "params/deepspeed/zero2.json"}),
                           ("train-zero3", {})):  # the preset's own launcher and config: deepspeed, ZeRO-3
        summary = _run("02_train", {**TRAIN, **extra, "output_dir": f"runs/7b/{variant}"})
        run = project / "runs" / "7b" / variant
        assert summary["steps"] == 1 and (run / "adapter" / "multi_modal_projector.safetensors").is_file()
        (metrics,) = read_jsonl(run / "metrics.jsonl")
        assert metrics["loss"] == pytest.approx(0.6931, abs=1e-3)  # policy == reference before the first step
        assert metrics["learning_rate"] > 0 and metrics["perf/pairs_per_second"] > 0
        assert metrics["perf/tokens_per_second"] > 0 and metrics["perf/seconds_per_step"] > 0
        config = read_json(run / "train_config.json")
        assert config["model"] == str(project / "llava-hf" / "llava-1.5-7b-hf") and config["lora_r"] == 128

    adapter = {"adapter": "runs/7b/train/adapter"}
    for name, extra in (("base", {}), ("hadpo", adapter)):
        results = _run("03_pope", {**POPE, **extra, "run_dir": f"runs/7b/pope/{name}"})
        assert {s: m["n"] for s, m in results.items()} == {"random": 4, "popular": 4, "adversarial": 4}
        protocol = read_json(project / "runs" / "7b" / "pope" / name / "random" / "protocol.json")
        assert protocol["conversation"] == "llava_v1" and protocol["dtype"] == "bfloat16"

    def judge(body: dict) -> str:
        lines = body["messages"][0]["content"].split("Sentences to judge:\n", 1)[1].strip().splitlines()
        return format_judgement([("correct", "fine")] * len(lines))

    with StubChatServer(judge) as server:
        for name, extra in (("base", {}), ("hadpo", adapter)):
            metrics = _run("04_shr", {**SHR, **extra, "base_url": server.url, "run_dir": f"runs/7b/shr/{name}"})
            assert metrics["run1"]["num_images"] == 3 and metrics["protocol"]["describe"]["decoding"]["num_beams"] == 2
    assert server.count >= 6

    for name, extra in (("base", {}), ("hadpo", adapter)):
        metrics = _run("05_chair", {**CHAIR, **extra, "run_dir": f"runs/7b/chair/{name}"})
        assert metrics["images"] == 3 and metrics["complete"] and metrics["protocol"]["synonyms"]["categories"] == 80
        assert metrics["protocol"]["describe"]["template"] == "llava_v1"
        assert metrics["protocol"]["describe"]["instruction"] == "Please describe this image in detail."

    for name, extra in (("base", {}), ("hadpo", adapter)):
        metrics = _run("06_amber", {**AMBER, **extra, "run_dir": f"runs/7b/amber/{name}"})
        assert metrics["generative"]["descriptions"] == 1 and metrics["discriminative"]["all"]["questions"] == 3
        assert read_json(project / "runs" / "7b" / "amber" / name / "discriminative" / "protocol.json")[
            "conversation"] == "llava_v1"

    def rate(body: dict) -> str:
        return "Plausible, nothing contradicts the annotations.\nRating: 4"

    with StubChatServer(rate) as server:
        for name, extra in (("base", {}), ("hadpo", adapter)):
            metrics = _run("07_mmhal", {**MMHAL, **extra, "base_url": server.url, "run_dir": f"runs/7b/mmhal/{name}"})
            assert metrics["complete"] and metrics["score"] == 4.0 and metrics["judged"] == 2
            assert metrics["protocol"]["judge"]["model"] == "gpt-4-0613"

    summary = _run("08_dashboard")
    assert summary["run_name"] == "7b" and "SHR (%)" in summary["headline"] and "CHAIR_i (%)" in summary["headline"]
    assert {"AMBER Hal (%)", "MMHal-Bench score (0-6)"} <= set(summary["headline"]) and not summary["notes"]
    assert summary["training"]["throughput"]["pairs_per_second"] > 0
    assert (project / "reports" / "7b" / "pope_bars.png").is_file()


def test_the_gpu_check_runs_at_a_cpus_size(llava15_dir: Path, tmp_path: Path) -> None:
    """benchmarks/gpu_check.py (meant for a CUDA machine, full depth) runs its own code path end to end on the CPU
    with --smoke, here with precompute_ref under ZeRO-2 (what the lane above does not run), and prints its line."""
    import subprocess
    import sys

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DS_ACCELERATOR": "cpu"}
    env.pop("HADPO_ROOT", None)
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / "gpu_check.py"), "--smoke",
                           "--model", str(llava15_dir), "--work", str(tmp_path / "check"), "--variants", "zero2:ref"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    run = result["train"]["zero2:ref"]
    assert run["done"] and run["loss_first_step"] == pytest.approx(0.6931, abs=1e-3)
    assert run["pairs_per_second"] > 0 and run["lm_tokens_per_second"] > 600 * run["pairs_per_second"]
    assert run["checkpoint_gb"] > 0 and result["pope_questions"] == 4 and result["shr_images"] == 1
    assert "k = 6 (4 with precompute_ref)" in result["mfu_formula"]
