"""One LoRA-DPO training step: the kit's packed step against a naive step, same model, same batch, one process.

The kit's step (``hadpo.train.logps.policy_and_reference_logps``): the image is encoded once per pair for both
passes, the reference is the policy with its adapter disabled, each pair is one packed ``prompt + chosen +
rejected`` row, and log-probs are gathered at answer positions only. The naive step is what a straightforward
port does: a separate frozen reference copy, separate full forwards for chosen and rejected under both models
(the image encoded for every sequence), full fp32 logits. Both use the kit's sigmoid DPO loss, backward and an
AdamW step.

Token proportions follow LLaVA-1.5 (most of a sequence is the prompt: 576 image tokens + system + question, then
a few dozen answer tokens): the tiny model is built with 96 px images and 8 px patches, i.e. 144 image tokens
(~200 prompt tokens), and answers of 12–24 words (~20 tokens). Counting language-model tokens alone (backward ≈ 2×
forward), the naive step costs 8(P+A) and the kit's 4(P+2A) per pair for prompt P and answer A, a ratio of
2(P+A)/(P+2A), just under 2; encoding the image once instead of four times and skipping full-vocabulary
logits make up the rest. A third step, ``kit+ref``, is the kit with ``precompute_ref: true``: the reference
log-probs come from a one-off pass before training, so the step runs the policy alone (``speedup_cached_ref``).
A fourth, ``kit+cond``, is the kit with mDPO's terms on (``conditional_weight: 1``, ``anchor_weight: 1``): after
the B pair rows the batch holds B rows ``prompt + chosen`` with a corrupted (cropped) image, so a step encodes 2B
images in one vision call and runs the language model over 2B rows; ``conditional_cost`` is its median step time
over the kit's, both measured in the same run. Its real tokens are (2P+3A)/(P+2A) of the kit's, ~1.9 here, but a
conditional row (P+A) is padded to the pair rows' length (P+2A), so the LM runs over 2× the kit's positions, plus a
second image per pair: expect a ratio near 2.

Timing: both steps alternate after a warm-up, and the median of ``--steps`` steps is reported. Peak memory is the
extra memory one step allocates at its high point, above what the models and optimiser already hold: on CUDA
``max_memory_allocated`` after ``reset_peak_memory_stats``; on CPU the peak of live tensor bytes allocated during
the step, tracked op by op with a ``TorchDispatchMode`` (see :class:`LiveTensorBytes`; ``tracemalloc`` cannot see
torch's C++ allocations and ``ru_maxrss`` is one high-water mark for the whole process, blurred by what glibc
keeps cached). At step 0, with identical weights, the two losses must agree within 1e-5.

The last line printed is one JSON object: ``{"speedup": naive/kit median step time, "peak_mem_ratio": naive/kit
peak step memory, "loss_abs_diff": |loss_kit − loss_naive| at step 0, "speedup_cached_ref": naive/kit+ref,
"conditional_cost": kit+cond/kit median step time, "conditional_mem_ratio": kit+cond/kit peak step memory, ...}``.

Run: ``OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 DS_ACCELERATOR=cpu python benchmarks/train_step.py``
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import statistics
import sys
import tempfile
import time
import weakref
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DS_ACCELERATOR", "cpu")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import torch
from PIL import Image
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from hadpo.data.encode import EncodedPair, EncodedSample, Encoder, collate_packed, collate_padded_pairs
from hadpo.models.prompts import DESCRIPTION_INSTRUCTIONS, VICUNA_V1_SYSTEM
from hadpo.models.tiny import TinyLlavaConfig, build_tiny_llava
from hadpo.train.corrupt import corrupt, item_seed
from hadpo.train.logps import naive_pair_logps, packed_logps, policy_and_reference_logps, reference_model
from hadpo.train.loss import anchor_loss, conditional_loss, preference_loss, total_loss

WORDS = (
    "there",
    "is",
    "a",
    "red",
    "green",
    "blue",
    "yellow",
    "purple",
    "orange",
    "cyan",
    "white",
    "circle",
    "square",
    "triangle",
    "cross",
    "on",
    "the",
    "left",
    "right",
    "middle",
    "top",
    "bottom",
    "of",
    "image",
    "next",
    "to",
    "small",
    "large",
    "near",
    "far",
)
LORA_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (defaults: LLaVA-1.5-like proportions on a CPU-sized model)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image-size", type=int, default=96, help="image side in pixels")
    ap.add_argument("--patch-size", type=int, default=8, help="patch side; image tokens = (image/patch)^2")
    ap.add_argument("--text-hidden", type=int, default=256, help="language model width")
    ap.add_argument("--text-layers", type=int, default=4, help="language model depth")
    ap.add_argument("--batch", type=int, default=8, help="preference pairs per step")
    ap.add_argument("--answer-words", type=int, nargs=2, default=(12, 24), help="answer length range in words")
    ap.add_argument("--lora-r", type=int, default=8, help="LoRA rank")
    ap.add_argument("--beta", type=float, default=0.1, help="DPO beta")
    ap.add_argument("--lr", type=float, default=1e-4, help="AdamW learning rate")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps of each kind after step 0")
    ap.add_argument("--steps", type=int, default=7, help="timed steps of each kind (median reported)")
    ap.add_argument("--attn", choices=("sdpa", "eager"), default="sdpa", help="attention implementation")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="torch device")
    ap.add_argument("--seed", type=int, default=0, help="seed of the model, data and LoRA initialisation")
    return ap.parse_args(argv)


def make_pairs(encoder: Encoder, n: int, words: tuple[int, int], seed: int) -> list[EncodedPair]:
    """``n`` random pairs: noise images of varied aspect, the four description instructions, word-salad answers."""
    rng = random.Random(seed)
    np_rng = np.random.default_rng(seed)

    def sentence() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(*words))) + "."

    pairs = []
    for i in range(n):
        size = (rng.randint(64, 160), rng.randint(64, 160))
        image = Image.fromarray(np_rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
        question = DESCRIPTION_INSTRUCTIONS[i % len(DESCRIPTION_INSTRUCTIONS)]
        pairs.append(encoder.encode_pair(image, question, sentence(), sentence()))
    return pairs


def build_models(model_dir: Path, args: argparse.Namespace):
    """(kit policy, naive policy, naive frozen reference copy): identical starting weights, LoRA B non-zero.

    ``init_lora_weights=False`` gives B random values, so policy and reference differ from step 0 and the loss
    comparison is not the trivial ln 2 = ln 2.
    """
    from peft import LoraConfig, get_peft_model
    from transformers import LlavaForConditionalGeneration

    def load():
        return LlavaForConditionalGeneration.from_pretrained(model_dir, attn_implementation=args.attn).to(args.device)

    def lora(model):
        torch.manual_seed(args.seed)
        cfg = LoraConfig(
            r=args.lora_r,
            lora_alpha=2 * args.lora_r,
            lora_dropout=0.0,
            target_modules=LORA_TARGETS,
            init_lora_weights=False,
        )
        return get_peft_model(model, cfg)

    kit, naive = lora(load()), lora(load())
    naive.load_state_dict(kit.state_dict())
    reference = load().eval().requires_grad_(False)
    return kit, naive, reference


def make_step(loss_fn: Callable[[], torch.Tensor], model: torch.nn.Module, lr: float) -> Callable[[], float]:
    """A training step: loss, backward, AdamW step; returns the loss (before the update)."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)

    def step() -> float:
        loss = loss_fn()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    return step


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class LiveTensorBytes(TorchDispatchMode):
    """Track the bytes of tensor storages created inside the mode and still alive; keeps the peak.

    Every aten op (forward, backward and optimiser alike) passes through ``__torch_dispatch__``; an output whose
    storage is not one of the op's inputs' is a new allocation, released when its storage dies (storages keep
    their Python object while the C++ storage lives, so a ``weakref.finalize`` fires exactly then).
    """

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, int] = {}
        self.current = 0
        self.peak = 0

    def _release(self, key: int) -> None:
        self.current -= self.live.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage()._cdata for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)}
        for tensor in tree_leaves(out):
            if not isinstance(tensor, torch.Tensor):
                continue
            storage = tensor.untyped_storage()
            key = storage._cdata
            if key in inputs or key in self.live:
                continue
            self.live[key] = storage.nbytes()
            self.current += self.live[key]
            self.peak = max(self.peak, self.current)
            weakref.finalize(storage, self._release, key)
        return out


