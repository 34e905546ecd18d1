"""mDPO's conditional and anchor terms on the packed path: the corrupted rows equal separate full forwards, the
whole loss equals one built from naive per-sequence forwards, one vision call and one LM pass per model, HA-DPO's
batch unchanged when the terms are off, the reference cache, and a resumable training run logging the new keys."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from hadpo.data.encode import EncodedSample, Encoder, collate_packed, collate_padded, collate_padded_pairs
from hadpo.distributed import DistContext
from hadpo.io import read_jsonl
from hadpo.train.config import TrainConfig
from hadpo.train.corrupt import corrupt, item_seed
from hadpo.train.logps import naive_logps, naive_pair_logps, packed_logps, policy_and_reference_logps, unwrap_llava
from hadpo.train.objectives import DpoObjective, PairExample

TOL = dict(atol=1e-5, rtol=1e-5)


def close(expected: float):
    """``expected`` to 1e-5 as :data:`TOL` means it (``torch.testing.assert_close``): |a − b| <= 1e-5 + 1e-5·|b|."""
    return pytest.approx(expected, abs=1e-5, rel=1e-5)
CPU = DistContext(rank=0, local_rank=0, world_size=1, device="cpu")
#: The keys every DPO step logs, HA-DPO's before this change, plus dpo_loss.
BASE_KEYS = {"loss", "dpo_loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins",
             "logps/chosen", "logps/rejected"}
MDPO_KEYS = {"conditional_loss", "anchor_loss", "rewards/conditional_margins", "logps/chosen_corrupted"}
TEXTS = [
    ("Is there a red circle in the image?", "Yes, there is a red circle in the image.", "No."),
    ("Describe this image in detail.", "There is a green triangle on the right.",
     "There is a blue square in the middle. There is a cyan cross. There is a white triangle."),
    ("Take a look at this image and describe what you notice.", "There is a cyan cross.", "There is a yellow cross."),
]
IMAGES = [((60, 36), (200, 30, 30)), ((40, 40), (30, 200, 30)), ((30, 50), (30, 30, 200))]


def _model(tiny_model_dir: Path):
    """The tiny LLaVA with a LoRA whose B is random too, so policy and reference differ from the start."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlavaForConditionalGeneration

    torch.manual_seed(0)
    model = LlavaForConditionalGeneration.from_pretrained(tiny_model_dir, attn_implementation="sdpa").eval()
    torch.manual_seed(1)
    config = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, init_lora_weights=False,
                        target_modules=r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)")
    return get_peft_model(model, config)


def _objective(tiny_model_dir: Path, tmp_path: Path, **overrides) -> tuple[DpoObjective, list[PairExample]]:
    """A DpoObjective on the tiny model and three pairs whose images are files (the objective loads pixels)."""
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    encoder = Encoder(processor)
    cfg = TrainConfig.from_dict({"objective": "dpo", "model": str(tiny_model_dir), "output_dir": str(tmp_path / "run"),
                                 "device": "cpu", "deepspeed_config": None, "launcher": "python", **overrides})
    tmp_path.mkdir(parents=True, exist_ok=True)
    items = []
    for k, ((size, colour), (question, chosen, rejected)) in enumerate(zip(IMAGES, TEXTS, strict=True)):
        image = Image.new("RGB", size, (255, 255, 255))
        image.paste(colour, (2, 2, size[0] // 2, size[1] // 2))
        path = tmp_path / f"img{k}.png"
        image.save(path)
        prompt_ids, chosen_ids = encoder.split_answer(question, chosen)
        _, rejected_ids = encoder.split_answer(question, rejected)
        items.append(PairExample(prompt_ids, chosen_ids, rejected_ids, path, "desc"))
    return DpoObjective(_model(tiny_model_dir), processor, encoder, CPU, cfg), items


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"conditional_weight": -1.0}, "parameter 'conditional_weight' must be >= 0, got -1.0"),
        ({"anchor_weight": -0.5}, "parameter 'anchor_weight' must be >= 0, got -0.5"),
        ({"anchor_margin": float("nan")}, "parameter 'anchor_margin' must be finite, got nan"),
        ({"crop_scale": [0.2, 0.1]}, "parameter 'crop_scale' must be [lo, hi] with 0 < lo <= hi <= 1, got [0.2, 0.1]"),
        ({"crop_scale": [0.0, 0.1]}, "parameter 'crop_scale' must be [lo, hi]"),
        ({"crop_scale": [0.1, 1.5]}, "parameter 'crop_scale' must be [lo, hi]"),
        ({"crop_scale": [0.1]}, "parameter 'crop_scale' must be [lo, hi]"),
        ({"noise_level": 0.0}, "parameter 'noise_level' must be in (0, 1], got 0.0"),
        ({"corruption": "blur"}, "must be one of ['crop', 'noise'], got 'blur'"),
    ],
)
def test_bad_mdpo_settings_name_the_parameter(overrides: dict, message: str) -> None:
    from hadpo.errors import ParamsError

    with pytest.raises(ParamsError, match=re.escape(message)):
        TrainConfig.from_dict({"deepspeed_config": None, **overrides})
    cfg = TrainConfig.from_dict({"crop_scale": [0.1, 0.1], "noise_level": 1.0, "anchor_margin": -2.0})
    assert (cfg.conditional_weight, cfg.anchor_weight, cfg.corruption) == (0.0, 0.0, "crop")


