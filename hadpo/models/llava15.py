"""LLaVA-1.5-7B's geometry with random weights, written in the hub's layout: the real code path without 14 GB.

:func:`write_llava15` writes a folder laid out as ``llava-hf/llava-1.5-7b-hf`` is on the hub: its ``config.json``
(with, optionally, fewer layers: every width stays real), ``generation_config.json``, weights in safetensors
shards under the hub's own (transformers 4) tensor names with ``model.safetensors.index.json``, the CLIP-336
``preprocessor_config.json``, ``processor_config.json``, and the Llama-2 tokenizer with ``<image>`` (32000) and
``<pad>`` (32001) added. The loader, the processor, the tokenizer and every stage then run on it exactly as on
the real checkpoint; only the numbers the weights produce are meaningless.

The kit's tests use 2 text and 3 vision layers (about 730 M parameters); ``benchmarks/gpu_check.py`` the full
32 / 24. The tokenizer comes from a folder (``tests/fixtures/llama2-tokenizer``, built from the MIT npm package
``llama-tokenizer-js`` by ``tools/build_llama2_tokenizer.py``): no hub access is needed.
"""

from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path
from typing import Any

from hadpo.io import atomic_write_json

#: ``config.json`` of llava-hf/llava-1.5-7b-hf (the Llama text and CLIP-L/336 widths are the classes' defaults).
HUB_CONFIG: dict[str, Any] = {
    "architectures": ["LlavaForConditionalGeneration"],
    "ignore_index": -100,
    "image_token_index": 32000,
    "model_type": "llava",
    "pad_token_id": 32001,
    "projector_hidden_act": "gelu",
    "text_config": {
        "_name_or_path": "lmsys/vicuna-7b-v1.5",
        "architectures": ["LlamaForCausalLM"],
        "max_position_embeddings": 4096,
        "model_type": "llama",
        "rms_norm_eps": 1e-05,
        "torch_dtype": "float16",
        "vocab_size": 32064,
    },
    "tie_word_embeddings": False,
    "torch_dtype": "float16",
    "vision_config": {
        "hidden_size": 1024,
        "image_size": 336,
        "intermediate_size": 4096,
        "model_type": "clip_vision_model",
        "num_attention_heads": 16,
        "num_hidden_layers": 24,
        "patch_size": 14,
        "projection_dim": 768,
        "vocab_size": 32000,
    },
    "vision_feature_layer": -2,
    "vision_feature_select_strategy": "default",
    "vocab_size": 32064,
}

#: The image preprocessing llava-hf ships (CLIP ViT-L/14-336): shortest edge to 336, centre crop, CLIP mean/std.
PREPROCESSOR_CONFIG: dict[str, Any] = {
    "crop_size": {"height": 336, "width": 336},
    "do_center_crop": True,
    "do_convert_rgb": True,
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_processor_type": "CLIPImageProcessor",
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "processor_class": "LlavaProcessor",
    "resample": 3,
    "rescale_factor": 0.00392156862745098,
    "size": {"shortest_edge": 336},
}

PROCESSOR_CONFIG: dict[str, Any] = {
    "image_token": "<image>",
    "num_additional_image_tokens": 1,
    "patch_size": 14,
    "processor_class": "LlavaProcessor",
    "vision_feature_select_strategy": "default",
}

GENERATION_CONFIG: dict[str, Any] = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 32001}

#: Tokens llava-hf adds to Llama-2's 32,000: the image placeholder and a padding token.
ADDED_TOKENS = {"<image>": 32000, "<pad>": 32001}
#: 24 × 24 patches of 14 px at 336 px, the CLS token dropped: what one image expands to.
IMAGE_TOKENS = 576

# transformers 5 names → the hub's (transformers 4) names, which the loader maps back on reading.
_HUB_NAMES = (
    (re.compile(r"^model\.language_model\."), "language_model.model."),
    (re.compile(r"^lm_head\."), "language_model.lm_head."),
    (re.compile(r"^model\.vision_tower\."), "vision_tower.vision_model."),
    (re.compile(r"^model\.multi_modal_projector\."), "multi_modal_projector."),
)
_ONES = re.compile(r"(norm|layrnorm|layer_norm\d?)\.weight$")


def hub_config(text_layers: int = 32, vision_layers: int = 24) -> dict[str, Any]:
    """``config.json`` of llava-1.5-7b-hf with only the depth changed (32 text and 24 vision layers are the real)."""
    config = copy.deepcopy(HUB_CONFIG)
    if text_layers != 32:
        config["text_config"]["num_hidden_layers"] = text_layers
    if vision_layers != 24:
        config["vision_config"]["num_hidden_layers"] = vision_layers
    return config


