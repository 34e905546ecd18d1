"""LLaVA-1.5-7B's real geometry (depth cut, random weights, hub layout) and the real Llama-2 tokenizer: widths, the
processor, LoRA placement, and the original's token ids around the image for every stage and load route."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from hadpo.models.image_tokens import PROBE, TokenizationError, chunked_ids, ensure_image_tokenization
from hadpo.models.llava15 import IMAGE_TOKENS, hub_config, hub_name

LLAMA2 = Path(__file__).resolve().parents[1] / "fixtures" / "llama2-tokenizer"
IMAGE, PAD, SPACE, NEWLINE = 32000, 32001, 29871, 13
#: What LLaVA's tokenizer_image_token gives for "USER: <image>\nIs": a "▁" on both sides of the image.
ORIGINAL_AROUND_IMAGE = [3148, 1001, 29901, SPACE, IMAGE, SPACE, NEWLINE, 3624]


def _around_image(ids: list[int]) -> list[int]:
    """The ids with the image block collapsed to one image id."""
    out: list[int] = []
    for i in ids:
        if not (i == IMAGE and out and out[-1] == IMAGE):
            out.append(i)
    return out


def test_the_real_llama2_tokenizer_gives_its_known_ids() -> None:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(LLAMA2 / "tokenizer.json"))
    assert tok.encode("Hello world!").ids == [1, 15043, 3186, 29991]
    assert tok.encode("[INST]").ids == [1, 518, 25580, 29962]
    assert tok.token_to_id("▁") == SPACE and tok.get_vocab_size() == 32000


def test_config_is_llava15_7b_with_only_the_depth_cut(llava15_dir: Path) -> None:
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(llava15_dir)
    text, vision = config.text_config, config.vision_config
    assert (text.hidden_size, text.num_attention_heads, text.intermediate_size, text.vocab_size) == (
        4096, 32, 11008, 32064)
    assert (text.rms_norm_eps, text.num_hidden_layers, text.max_position_embeddings) == (1e-5, 2, 4096)
    assert (text.rope_parameters or {}).get("rope_theta", getattr(text, "rope_theta", None)) == 10000.0
    assert (vision.hidden_size, vision.num_attention_heads, vision.intermediate_size, vision.image_size,
            vision.patch_size, vision.hidden_act, vision.num_hidden_layers) == (
        1024, 16, 4096, 336, 14, "quick_gelu", 3)
    assert (config.projector_hidden_act, config.vision_feature_layer, config.vision_feature_select_strategy) == (
        "gelu", -2, "default")
    assert (config.image_token_id, config.pad_token_id) == (IMAGE, PAD)
    assert hub_config()["text_config"].get("num_hidden_layers", 32) == 32  # the full model keeps the real depth


def test_weights_use_the_hubs_names(llava15_dir: Path) -> None:
    index = json.loads((llava15_dir / "model.safetensors.index.json").read_text())["weight_map"]
    assert "language_model.model.layers.1.self_attn.q_proj.weight" in index
    assert "vision_tower.vision_model.encoder.layers.2.mlp.fc2.weight" in index
    assert {"multi_modal_projector.linear_1.weight", "language_model.lm_head.weight"} <= set(index)
    assert hub_name("model.language_model.norm.weight") == "language_model.model.norm.weight"


def test_processor_as_llava_hf_ships_it(llava15_dir: Path) -> None:
    import numpy as np
    from PIL import Image
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(llava15_dir)
    ip = processor.image_processor
    assert ip.size == {"shortest_edge": 336} and ip.crop_size == {"height": 336, "width": 336}
    assert ip.do_center_crop and ip.do_convert_rgb
    assert list(ip.image_mean) == pytest.approx([0.48145466, 0.4578275, 0.40821073])
    assert list(ip.image_std) == pytest.approx([0.26862954, 0.26130258, 0.27577711])
    grey = Image.fromarray(np.full((200, 500), 128, dtype=np.uint8), mode="L")  # converted to RGB, cropped square
    out = processor(images=[grey], text=["USER: <image>\nIs there a dog? ASSISTANT:"], return_tensors="pt")
    assert tuple(out["pixel_values"].shape) == (1, 3, 336, 336)
    assert int((out["input_ids"] == IMAGE).sum()) == IMAGE_TOKENS


@pytest.fixture(scope="module")
def loaded(llava15_dir: Path) -> Any:
    from hadpo.models.loading import load_model
    from hadpo.specs import ModelSpec

    return load_model(ModelSpec(model=str(llava15_dir), dtype="bfloat16", device="cpu"))


def test_loaded_the_kits_way_lora_goes_on_the_language_model_only(loaded: Any) -> None:
    from hadpo.models.lora import lora_target_names

    assert loaded.image_tokens_per_image == IMAGE_TOKENS and loaded.info["tokenizer"] == "kept"
    names = lora_target_names(loaded.model)
    assert len(names) == 2 * 7 and all(".language_model." in n for n in names)


def test_training_pope_and_shr_prompts_carry_the_originals_ids(loaded: Any) -> None:
    """The three ways the kit tokenises a prompt around the image give the ids LLaVA was trained on."""
    from hadpo.data.encode import Encoder
    from hadpo.eval.pope.infer import PopeAnswerer
    from hadpo.models.prompts import DESCRIBE_INSTRUCTION, get_template

    encoder = Encoder(loaded.processor, "vicuna_v1")
    prompt, answer = encoder.split_answer("Is there a dog in the image?", "No, there is no dog in the image.")
    assert _subsequence(_around_image(list(prompt)), 3148, 8) == ORIGINAL_AROUND_IMAGE
    assert list(answer[-1:]) == [2]
    answerer = PopeAnswerer(loaded, template="llava_v1")
    text = answerer.prompt("Is there a dog in the image?").replace("<image>", "<image>" * IMAGE_TOKENS)
    pope_ids = list(loaded.tokenizer(text).input_ids)
    assert _subsequence(_around_image(pope_ids), 3148, 8) == ORIGINAL_AROUND_IMAGE
    shr = get_template("llava_v1").prompt(DESCRIBE_INSTRUCTION)
    shr_ids = list(loaded.processor(text=[shr], images=[_image()], return_tensors="np")["input_ids"][0])
    block = _around_image(shr_ids)
    at = block.index(IMAGE)
    assert block[at - 1 : at + 3] == [SPACE, IMAGE, SPACE, NEWLINE]


def _subsequence(ids: list[int], first: int, length: int) -> list[int]:
    at = ids.index(first)
    return ids[at : at + length]


def _image() -> Any:
    from PIL import Image

    return Image.new("RGB", (336, 336), (120, 110, 100))


def _variant(llava15_dir: Path, folder: Path, legacy: bool | None, *, with_config: bool) -> Path:
    """A folder with the model's tokenizer files, ``legacy`` set (or absent), with or without config.json."""
    folder.mkdir()
    for name in ("tokenizer.json", "special_tokens_map.json", "added_tokens.json", "preprocessor_config.json",
                 "processor_config.json", *(["config.json"] if with_config else [])):
        shutil.copy(llava15_dir / name, folder / name)
    config = json.loads((llava15_dir / "tokenizer_config.json").read_text())
    config.pop("legacy", None)
    if legacy is not None:
        config["legacy"] = legacy
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize("legacy", [True, False, None], ids=["legacy-true", "legacy-false", "legacy-absent"])
def test_both_load_routes_end_with_the_originals_ids(llava15_dir: Path, tmp_path: Path, legacy: bool | None) -> None:
    """The kit's route (AutoProcessor over a folder with config.json) keeps tokenizer.json and is right as it
    is; a LlamaTokenizer loaded on its own rebuilds its pre-tokeniser from `legacy` and, unless legacy is true,
    drops the "▁" after the image: the kit's check then reloads the stored tokenizer. Both end right."""
    from transformers import AutoProcessor, AutoTokenizer

    kit = AutoProcessor.from_pretrained(_variant(llava15_dir, tmp_path / "kit", legacy, with_config=True))
    assert ensure_image_tokenization(kit, IMAGE, IMAGE_TOKENS, tmp_path / "kit") == "kept"
    alone = _variant(llava15_dir, tmp_path / "alone", legacy, with_config=False)
    processor = AutoProcessor.from_pretrained(tmp_path / "kit")
    processor.tokenizer = AutoTokenizer.from_pretrained(alone)
    text = PROBE.format(image="<image>")
    shifted = list(processor.tokenizer(text).input_ids)
    assert _around_image(shifted)[:8] != [1, *ORIGINAL_AROUND_IMAGE[:7]] or legacy is True
    outcome = ensure_image_tokenization(processor, IMAGE, IMAGE_TOKENS, alone)
    assert outcome == ("kept" if legacy else "reloaded")
    ids = list(processor.tokenizer(text).input_ids)
    assert _subsequence(ids, 3148, 8) == ORIGINAL_AROUND_IMAGE
    assert ids == chunked_ids(processor.tokenizer, text, "<image>", IMAGE)