@pytest.mark.parametrize("corruption", ["crop", "noise"])
def test_conditional_rows_equal_separate_full_forwards(tiny_model_dir, tmp_path, corruption) -> None:
    """The batch holds the B pair rows and then B rows ``prompt + chosen`` with the corrupted image; their packed
    log-probs equal full forwards of ``prompt + chosen`` on the corrupted pixels (and the pair rows the naive pair
    forwards), the conditional rows' empty second slot sums to 0 over 0 tokens."""
    objective, items = _objective(tiny_model_dir, tmp_path, conditional_weight=1.0, corruption=corruption)
    batch = objective.collate(items)["packed"]
    n = len(items)
    assert batch.input_ids.shape[0] == 2 * n and batch.pixel_values.shape[0] == 2 * n
    encoder, cfg = objective.encoder, objective.cfg
    corrupted = []
    for item in items:
        seed = item_seed(cfg.seed, item.image, item.prompt_ids, item.chosen_ids)
        expected = corrupt(encoder.pixel_values(item.image), corruption, seed, crop_scale=cfg.crop_scale,
                           noise_level=cfg.noise_level)
        corrupted.append(expected)
    torch.testing.assert_close(batch.pixel_values[n:], torch.stack(corrupted), rtol=0, atol=0)
    pairs = collate_padded_pairs([_pair(objective, it) for it in items], encoder.pad_id)
    samples = [EncodedSample(it.prompt_ids, it.chosen_ids, px) for it, px in zip(items, corrupted, strict=True)]
    model = objective.model
    with torch.no_grad():
        packed = packed_logps(model, batch)
        naive_pairs = naive_pair_logps(model, pairs)
        naive_corrupted = naive_logps(model, collate_padded(samples, encoder.pad_id))
    torch.testing.assert_close(packed.sums[:n], naive_pairs.sums, **TOL)
    torch.testing.assert_close(packed.sums[n:, :1], naive_corrupted.sums, **TOL)
    width = naive_corrupted.per_token.shape[-1]
    torch.testing.assert_close(packed.per_token[n:, 0, :width], naive_corrupted.per_token[:, 0], **TOL)
    assert packed.counts[n:].tolist() == [[len(it.chosen_ids), 0] for it in items]
    assert packed.sums[n:, 1].tolist() == [0.0] * n
    # The corruption changes what the model sees: the chosen answer's log-prob moves.
    assert (packed.sums[n:, 0] - packed.sums[:n, 0]).abs().min() > 1e-4


def _pair(objective: DpoObjective, item: PairExample):
    from hadpo.data.encode import EncodedPair

    return EncodedPair(item.prompt_ids, item.chosen_ids, item.rejected_ids, objective.encoder.pixel_values(item.image))