def hub_name(name: str) -> str:
    """The hub checkpoint's name of a transformers-5 ``LlavaForConditionalGeneration`` parameter."""
    for pattern, replacement in _HUB_NAMES:
        if pattern.match(name):
            return pattern.sub(replacement, name, count=1)
    raise ValueError(f"no hub name for parameter {name!r}")


def _tokenizer_files(tokenizer_dir: Path, out: Path) -> None:
    """Llama-2's tokenizer with ``<image>`` and ``<pad>`` appended as special tokens (ids 32000, 32001)."""
    from tokenizers import AddedToken, Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    if tokenizer.get_vocab_size(with_added_tokens=False) != 32000:
        raise ValueError(f"{tokenizer_dir}/tokenizer.json is not Llama-2's 32,000-piece vocabulary")
    tokenizer.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in ADDED_TOKENS])
    for token, expected in ADDED_TOKENS.items():
        if tokenizer.token_to_id(token) != expected:
            raise ValueError(f"{token} got id {tokenizer.token_to_id(token)}, expected {expected}")
    tokenizer.save(str(out / "tokenizer.json"))
    config = json.loads((tokenizer_dir / "tokenizer_config.json").read_text())
    added = {str(i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
                      "special": True} for t, i in ADDED_TOKENS.items()}
    config["added_tokens_decoder"] = {**config.get("added_tokens_decoder", {}), **added}
    config.update(pad_token="<pad>", padding_side="left", processor_class="LlavaProcessor",
                  model_max_length=4096)
    atomic_write_json(out / "tokenizer_config.json", config)
    special = json.loads((tokenizer_dir / "special_tokens_map.json").read_text())
    special["pad_token"] = "<pad>"
    atomic_write_json(out / "special_tokens_map.json", special)
    atomic_write_json(out / "added_tokens.json", ADDED_TOKENS)


def write_llava15(out: str | Path, tokenizer_dir: str | Path, *, text_layers: int = 32, vision_layers: int = 24,
                  dtype: str = "float16", seed: int = 0, shard_bytes: int = 2 * 1024**3,
                  device: str = "cpu") -> Path:
    """Write a random-weight LLaVA-1.5-7B (at this depth) in the hub's layout to ``out``; returns the folder.

    Weights: linear and embedding matrices drawn from N(0, 0.02²) (the config's ``initializer_range``), norm
    weights 1, biases 0, from ``seed`` (generated on ``device``: a GPU draws the full 7B in seconds).
    """
    import torch
    from safetensors.torch import save_file
    from transformers import LlavaConfig, LlavaForConditionalGeneration

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer_dir = Path(tokenizer_dir)
    config = hub_config(text_layers, vision_layers)
    with torch.device("meta"):
        model = LlavaForConditionalGeneration(LlavaConfig(**copy.deepcopy(config)))
    torch_dtype = getattr(torch, dtype)
    generator = torch.Generator(device=device).manual_seed(seed)
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, meta in model.state_dict().items():
        if name.endswith("position_ids"):
            continue  # a buffer, rebuilt by the model
        if name.endswith(".bias"):
            tensor = torch.zeros(meta.shape, dtype=torch_dtype)
        elif _ONES.search(name):
            tensor = torch.ones(meta.shape, dtype=torch_dtype)
        else:
            tensor = torch.empty(meta.shape, dtype=torch.float32, device=device)
            tensor.normal_(0.0, 0.02, generator=generator)
            tensor = tensor.to("cpu", torch_dtype)
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > shard_bytes:
            shards.append({})
            size = 0
        shards[-1][hub_name(name)] = tensor.contiguous()
        size += nbytes
    weight_map: dict[str, str] = {}
    total = 0
    for i, shard in enumerate(shards, start=1):
        file = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(out / file), metadata={"format": "pt"})
        for key, tensor in shard.items():
            weight_map[key] = file
            total += tensor.numel() * tensor.element_size()
    atomic_write_json(out / "model.safetensors.index.json",
                      {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))})
    atomic_write_json(out / "config.json", config)
    atomic_write_json(out / "generation_config.json", GENERATION_CONFIG)
    atomic_write_json(out / "preprocessor_config.json", PREPROCESSOR_CONFIG)
    atomic_write_json(out / "processor_config.json", PROCESSOR_CONFIG)
    _tokenizer_files(tokenizer_dir, out)
    return out


def parameter_count(text_layers: int = 32, vision_layers: int = 24) -> int:
    """Parameters of the model at this depth (counted on the meta device, nothing allocated)."""
    import torch
    from transformers import LlavaConfig, LlavaForConditionalGeneration

    with torch.device("meta"):
        model = LlavaForConditionalGeneration(LlavaConfig(**hub_config(text_layers, vision_layers)))
    return sum(math.prod(p.shape) for p in model.parameters())