def test_a_tokenizer_that_cannot_be_corrected_is_refused(llava15_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoProcessor, AutoTokenizer

    processor = AutoProcessor.from_pretrained(llava15_dir)
    processor.tokenizer = AutoTokenizer.from_pretrained(
        _variant(llava15_dir, tmp_path / "alone", False, with_config=False))
    with pytest.raises(TokenizationError, match=r"gives \[1001, 29901, 29871, 32000, 32000, 13, 3624, 727\].*"
                                                r"LLaVA sees \[1001, 29901, 29871, 32000, 32000, 29871, 13, 3624\]"):
        ensure_image_tokenization(processor, IMAGE, IMAGE_TOKENS, None)


def test_answer_whitespace_is_supervised_as_the_original_does(llava15_dir: Path) -> None:
    """The original renders 'ASSISTANT: ' + answer + '</s>' with the answer as written: a trailing space and
    newline are supervised tokens; `strip` (a documented switch) drops them."""
    from transformers import AutoProcessor

    from hadpo.data.encode import Encoder

    processor = AutoProcessor.from_pretrained(llava15_dir)
    answer = "There is a dog on the left. \n"
    _, kept = Encoder(processor, "vicuna_v1").split_answer("Describe this image.", answer)
    _, stripped = Encoder(processor, "vicuna_v1", answer_whitespace="strip").split_answer("Describe this image.",
                                                                                        answer)
    assert kept[: len(stripped) - 1] == stripped[:-1]
    extra = kept[len(stripped) - 1 : -1]
    assert 1 <= len(extra) <= 2 and processor.tokenizer.decode(list(extra)).strip() == ""
    assert kept[-1] == stripped[-1] == 2
