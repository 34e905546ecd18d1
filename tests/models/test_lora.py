"""LoRA lands on the language model's seven projections only; only LoRA (+ projector) trains."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hadpo.models.lora import (
    LM_LORA_TARGET_REGEX,
    LM_PROJECTIONS,
    apply_lora,
    lm_target_regex,
    lora_config,
    lora_module_names,
    lora_target_names,
)


@pytest.mark.parametrize(
    ("name", "matches"),
    [
        ("model.language_model.layers.0.self_attn.q_proj", True),
        ("model.language_model.layers.31.mlp.down_proj", True),
        ("base_model.model.model.language_model.layers.2.mlp.gate_proj", True),
        ("language_model.model.layers.5.self_attn.o_proj", True),
        ("model.vision_tower.vision_model.encoder.layers.0.self_attn.q_proj", False),
        ("model.vision_tower.encoder.layers.1.self_attn.v_proj", False),
        ("model.vision_tower.encoder.layers.0.mlp.fc1", False),
        ("model.multi_modal_projector.linear_1", False),
        ("lm_head", False),
        ("model.language_model.layers.0.self_attn", False),
        ("model.language_model.layers.0.self_attn.q_proj.lora_A.default", False),
        ("model.language_model.embed_tokens", False),
    ],
)
def test_regex_selects_only_language_model_projections(name: str, matches: bool) -> None:
    assert bool(re.fullmatch(LM_LORA_TARGET_REGEX, name)) is matches


def test_regex_for_a_subset_of_projections() -> None:
    regex = lm_target_regex(["v_proj", "q_proj"])
    assert re.fullmatch(regex, "model.language_model.layers.0.self_attn.q_proj")
    assert not re.fullmatch(regex, "model.language_model.layers.0.self_attn.k_proj")
    with pytest.raises(ValueError, match="fc1"):
        lm_target_regex(["fc1"])


def test_lora_config_values() -> None:
    cfg = lora_config(128, 256, 0.05)
    assert (cfg.r, cfg.lora_alpha, cfg.lora_dropout, cfg.bias) == (128, 256, 0.05, "none")
    assert cfg.target_modules == LM_LORA_TARGET_REGEX
    with pytest.raises(ValueError):
        lora_config(0, 16, 0.0)


@pytest.mark.parametrize("train_projector", [False, True])
def test_lora_targets_and_trainable_parameters(tiny_model_dir: Path, train_projector: bool) -> None:
    from transformers import LlavaForConditionalGeneration

    model = LlavaForConditionalGeneration.from_pretrained(tiny_model_dir)
    n_layers = model.config.text_config.num_hidden_layers
    block = {p: "self_attn" if p in ("q_proj", "k_proj", "v_proj", "o_proj") else "mlp" for p in LM_PROJECTIONS}
    expected = [f"model.language_model.layers.{i}.{block[p]}.{p}" for i in range(n_layers) for p in LM_PROJECTIONS]
    assert lora_target_names(model) == expected

    peft_model = apply_lora(model, lora_config(4, 8, 0.0), train_projector=train_projector)
    assert lora_module_names(peft_model) == expected
    assert len(expected) == 7 * n_layers

    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    lora = [n for n in trainable if ".lora_A." in n or ".lora_B." in n]
    rest = sorted(set(trainable) - set(lora))
    assert len(lora) == 2 * len(expected)
    assert all(".language_model.layers." in n for n in lora)
    projector = sorted(
        f"base_model.model.model.multi_modal_projector.{k}"
        for k in ("linear_1.weight", "linear_1.bias", "linear_2.weight", "linear_2.bias")
    )
    assert rest == (projector if train_projector else [])
