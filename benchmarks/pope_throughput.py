"""POPE answering throughput: the kit's batched path against HA-DPO's batch-1 loop, same model, same questions.

The baseline is the original ``pope_eval.py`` loop: per question, open the image, run the processor on image
and prompt, ``generate`` greedily with batch 1. The kit's path (:mod:`hadpo.eval.pope.infer`) groups questions
by image, encodes each image once and decodes left-padded batches. Both see the same prompts, images and
decoding settings; the model is loaded once and its load time is not counted. Each path runs ``--repeats``
times, alternating, and its fastest run counts, which keeps other load on a shared machine out of the ratio.

Without ``--model`` an untrained tiny LLaVA is built; without ``--data-root`` a small shapes world is written
and its POPE files built, both in a temporary folder. An untrained model never emits EOS, so every answer runs
to ``--max-new-tokens``: keep it small and quote it with the result (it is in the JSON line).

    python benchmarks/pope_throughput.py --n-images 20 --max-new-tokens 16 --batch-size 48

The last line of stdout is one JSON object: ``{"speedup", "differing_answers", "questions", ...}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DS_ACCELERATOR", "cpu")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _data_root(args: argparse.Namespace, scratch: Path) -> Path:
    """The given data root (building its POPE file if missing), or a fresh small shapes world."""
    from hadpo.data.layout import DataLayout
    from hadpo.eval.pope.build import build_pope_files
    from hadpo.eval.pope.config import PopeBuildConfig

    if args.data_root:
        root = Path(args.data_root)
    else:
        from hadpo.world.config import WorldConfig
        from hadpo.world.generate import generate_world

        root = scratch / "world"
        generate_world(root, WorldConfig(train_images=1, pope_images=args.n_images, shr_images=0))
    if not DataLayout(root).pope_file(args.set).is_file():
        build_pope_files(PopeBuildConfig(data_root=str(root), n_images=args.n_images, seed=0))
    return root


def _model_dir(args: argparse.Namespace, scratch: Path) -> Path:
    """The given model folder or hub id, or an untrained tiny LLaVA built offline."""
    if args.model:
        return Path(args.model)
    from hadpo.models.prompts import LLAVA_V1_SYSTEM, SHORT_ANSWER_SUFFIX
    from hadpo.models.tiny import build_tiny_llava

    texts = [LLAVA_V1_SYSTEM, SHORT_ANSWER_SUFFIX, "Is there a red circle in the image? Yes, there is.",
             "Is there a blue square in the image? No, there is not."] * 20
    return build_tiny_llava(scratch / "tiny", texts)


def _baseline(loaded, questions, images_dir: Path, max_new_tokens: int) -> list[str]:
    """HA-DPO's loop: processor per question (image re-encoded every time), batch 1, greedy."""
    import torch
    from PIL import Image

    from hadpo.models.image import prepare_image
    from hadpo.models.prompts import get_template

    template = get_template("llava_v1")
    mean = loaded.processor.image_processor.image_mean
    device = next(loaded.model.parameters()).device
    answers = []
    for q in questions:
        with Image.open(images_dir / q.image) as img:
            image = prepare_image(img, "pad", mean)
        inputs = loaded.processor(images=[image], text=[template.prompt(q.text)], return_tensors="pt").to(device)
        inputs["pixel_values"] = inputs["pixel_values"].to(next(loaded.model.parameters()).dtype)
        with torch.inference_mode():
            out = loaded.model.generate(**inputs, do_sample=False, num_beams=1, max_new_tokens=max_new_tokens,
                                        pad_token_id=loaded.tokenizer.pad_token_id)
        answers.append(loaded.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip())
    return answers


def _kit(loaded, questions, images_dir: Path, max_new_tokens: int, batch_size: int) -> list[str]:
    """The kit's path: grouped by image, each image encoded once, left-padded batches."""
    from PIL import Image

    from hadpo.eval.pope.infer import PopeAnswerer, answer_questions

    def load(q):
        with Image.open(images_dir / q.image) as img:
            img.load()
            return img

    answerer = PopeAnswerer(loaded, max_new_tokens=max_new_tokens)
    records: list[dict] = []
    answer_questions(answerer, questions, load, batch_size=batch_size, on_batch=records.extend)
    by_id = {r["question_id"]: r["answer"] for r in records}
    return [by_id[q.question_id] for q in questions]


def main(argv: list[str] | None = None) -> int:
    """Run both paths and print the comparison; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model folder or hub id; default: build an untrained tiny LLaVA")
    parser.add_argument("--data-root", default=None, help="data root; default: a temporary shapes world")
    parser.add_argument("--set", default="random", help="POPE set (random, popular, adv)")
    parser.add_argument("--n-images", type=int, default=20, help="images (6 questions each) when building data")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N questions")
    parser.add_argument("--max-new-tokens", type=int, default=16, help="generation cap for both paths")
    parser.add_argument("--batch-size", type=int, default=48, help="the kit's questions per generate call")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed runs of each path, alternating; the fastest of each counts (shared machines)")
    args = parser.parse_args(argv)

    import torch

    from hadpo.data.layout import DataLayout
    from hadpo.data.pope_files import read_pope_questions
    from hadpo.models.loading import load_model
    from hadpo.specs import ModelSpec

    with tempfile.TemporaryDirectory(prefix="pope-bench-") as tmp:
        scratch = Path(tmp)
        root = _data_root(args, scratch)
        layout = DataLayout(root)
        questions = read_pope_questions(layout.pope_file(args.set))[: args.limit]
        loaded = load_model(ModelSpec(model=str(_model_dir(args, scratch)), dtype=args.dtype, device=args.device))
        _log(f"{len(questions)} questions on {len({q.image for q in questions})} images; "
             f"max_new_tokens={args.max_new_tokens}, batch_size={args.batch_size}, dtype={args.dtype}, "
             f"device={args.device}, threads={torch.get_num_threads()}")

        # warm-up (first-call allocations and lazy imports) for both paths, not timed
        _baseline(loaded, questions[:2], layout.coco_images, args.max_new_tokens)
        _kit(loaded, questions[:2], layout.coco_images, args.max_new_tokens, args.batch_size)

        baseline_s = kit_s = float("inf")
        for _ in range(max(1, args.repeats)):
            start = time.perf_counter()
            reference = _baseline(loaded, questions, layout.coco_images, args.max_new_tokens)
            baseline_s = min(baseline_s, time.perf_counter() - start)
            start = time.perf_counter()
            fast = _kit(loaded, questions, layout.coco_images, args.max_new_tokens, args.batch_size)
            kit_s = min(kit_s, time.perf_counter() - start)

    differing = sum(a != b for a, b in zip(reference, fast, strict=True))
    _log(f"batch-1 loop: {baseline_s:.2f} s ({len(questions) / baseline_s:.1f} q/s); "
         f"kit: {kit_s:.2f} s ({len(questions) / kit_s:.1f} q/s); differing answers: {differing}")
    print(json.dumps({
        "speedup": round(baseline_s / kit_s, 2),
        "differing_answers": differing,
        "questions": len(questions),
        "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size,
        "dtype": args.dtype,
        "device": args.device,
        "baseline_s": round(baseline_s, 3),
        "kit_s": round(kit_s, 3),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
