#!/usr/bin/env python3
"""The kit's GPU check: LLaVA-1.5-7B's full geometry through the 7B recipe on one GPU, timed, as one JSON line.

What it builds: LLaVA-1.5-7B in the hub's layout (32 text and 24 vision layers, every width real, random weights
drawn on the GPU; :func:`hadpo.models.llava15.write_llava15`) with the real Llama-2 tokenizer
(``tests/fixtures/llama2-tokenizer``), and a small data root in the original layout (the shapes world's files,
its 48-px images resized to 336 by the processor as any image is). Nothing is downloaded.

What it runs, every stage from ``params/7b`` (``01_data`` as it is) with only these changes:

* **training** (``02_train``): ``--steps`` optimiser steps of ``--pairs`` pairs on one GPU (LoRA r128/α256, bf16,
  gradient checkpointing, the recipe's lr and schedule), through DeepSpeed ZeRO-2 and ZeRO-3, each with and
  without ``precompute_ref`` (the launcher is ``python``: one rank, DeepSpeed in process), and ZeRO-2 with mDPO's
  conditional and anchor terms (``:mdpo``: one more image and one more packed row per pair), a checkpoint at the
  step before the last (its size is reported);
* **POPE** (``03_pope``): ``--pope`` questions of the random set, ``max_new_tokens`` 16 (random weights never say
  EOS, so every answer is that long);
* **SHR descriptions** (``04_shr``'s describe step): ``--shr`` images, ``--shr-beams`` beams, 64 new tokens.

It prints one JSON line (and writes it to ``$OUT/gpu_check.json`` when ``$OUT`` is set): per training run the
median seconds per step over the steps after the first, pairs/s, language-model tokens/s (image tokens
included), the model FLOPs utilisation, peak GPU memory and the checkpoint's size; POPE questions/s and SHR
images/s (the answering time: the model's load is timed apart).

**MFU** = k · N · (LM tokens/s) / peak, with N the model's parameters (7.06 B), k = 6 (policy forward 2N, its
backward through the frozen weights 2N, reference forward 2N; recomputation under gradient checkpointing not
counted, attention's own FLOPs left out at ~650 tokens) or k = 4 with ``precompute_ref``, and peak the GPU's
dense bf16 rate (``--peak-tflops``, default 989: H100 / H200 SXM datasheet).

Needs, beyond a CUDA image with torch, transformers, peft, accelerate, safetensors, tokenizers, pillow, pyyaml,
pandas, matplotlib and tqdm: DeepSpeed 0.19.8 (a pure-python wheel: ``pip wheel --no-deps deepspeed==0.19.8``)
and the kit itself (``pip wheel --no-deps .``; it must be installed, not only on ``PYTHONPATH``: its judge
backends and training objectives are entry points). ``--smoke`` runs the same code at a CPU's size (the tests do).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TOKENIZER = REPO / "tests" / "fixtures" / "llama2-tokenizer"
VARIANTS = ("zero2:noref", "zero2:ref", "zero3:noref", "zero3:ref", "zero2:noref:mdpo", "zero2:ref:mdpo")
#: What a variant's third part adds to the 7B recipe: mDPO's conditional and anchor terms at its weights (1, 1).
EXTENSIONS = {"mdpo": {"conditional_weight": 1.0, "anchor_weight": 1.0}}


def _log(message: str) -> None:
    print(f"[gpu_check] {message}", file=sys.stderr, flush=True)


def write_data(root: Path, *, pairs: int, pope_images: int, shr_images: int) -> None:
    """A data root in the original layout: the shapes world's files, POPE sets, released-style preference data."""
    from hadpo.eval.pope.build import build_pope_files
    from hadpo.eval.pope.config import PopeBuildConfig
    from hadpo.world.config import WorldConfig
    from hadpo.world.generate import generate_world

    generate_world(root, WorldConfig(seed=0, train_images=max(8, pairs), pope_images=pope_images,
                                     shr_images=shr_images))
    build_pope_files(PopeBuildConfig(data_root=str(root), n_images=pope_images, seed=0))
    records = json.loads((root / "llava" / "llava_instruct.json").read_text())
    desc = {}
    for rec in records:
        if rec["kind"] == "desc" and len(desc) < pairs:
            answer = rec["conversations"][1]["value"]
            desc[rec["image"].split("/")[-1].split(".")[0]] = {
                "chosen": [answer], "rejected": [answer + " There is a white bar on the right."]}
    folder = root / "hadpo" / "llava-v1.5"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "desc_data.json").write_text(json.dumps(desc))
    (folder / "pope_data.json").write_text("[]")


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def train(variant: str, args: argparse.Namespace, params: int) -> dict[str, Any]:
    """One training run of the 7B recipe; its speed from metrics.jsonl, its memory and checkpoint from the run."""
    from hadpo.io import read_json, read_jsonl
    from hadpo.notebooks import resolve_parameters
    from hadpo.train.stage import launch_training

    zero, ref, *extension = variant.split(":")
    out = f"runs/gpu-check/train-{variant.replace(':', '-')}"
    cfg = resolve_parameters("02_train", "params/7b/02_train.yaml", {
        "device": args.device, "dtype": "bfloat16", "num_gpus": 1, "launcher": "python",
        "deepspeed_config": f"params/deepspeed/{zero}.json", "precompute_ref": ref == "ref",
        "per_device_batch_size": args.pairs, "gradient_accumulation_steps": 1, "max_steps": args.steps,
        "save_steps": max(1, args.steps - 1), "save_total_limit": 1, "output_dir": out,
        "max_pairs": args.steps * args.pairs, "force": True, **EXTENSIONS.get("".join(extension), {}),
    })
    start = time.perf_counter()
    summary = launch_training(cfg, echo=(lambda line: None) if not args.verbose else _log)
    wall = time.perf_counter() - start
    steps = read_jsonl(Path(cfg.output_dir) / "metrics.jsonl")
    timed = steps[1:] or steps  # the first step carries the allocator's and kernels' warm-up
    tokens_s = statistics.median(m["perf/tokens_per_second"] for m in timed)
    k = 4 if ref == "ref" else 6
    checkpoints = sorted((Path(cfg.output_dir) / "checkpoints").glob("step-*"))
    return {
        "seconds_per_step": round(statistics.median(m["perf/seconds_per_step"] for m in timed), 3),
        "pairs_per_second": round(statistics.median(m["perf/pairs_per_second"] for m in timed), 2),
        "lm_tokens_per_second": round(tokens_s),
        "mfu": round(k * params * tokens_s / (args.peak_tflops * 1e12), 4),
        "peak_gpu_memory_gb": summary.get("peak_gpu_memory_gb"),
        "checkpoint_gb": round(_folder_bytes(checkpoints[-1]) / 2**30, 3) if checkpoints else None,
        "adapter_gb": round(_folder_bytes(Path(summary["adapter"])) / 2**30, 3),
        "wall_s": round(wall, 1),
        "loss_first_step": steps[0]["loss"],
        "done": read_json(Path(cfg.output_dir) / "train_done.json")["steps"] == args.steps,
    }