@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo"])
def test_whole_loss_equals_naive_per_sequence_forwards(tiny_model_dir, tmp_path, loss_type) -> None:
    """DPO + conditional + anchor (δ = 0.3) + SFT (γ = 0.5) from the objective's packed step equals the same loss
    written out from naive forwards (each sequence alone, full logits, the reference as the adapter disabled), and
    every logged term matches its naive value, all to 1e-5 in the sense of the log-prob tests (absolute and
    relative: IPO's loss here is about 10, where float32 itself resolves only ~1e-6 and summing ~60-nat
    log-probs in another order moves it by a few 1e-6)."""
    beta, margin, gamma, w_c, w_a = 0.5, 0.3, 0.5, 1.0, 2.0
    objective, items = _objective(tiny_model_dir, tmp_path, conditional_weight=w_c, anchor_weight=w_a,
                                  anchor_margin=margin, gamma=gamma, beta=beta, loss_type=loss_type)
    batch = objective.collate(items)
    loss, metrics = objective(batch)

    encoder, model = objective.encoder, objective.model
    pairs = collate_padded_pairs([_pair(objective, it) for it in items], encoder.pad_id)
    corrupted = collate_padded([EncodedSample(it.prompt_ids, it.chosen_ids, objective.corrupted_pixels(it))
                                for it in items], encoder.pad_id)

    def naive(m):
        both = naive_pair_logps(m, pairs)
        return both.chosen, both.rejected, naive_logps(m, corrupted).sums[:, 0], both.counts[:, 0]

    pc, pr, pk, counts = naive(model)
    with torch.no_grad(), model.disable_adapter():
        rc, rr, rk, _ = naive(model)

    def pref(h: torch.Tensor) -> torch.Tensor:
        return -F.logsigmoid(beta * h) if loss_type == "sigmoid" else (h - 1 / (2 * beta)) ** 2

    dpo = pref((pc - rc) - (pr - rr))
    cond = pref((pc - rc) - (pk - rk))
    anchor = -F.logsigmoid(beta * (pc - rc) - margin)
    sft = -pc / counts
    expected = dpo.mean() + w_c * cond.mean() + w_a * anchor.mean() + gamma * sft.mean()

    assert loss.item() == close(expected.item())
    assert set(metrics) == BASE_KEYS | MDPO_KEYS | {"sft_loss"}
    assert metrics["dpo_loss"] == close(dpo.mean().item())
    assert metrics["conditional_loss"] == close(cond.mean().item())
    assert metrics["anchor_loss"] == close(anchor.mean().item())
    assert metrics["sft_loss"] == close(sft.mean().item())
    margins = (beta * ((pc - rc) - (pk - rk))).mean().item()
    assert metrics["rewards/conditional_margins"] == close(margins)
    assert metrics["logps/chosen_corrupted"] == close(pk.mean().item())
    # Gradients flow into the LoRA weights through all three policy log-probs.
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in model.named_parameters() if "lora_B" in n)


def test_one_vision_call_and_one_lm_pass_per_model(tiny_model_dir, tmp_path) -> None:
    """With the conditional term on, a step encodes the 2B images (real, then corrupted) in one vision call and runs
    the language model twice (reference, policy), each time over the 2B rows."""
    objective, items = _objective(tiny_model_dir, tmp_path, conditional_weight=1.0, anchor_weight=1.0)
    llava = unwrap_llava(objective.model)
    vision, lm = [], []
    hooks = [llava.model.vision_tower.register_forward_hook(lambda m, a, o: vision.append(a[0].shape[0])),
             llava.model.language_model.register_forward_hook(
                 lambda m, a, kw, o: lm.append(kw["inputs_embeds"].shape[0]), with_kwargs=True)]
    try:
        objective(objective.collate(items))
    finally:
        for hook in hooks:
            hook.remove()
    assert vision == [2 * len(items)]
    assert lm == [2 * len(items), 2 * len(items)]


def test_terms_off_keep_the_ha_dpo_batch_and_keys(tiny_model_dir, tmp_path) -> None:
    """conditional_weight 0 (the default): the batch is exactly collate_packed of the pairs, the step logs HA-DPO's
    keys plus dpo_loss (equal to loss when γ = 0); anchor alone adds only anchor_loss and no rows."""
    objective, items = _objective(tiny_model_dir, tmp_path)
    batch = objective.collate(items)["packed"]
    plain = collate_packed([_pair(objective, it) for it in items], objective.encoder.pad_id)
    for name in ("input_ids", "position_ids", "allowed", "pixel_values", "targets", "gather_positions"):
        torch.testing.assert_close(getattr(batch, name), getattr(plain, name), rtol=0, atol=0)
    loss, metrics = objective({"packed": batch})
    assert set(metrics) == BASE_KEYS and metrics["dpo_loss"] == pytest.approx(loss.item(), abs=1e-7)
    policy, ref = policy_and_reference_logps(objective.model, plain)
    anchored, _ = _objective(tiny_model_dir, tmp_path / "anchor", anchor_weight=1.0)
    assert anchored.collate(items)["packed"].input_ids.shape[0] == len(items)
    _, anchored_metrics = anchored(anchored.collate(items))
    assert set(anchored_metrics) == BASE_KEYS | {"anchor_loss"}
    expected = -F.logsigmoid(0.1 * (policy.chosen - ref.chosen)).mean().item()
    assert anchored_metrics["anchor_loss"] == pytest.approx(expected, abs=1e-5)


