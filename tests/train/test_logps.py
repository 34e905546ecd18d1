"""The packed log-prob forward equals separate full forwards, with and without LoRA; the reference is the base."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from PIL import Image

from hadpo.data.encode import Encoder, collate_packed, collate_padded, collate_padded_pairs
from hadpo.train.logps import (
    image_features,
    naive_logps,
    naive_pair_logps,
    packed_logps,
    policy_and_reference_logps,
    unwrap_llava,
)

TOL = dict(atol=1e-5, rtol=1e-5)


@pytest.fixture(scope="module")
def encoder(tiny_model_dir: Path) -> Encoder:
    from transformers import AutoProcessor

    return Encoder(AutoProcessor.from_pretrained(tiny_model_dir))


def _model(tiny_model_dir: Path, attn: str = "sdpa"):
    from transformers import LlavaForConditionalGeneration

    torch.manual_seed(0)
    model = LlavaForConditionalGeneration.from_pretrained(tiny_model_dir, attn_implementation=attn)
    return model.eval()


def _lora(model, init_b_nonzero: bool = True):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(1)
    config = LoraConfig(
        r=4,
        lora_alpha=8,
        lora_dropout=0.0,
        target_modules=r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)",
        init_lora_weights=not init_b_nonzero,  # False: B is random too, so the adapter changes the outputs
    )
    return get_peft_model(model, config)


@pytest.fixture(scope="module")
def pairs(encoder: Encoder):
    # Different question lengths (prompt lengths) and answer lengths per row, so padding and offsets differ.
    return [
        encoder.encode_pair(
            Image.new("RGB", (60, 36), (200, 30, 30)),
            "Is there a red circle in the image?",
            "Yes, there is a red circle in the image.",
            "No.",
        ),
        encoder.encode_pair(
            Image.new("RGB", (40, 40), (30, 200, 30)),
            "Describe this image in detail.",
            "There is a green triangle on the right.",
            "There is a blue square in the middle. There is a cyan cross. There is a white triangle.",
        ),
        encoder.encode_pair(
            Image.new("RGB", (30, 50), (30, 30, 200)),
            "Take a look at this image and describe what you notice.",
            "There is a cyan cross.",
            "There is a yellow cross.",
        ),
    ]


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_equals_unpacked(tiny_model_dir: Path, encoder: Encoder, pairs, attn: str) -> None:
    model = _model(tiny_model_dir, attn)
    with torch.no_grad():
        packed = packed_logps(model, collate_packed(pairs, encoder.pad_id))
        naive = naive_pair_logps(model, collate_padded_pairs(pairs, encoder.pad_id))
    torch.testing.assert_close(packed.sums, naive.sums, **TOL)
    torch.testing.assert_close(packed.per_token, naive.per_token, **TOL)
    assert packed.counts.tolist() == naive.counts.tolist() == [[len(p.chosen_ids), len(p.rejected_ids)] for p in pairs]
    assert packed.chosen.shape == packed.rejected.shape == (3,)


def test_packed_equals_unpacked_with_lora_and_gradients_match(tiny_model_dir: Path, encoder: Encoder, pairs) -> None:
    policy = _lora(_model(tiny_model_dir))
    packed = packed_logps(policy, collate_packed(pairs, encoder.pad_id))
    naive = naive_pair_logps(policy, collate_padded_pairs(pairs, encoder.pad_id))
    torch.testing.assert_close(packed.sums, naive.sums, **TOL)

    def grads(logps) -> dict[str, torch.Tensor]:
        policy.zero_grad()
        (logps.chosen - logps.rejected).sum().backward(retain_graph=True)
        return {n: p.grad.clone() for n, p in policy.named_parameters() if p.grad is not None}

    g_packed, g_naive = grads(packed), grads(naive)
    assert g_packed.keys() == g_naive.keys() and any("lora_B" in n for n in g_packed)
    for name in g_packed:
        torch.testing.assert_close(g_packed[name], g_naive[name], atol=1e-4, rtol=1e-4)


def test_lora_matters_and_reference_is_the_base_model(tiny_model_dir: Path, encoder: Encoder, pairs) -> None:
    base = _model(tiny_model_dir)
    frozen_copy = copy.deepcopy(base)
    policy = _lora(base)
    batch = collate_packed(pairs, encoder.pad_id)

    pol, ref = policy_and_reference_logps(policy, batch)
    with torch.no_grad():
        base_logps = naive_pair_logps(frozen_copy, collate_padded_pairs(pairs, encoder.pad_id))
        adapter_logps = packed_logps(policy, batch)

    torch.testing.assert_close(ref.sums, base_logps.sums, **TOL)
    torch.testing.assert_close(pol.sums, adapter_logps.sums, **TOL)
    assert (pol.sums - ref.sums).abs().min() > 1e-3  # the non-zero LoRA B really changes the policy
    assert pol.sums.requires_grad and not ref.sums.requires_grad
    # An explicit reference model gives the same numbers as the disabled adapter.
    _, explicit = policy_and_reference_logps(policy, batch, reference=frozen_copy)
    torch.testing.assert_close(explicit.sums, ref.sums, **TOL)


def test_image_encoded_once_for_policy_and_reference(tiny_model_dir: Path, encoder: Encoder, pairs) -> None:
    policy = _lora(_model(tiny_model_dir))
    calls = []
    tower = unwrap_llava(policy).model.vision_tower
    handle = tower.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    try:
        policy_and_reference_logps(policy, collate_packed(pairs, encoder.pad_id))
    finally:
        handle.remove()
    assert calls == [len(pairs)]


def test_reference_uses_the_policy_projector(tiny_model_dir: Path, encoder: Encoder, pairs) -> None:
    # As in the original, the reference LM sees the current (trainable) projector's image features.
    policy = _lora(_model(tiny_model_dir))
    batch = collate_packed(pairs, encoder.pad_id)
    _, before = policy_and_reference_logps(policy, batch)
    with torch.no_grad():
        for p in unwrap_llava(policy).model.multi_modal_projector.parameters():
            p.add_(0.05)
        _, after = policy_and_reference_logps(policy, batch)
    assert (after.sums - before.sums).abs().max() > 1e-4
    with policy.disable_adapter(), torch.no_grad():
        features = image_features(policy, batch.pixel_values)
        expected = packed_logps(policy, batch, features)
    torch.testing.assert_close(after.sums, expected.sums, **TOL)


def test_sft_per_token_logps(tiny_model_dir: Path, encoder: Encoder) -> None:
    model = _model(tiny_model_dir)
    image = Image.new("RGB", (48, 48), (10, 10, 10))
    samples = [
        encoder.encode_sft(image, "Is there a red circle in the image?", "No."),
        encoder.encode_sft(image, "Describe this image in detail.", "There is a red circle on the left."),
    ]
    with torch.no_grad():
        packed = packed_logps(model, collate_packed(samples, encoder.pad_id))
        naive = naive_logps(model, collate_padded(samples, encoder.pad_id))
    assert packed.per_token.shape == (2, 1, max(len(s.answer_ids) for s in samples))
    torch.testing.assert_close(packed.per_token, naive.per_token, **TOL)
    assert packed.mask.tolist() == naive.mask.tolist()


def test_unsupported_attention_and_missing_adapter(tiny_model_dir: Path, encoder: Encoder, pairs) -> None:
    model = _model(tiny_model_dir)
    batch = collate_packed(pairs, encoder.pad_id)
    with pytest.raises(ValueError, match="no adapter"):
        policy_and_reference_logps(model, batch)
    model.model.language_model.config._attn_implementation = "flash_attention_2"
    with pytest.raises(ValueError, match="flash_attention_2"):
        packed_logps(model, batch)
    with pytest.raises(TypeError, match="LlavaForConditionalGeneration"):
        unwrap_llava(torch.nn.Linear(2, 2))