def pope(args: argparse.Namespace) -> dict[str, Any]:
    """POPE answering speed on the kit's batched path (the model's load timed apart)."""
    from hadpo.eval.pope.stage import run_pope
    from hadpo.models.loading import load_model
    from hadpo.notebooks import resolve_parameters

    cfg = resolve_parameters("03_pope", "params/7b/03_pope.yaml", {
        "set": "random", "limit": args.pope, "max_new_tokens": 16, "device": args.device,
        "dtype": "bfloat16" if args.device == "cpu" else "float16", "run_dir": "runs/gpu-check/pope",
        "progress": False})
    start = time.perf_counter()
    load_model(cfg.model_spec)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    metrics = run_pope(cfg)["random"]
    answer_s = max(time.perf_counter() - start - load_s, 1e-9)
    return {"pope_questions": metrics["n"], "pope_questions_per_second": round(metrics["n"] / answer_s, 2),
            "model_load_s": round(load_s, 1)}


def shr(args: argparse.Namespace) -> dict[str, Any]:
    """SHR's description step (beam search, batched) on the first ``--shr`` SHR images."""
    from hadpo.eval.shr.inputs import load_shr_inputs
    from hadpo.eval.shr.stage import generate_descriptions
    from hadpo.notebooks import resolve_parameters

    cfg = resolve_parameters("04_shr", "params/7b/04_shr.yaml", {
        "limit": args.shr, "num_beams": args.shr_beams, "max_new_tokens": 64, "device": args.device,
        "dtype": "bfloat16" if args.device == "cpu" else "float16", "run_dir": "runs/gpu-check/shr",
        "batch_size": args.shr, "progress": False})
    inputs = load_shr_inputs(cfg.data_root, limit=cfg.limit)
    start = time.perf_counter()
    records, _ = generate_descriptions(cfg, inputs)
    seconds = time.perf_counter() - start
    return {"shr_images": len(records), "shr_beams": args.shr_beams,
            "shr_images_per_second_incl_load": round(len(records) / seconds, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/hadpo-gpu-check"), help="scratch folder")
    parser.add_argument("--model", type=Path, default=None, help="an existing model folder instead of building")
    parser.add_argument("--text-layers", type=int, default=32)
    parser.add_argument("--vision-layers", type=int, default=24)
    parser.add_argument("--steps", type=int, default=5, help="optimiser steps per training run")
    parser.add_argument("--pairs", type=int, default=16, help="pairs per optimiser step")
    parser.add_argument("--pope", type=int, default=256, help="POPE questions")
    parser.add_argument("--shr", type=int, default=16, help="SHR images")
    parser.add_argument("--shr-beams", type=int, default=5)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="training runs, of " + ", ".join(VARIANTS))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="the GPU's dense bf16 peak")
    parser.add_argument("--smoke", action="store_true",
                        help="a CPU's size: 2 text / 3 vision layers, 1 step of 1 pair, 4 questions, 1 image")
    parser.add_argument("--verbose", action="store_true", help="stream the training runs' output to stderr")
    args = parser.parse_args(argv)
    if args.smoke:
        args.text_layers, args.vision_layers, args.steps, args.pairs = 2, 3, 2, 1
        args.pope, args.shr, args.shr_beams, args.device = 4, 1, 2, "cpu"
    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.device == "cpu":
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    from hadpo.models.llava15 import parameter_count, write_llava15

    project = args.work.absolute()
    (project / "llava-hf").mkdir(parents=True, exist_ok=True)
    if not (project / "params").exists():
        (project / "params").symlink_to(REPO / "params")
    model = project / "llava-hf" / "llava-1.5-7b-hf"
    started = time.perf_counter()
    if args.model is not None:
        if not model.exists():
            model.symlink_to(args.model.absolute())
    elif not (model / "config.json").is_file():
        _log(f"building LLaVA-1.5-7B geometry ({args.text_layers} text / {args.vision_layers} vision layers)")
        write_llava15(model, TOKENIZER, text_layers=args.text_layers, vision_layers=args.vision_layers,
                      dtype="float16", device=args.device)
    build_s = time.perf_counter() - started
    if not (project / "data" / "world.json").is_file():
        write_data(project / "data", pairs=args.steps * args.pairs, pope_images=max(4, -(-args.pope // 6)),
                   shr_images=args.shr)
    os.chdir(project)  # the presets' relative paths are the project's
    os.environ["HADPO_ROOT"] = str(project)

    from hadpo.mining.stage import run as prepare_data
    from hadpo.notebooks import resolve_parameters

    prepare_data(resolve_parameters("01_data", "params/7b/01_data.yaml"))  # the released-data checks, as 01 runs them
    params = parameter_count(args.text_layers, args.vision_layers)
    result: dict[str, Any] = {
        "date": dt.date.today().isoformat(), "device": _device_name(args.device),
        "model": f"LLaVA-1.5-7B geometry, {args.text_layers} text / {args.vision_layers} vision layers, random",
        "parameters": params, "build_s": round(build_s, 1), "pairs_per_step": args.pairs, "steps": args.steps,
        "mfu_formula": "k * N * lm_tokens_per_second / peak; k = 6 (4 with precompute_ref), "
                       f"N = {params}, peak = {args.peak_tflops:g} TFLOP/s dense bf16",
        "train": {},
    }
    for variant in variants:
        _log(f"training: {variant}")
        result["train"][variant] = train(variant, args, params)
    _log("POPE")
    result.update(pope(args))
    _log("SHR descriptions")
    result.update(shr(args))
    result["total_s"] = round(time.perf_counter() - started, 1)
    line = json.dumps(result)
    print(line, flush=True)
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "gpu_check.json").write_text(line + "\n")
    return 0


def _device_name(device: str) -> str:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return "cpu"


if __name__ == "__main__":
    sys.exit(main())