# ----- through the trainer: the world's data, the reference cache, a resumed run -----------------------------------
def _dpo(tmp_path: Path, model: Path, data: Path, **overrides) -> TrainConfig:
    base = dict(objective="dpo", model=str(model), data_root=str(data), output_dir=str(tmp_path / "run"),
                template="vicuna_v1", per_device_batch_size=2, learning_rate=5e-3, max_steps=4, save_steps=2,
                launcher="python", deepspeed_config=None, device="cpu", lora_r=4, lora_alpha=8, max_pairs=8,
                conditional_weight=1.0, anchor_weight=1.0)
    return TrainConfig.from_dict({**base, **overrides})


def test_precomputed_reference_caches_the_corrupted_chosen(tmp_path, tiny_model_dir, train_world) -> None:
    """precompute_ref with the conditional term: each cached row is [chosen, rejected, chosen | corrupted], equal to
    the per-step reference on the same collated rows; the cache key changes with the corruption and the seed."""
    from hadpo.train.objectives import build_dpo
    from hadpo.train.refcache import cache_key

    cfg = _dpo(tmp_path, tiny_model_dir, train_world, precompute_ref=True, per_device_batch_size=3, max_pairs=5)
    objective = build_dpo(cfg, CPU)
    batch = objective.collate(objective.dataset)
    assert batch["ref"].shape == (5, 3)
    _, ref = policy_and_reference_logps(objective.model, batch["packed"])
    torch.testing.assert_close(batch["ref"][:, :2], ref.sums[:5], rtol=0, atol=1e-4)
    torch.testing.assert_close(batch["ref"][:, 2], ref.sums[5:, 0], rtol=0, atol=1e-4)
    keys = {cache_key(objective, c, 5) for c in (cfg, cfg.replace(seed=1), cfg.replace(crop_scale=[0.1, 0.2]),
                                                 cfg.replace(corruption="noise"), cfg.replace(conditional_weight=0.0))}
    assert len(keys) == 5
    assert cache_key(objective, cfg.replace(conditional_weight=0.0, seed=1), 5) == cache_key(
        objective, cfg.replace(conditional_weight=0.0), 5)  # off: the seed does not shape the reference


@pytest.fixture
def keep_global_rng():
    """The trainer seeds Python, NumPy and torch globally; give the other tests their state back."""
    import random

    import numpy as np

    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    yield
    random.setstate(states[0])
    np.random.set_state(states[1])
    torch.set_rng_state(states[2])


def test_training_with_mdpo_terms_logs_them_and_resumes_exactly(tmp_path, tiny_model_dir, train_world, capsys,
                                                                keep_global_rng) -> None:
    """The trainer's loop (in this process, as its child runs it) with conditional_weight = anchor_weight = 1 logs
    the new keys every step; a second run started from a copy of the first's step-2 checkpoint (what a kill after
    step 2 leaves) ends with the same adapter and the same metrics."""
    from safetensors.torch import load_file

    from hadpo.train.trainer import train

    clean = _dpo(tmp_path / "a", tiny_model_dir, train_world)
    train(clean)
    first = Path(clean.output_dir)
    metrics = read_jsonl(first / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2, 3, 4]
    for m in metrics:
        assert set(m) >= BASE_KEYS | MDPO_KEYS and "sft_loss" not in m
        assert m["loss"] == pytest.approx(m["dpo_loss"] + m["conditional_loss"] + m["anchor_loss"], abs=1e-5)
    # Step 1: policy == reference (LoRA B starts at 0), so every term is -log sigma(0) = ln 2.
    for key in ("dpo_loss", "conditional_loss", "anchor_loss"):
        assert metrics[0][key] == pytest.approx(0.6931472, abs=1e-5)
    assert metrics[-1]["rewards/conditional_margins"] != 0.0

    resumed = _dpo(tmp_path / "b", tiny_model_dir, train_world)
    out = Path(resumed.output_dir)
    shutil.copytree(first, out, ignore=shutil.ignore_patterns("adapter", "*.json"))
    assert (out / "checkpoints" / "latest").read_text().strip() == "step-0000002"
    capsys.readouterr()
    train(resumed)
    assert "resuming at step 2" in capsys.readouterr().out

    a = load_file(str(first / "adapter" / "adapter_model.safetensors"))
    b = load_file(str(out / "adapter" / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)
    again = read_jsonl(out / "metrics.jsonl")
    assert [m["step"] for m in again] == [1, 2, 3, 4]
    for x, y in zip(metrics, again, strict=True):
        for key in BASE_KEYS | MDPO_KEYS:
            assert x[key] == pytest.approx(y[key], abs=1e-6), key
