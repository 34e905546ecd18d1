"""The tiny LLaVA factory: LLaVA-1.5 geometry scaled down, deterministic for the same texts and seed."""

from __future__ import annotations

from pathlib import Path

import pytest

from hadpo.errors import ParamsError
from hadpo.models.tiny import TinyLlavaConfig, build_tiny_llava

TEXTS = ["USER: <image>\nIs there a red circle? ASSISTANT: Yes, there is a red circle.", "A blue square."] * 10
SMALL = {"text_layers": 1, "vision_layers": 2, "text_hidden": 32, "text_heads": 2, "text_kv_heads": 2, "text_ffn": 64}


def _state(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def test_same_texts_and_seed_give_identical_folders(tmp_path: Path) -> None:
    cfg = TinyLlavaConfig.from_dict(SMALL)
    a = build_tiny_llava(tmp_path / "a", TEXTS, cfg)
    b = build_tiny_llava(tmp_path / "b", TEXTS, cfg)
    assert (a / "tokenizer.json").read_text() == (b / "tokenizer.json").read_text()
    sa, sb = _state(a), _state(b)
    assert sa.keys() == sb.keys()
    assert all(sa[k].equal(sb[k]) for k in sa)


def test_another_seed_gives_other_weights(tmp_path: Path) -> None:
    a = _state(build_tiny_llava(tmp_path / "a", TEXTS, TinyLlavaConfig.from_dict(SMALL)))
    b = _state(build_tiny_llava(tmp_path / "b", TEXTS, TinyLlavaConfig.from_dict({**SMALL, "seed": 1})))
    assert any(not a[k].equal(b[k]) for k in a if a[k].dtype.is_floating_point and a[k].ndim == 2)


def test_default_geometry_matches_llava_1_5_scaled_down(tiny_model_dir: Path) -> None:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tiny_model_dir)
    assert TinyLlavaConfig().image_tokens == 9
    assert config.vision_feature_layer == -2
    assert config.vision_feature_select_strategy == "default"
    assert config.projector_hidden_act == "gelu"
    assert config.image_seq_length == 9
    for name in ("tokenizer.json", "processor_config.json", "model.safetensors", "config.json"):
        assert (tiny_model_dir / name).is_file()


def test_special_tokens_and_image_token_never_split(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    ids = tok("USER: <image>\nhi")["input_ids"]
    assert ids[0] == tok.bos_token_id
    assert ids.count(tok.convert_tokens_to_ids("<image>")) == 1
    assert (tok.eos_token, tok.pad_token, tok.padding_side) == ("</s>", "<pad>", "left")


@pytest.mark.parametrize("bad", [{"image_size": 50}, {"text_heads": 4, "text_kv_heads": 3}, {"depth": 2}])
def test_bad_geometry_is_rejected(bad: dict) -> None:
    with pytest.raises(ParamsError):
        TinyLlavaConfig.from_dict(bad)