def peak_step_memory(step: Callable[[], float], device: str) -> int:
    """Peak bytes of memory allocated during one step above what was held before it.

    CUDA: the caching allocator's ``max_memory_allocated``. CPU: :class:`LiveTensorBytes` (``tracemalloc`` does not
    see torch's C++ allocations, and the process RSS mostly reflects what glibc keeps cached, not the step).
    """
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    with LiveTensorBytes() as tracker:
        step()
    return tracker.peak


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run the benchmark, print the table and the JSON line; returns the JSON fields."""
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    cfg = TinyLlavaConfig(
        image_size=args.image_size,
        patch_size=args.patch_size,
        text_hidden=args.text_hidden,
        text_layers=args.text_layers,
        text_ffn=2 * args.text_hidden,
        max_positions=1024,
        seed=args.seed,
    )
    texts = [VICUNA_V1_SYSTEM, *DESCRIPTION_INSTRUCTIONS, " ".join(WORDS)] * 20
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_llava(Path(tmp) / "tiny", texts, cfg)
        from transformers import AutoProcessor

        encoder = Encoder(AutoProcessor.from_pretrained(model_dir))
        kit_model, naive_model, reference = build_models(model_dir, args)
    # The kit with ``precompute_ref``: reference log-probs computed once, outside the step.
    cached_model = copy.deepcopy(kit_model)
    # The kit with mDPO's conditional and anchor terms.
    cond_model = copy.deepcopy(kit_model)

    pairs = make_pairs(encoder, args.batch, tuple(args.answer_words), args.seed)
    packed = collate_packed(pairs, encoder.pad_id).to(args.device)
    padded = collate_padded_pairs(pairs, encoder.pad_id).to(args.device)
    # The conditional rows: each pair's chosen answer after its image cropped as mDPO does (scale 0.01–0.2).
    corrupted = [EncodedSample(p.prompt_ids, p.chosen_ids,
                               corrupt(p.pixel_values, "crop", item_seed(args.seed, f"pair-{i}", p.prompt_ids,
                                                                         p.chosen_ids)))
                 for i, p in enumerate(pairs)]
    cond_packed = collate_packed([*pairs, *corrupted], encoder.pad_id).to(args.device)

    def kit_loss() -> torch.Tensor:
        policy, ref = policy_and_reference_logps(kit_model, packed)
        return preference_loss(policy.chosen, policy.rejected, ref.chosen, ref.rejected, args.beta).losses.mean()

    def naive_loss() -> torch.Tensor:
        with torch.no_grad():
            ref = naive_pair_logps(reference, padded)
        policy = naive_pair_logps(naive_model, padded)
        return preference_loss(policy.chosen, policy.rejected, ref.chosen, ref.rejected, args.beta).losses.mean()

    with torch.no_grad(), reference_model(cached_model) as ref_model:
        cached_ref = packed_logps(ref_model, packed)

    def cached_loss() -> torch.Tensor:
        policy = packed_logps(cached_model, packed)
        return preference_loss(policy.chosen, policy.rejected, cached_ref.chosen, cached_ref.rejected,
                               args.beta).losses.mean()

    def cond_loss() -> torch.Tensor:
        n = len(pairs)
        policy, ref = policy_and_reference_logps(cond_model, cond_packed)
        pc, pr, pk = policy.sums[:n, 0], policy.sums[:n, 1], policy.sums[n:, 0]
        rc, rr, rk = ref.sums[:n, 0], ref.sums[:n, 1], ref.sums[n:, 0]
        return total_loss(preference_loss(pc, pr, rc, rr, args.beta).losses, None, 0.0,
                          conditional_losses=conditional_loss(pc, pk, rc, rk, args.beta).losses,
                          conditional_weight=1.0, anchor_losses=anchor_loss(pc, rc, args.beta), anchor_weight=1.0)

    kit_step = make_step(kit_loss, kit_model, args.lr)
    naive_step = make_step(naive_loss, naive_model, args.lr)
    cached_step = make_step(cached_loss, cached_model, args.lr)
    cond_step = make_step(cond_loss, cond_model, args.lr)

    loss_kit, loss_naive, loss_cached = kit_step(), naive_step(), cached_step()  # step 0: identical weights
    loss_cond = cond_step()
    for _ in range(args.warmup):
        kit_step(), naive_step(), cached_step(), cond_step()
    mem_kit = peak_step_memory(kit_step, args.device)
    mem_naive = peak_step_memory(naive_step, args.device)
    mem_cached = peak_step_memory(cached_step, args.device)
    mem_cond = peak_step_memory(cond_step, args.device)

    times: dict[str, list[float]] = {"kit": [], "naive": [], "cached": [], "cond": []}
    for _ in range(args.steps):
        for name, step in (("kit", kit_step), ("naive", naive_step), ("cached", cached_step), ("cond", cond_step)):
            _sync(args.device)
            start = time.perf_counter()
            step()
            _sync(args.device)
            times[name].append(time.perf_counter() - start)

    kit_ms = 1000 * statistics.median(times["kit"])
    naive_ms = 1000 * statistics.median(times["naive"])
    cached_ms = 1000 * statistics.median(times["cached"])
    cond_ms = 1000 * statistics.median(times["cond"])
    prompt = statistics.mean(len(p.prompt_ids) for p in pairs)
    answer = statistics.mean(len(a) for p in pairs for a in p.answers)
    print(f"device {args.device}, threads {torch.get_num_threads()}, attn {args.attn}, batch {args.batch} pairs")
    print(f"prompt {prompt:.0f} tokens ({encoder.image_token_count} image), answer {answer:.1f} tokens (mean)")
    print(f"{'step':<8}{'median ms':>12}{'peak MiB':>12}{'loss@0':>14}")
    print(f"{'kit':<8}{kit_ms:>12.1f}{mem_kit / 2**20:>12.1f}{loss_kit:>14.7f}")
    print(f"{'naive':<8}{naive_ms:>12.1f}{mem_naive / 2**20:>12.1f}{loss_naive:>14.7f}")
    print(f"{'kit+ref':<8}{cached_ms:>12.1f}{mem_cached / 2**20:>12.1f}{loss_cached:>14.7f}  (precompute_ref)")
    print(f"{'kit+cond':<8}{cond_ms:>12.1f}{mem_cond / 2**20:>12.1f}{loss_cond:>14.7f}  (conditional + anchor, mDPO)")
    result = {
        "speedup": round(naive_ms / kit_ms, 3),
        "peak_mem_ratio": round(mem_naive / max(mem_kit, 1), 3),
        "loss_abs_diff": abs(loss_kit - loss_naive),
        "speedup_cached_ref": round(naive_ms / cached_ms, 3),
        "conditional_cost": round(cond_ms / kit_ms, 3),
        "conditional_mem_ratio": round(mem_cond / max(mem_kit, 1), 3),
        "kit_ms": round(kit_ms, 2),
        "naive_ms": round(naive_ms, 2),
        "cond_ms": round(cond_ms, 2),
        "device": args.device,
    }
    print(json.dumps(result))
    if result["loss_abs_diff"] >= 1e-5 or abs(loss_cached - loss_naive) >= 1e-5:
        print("step-0 losses disagree", file=sys.stderr)
        sys.exit(1)
    return result


if __name__ == "__main__":
    main()
