"""One loader for every stage: the tiny folder reloads, adapters and projectors round-trip exactly."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import torch

from hadpo.errors import DataError, ParamsError
from hadpo.models.loading import (
    LEGACY_PROJECTOR_FILE,
    PROJECTOR_FILE,
    PROJECTOR_KEYS,
    ModelLoadError,
    count_image_tokens,
    load_model,
    load_projector_state,
    save_projector,
)
from hadpo.models.lora import LM_PROJECTIONS, apply_lora, get_projector, lora_config
from hadpo.models.tiny import TinyLlavaConfig
from hadpo.specs import ModelSpec


def _load(model: str, *, trainable: bool = False, merge: bool = False, **spec: Any) -> Any:
    """The kit's loader on a spec with these keys (adapters unmerged unless ``merge``)."""
    return load_model(ModelSpec(model=model, merge_adapter=merge, **spec), trainable=trainable)


def _logits(model: Any, batch: Any) -> torch.Tensor:
    with torch.no_grad():
        return model(**batch).logits


def test_tiny_folder_reloads_for_inference(tiny_loaded: Any, tiny_model_dir: Path) -> None:
    from transformers import LlavaForConditionalGeneration

    assert type(tiny_loaded.model) is LlavaForConditionalGeneration
    assert tiny_loaded.tokenizer is tiny_loaded.processor.tokenizer
    assert tiny_loaded.tokenizer.padding_side == "left"
    assert tiny_loaded.image_token_id == tiny_loaded.tokenizer.convert_tokens_to_ids("<image>")
    assert tiny_loaded.image_token_id == tiny_loaded.model.config.image_token_id
    assert not tiny_loaded.model.training
    assert not any(p.requires_grad for p in tiny_loaded.model.parameters())
    assert tiny_loaded.model.dtype == torch.float32
    info = tiny_loaded.info
    assert (info["base"], info["adapter"], info["projector"]) == (str(tiny_model_dir), None, None)
    assert {k: info[k] for k in ("dtype", "device", "merged", "image_tokens_per_image")} == {
        "dtype": "float32",
        "device": "cpu",
        "merged": False,
        "image_tokens_per_image": 9,
    }


def test_bfloat16_load_runs_on_cpu_without_touching_cuda(
    tiny_model_dir: Path, encoder: Any, questions: list, images: list
) -> None:
    lm = _load(str(tiny_model_dir), dtype="bfloat16", attn_implementation="eager")
    assert lm.model.dtype == torch.bfloat16
    assert lm.model.config._attn_implementation == "eager"
    logits = _logits(lm.model, encoder(lm.processor, questions[:1], images[:1]))
    assert logits.dtype == torch.bfloat16
    assert torch.isfinite(logits.float()).all()
    assert not torch.cuda.is_initialized()


def test_processor_expands_image_to_counted_tokens(
    tiny_loaded: Any, encoder: Any, questions: list, images: list
) -> None:
    n = count_image_tokens(tiny_loaded.processor)
    assert n == tiny_loaded.image_tokens_per_image == TinyLlavaConfig().image_tokens == 9
    batch = encoder(tiny_loaded.processor, questions[:2], images[:2])
    per_row = (batch["input_ids"] == tiny_loaded.image_token_id).sum(dim=1)
    assert per_row.tolist() == [n, n]
    assert tuple(batch["pixel_values"].shape) == (2, 3, 48, 48)


def test_forward_backward_and_frozen_last_vision_layer(
    tiny_model_dir: Path, encoder: Any, questions: list, images: list
) -> None:
    lm = _load(str(tiny_model_dir), trainable=True)
    model = lm.model
    assert model.training
    batch = encoder(lm.processor, questions[:2], images[:2])
    labels = batch["input_ids"].clone()
    labels[batch["attention_mask"] == 0] = -100
    labels[labels == lm.image_token_id] = -100
    loss = model(**batch, labels=labels).loss
    assert torch.isfinite(loss)
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    last = model.config.vision_config.num_hidden_layers - 1
    # vision_feature_layer = -2: the last CLIP layer and post_layernorm never reach the loss.
    unused = [n for n in grads if f"vision_tower.encoder.layers.{last}." in n or "post_layernorm" in n]
    assert unused
    assert all(grads[n] is None for n in unused)
    used = [n for n in grads if n not in unused]
    assert all(grads[n] is not None for n in used)
    assert any(grads[n].abs().sum() > 0 for n in used if "vision_tower.encoder.layers.0." in n)
    assert grads["model.multi_modal_projector.linear_1.weight"].abs().sum() > 0


def test_batched_left_padded_generate_equals_one_by_one(
    tiny_loaded: Any, encoder: Any, questions: list, images: list
) -> None:
    model, processor = tiny_loaded.model, tiny_loaded.processor
    kwargs = {"max_new_tokens": 6, "do_sample": False, "num_beams": 1}
    batch = encoder(processor, questions, images)
    assert (batch["attention_mask"][:, 0] == 0).any()  # prompts differ in length: some rows are left-padded
    with torch.no_grad():
        batched = model.generate(**batch, **kwargs)[:, batch["input_ids"].shape[1] :]
        for i, (question, image) in enumerate(zip(questions, images, strict=True)):
            single = encoder(processor, [question], [image])
            alone = model.generate(**single, **kwargs)[0, single["input_ids"].shape[1] :]
            assert batched[i, : len(alone)].tolist() == alone.tolist()


def _random_adapter(tiny_model_dir: Path, train_projector: bool) -> Any:
    """A LoRA model whose adapter (and projector) differ from the base, so round-trips are meaningful."""
    from transformers import LlavaForConditionalGeneration

    model = LlavaForConditionalGeneration.from_pretrained(tiny_model_dir)
    peft_model = apply_lora(model, lora_config(4, 8, 0.0), train_projector=train_projector)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name or (train_projector and "multi_modal_projector" in name):
                p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    return peft_model.eval()


@pytest.fixture(scope="module")
def trained(
    tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory, encoder: Any, questions: list, images: list
) -> tuple[Any, Path, Any]:
    """(in-memory LoRA + projector model, its saved adapter folder, a batch) shared by the round-trip tests."""
    from transformers import AutoProcessor

    peft_model = _random_adapter(tiny_model_dir, train_projector=True)
    out = tmp_path_factory.mktemp("adapter")
    peft_model.save_pretrained(out)
    assert save_projector(peft_model, out) == out / PROJECTOR_FILE
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    return peft_model, out, encoder(processor, questions, images)


def test_adapter_and_projector_reload_gives_identical_logits(trained: tuple, tiny_model_dir: Path) -> None:
    from peft import PeftModel

    peft_model, adapter_dir, batch = trained
    lm = _load(str(tiny_model_dir), adapter=str(adapter_dir))
    assert isinstance(lm.model, PeftModel)
    assert lm.info["projector"] == str(adapter_dir / PROJECTOR_FILE)
    assert set(lm.info["adapter_sha256"]) == {"adapter_config.json", "adapter_model.safetensors", PROJECTOR_FILE}
    assert not lm.info["original_llava_adapter"]
    expected = _logits(peft_model, batch)
    assert torch.equal(_logits(lm.model, batch), expected)
    base = _load(str(tiny_model_dir))
    assert not torch.allclose(_logits(base.model, batch), expected, atol=1e-4)


def test_projector_file_uses_the_projector_state_dict_names(trained: tuple) -> None:
    peft_model, adapter_dir, _ = trained
    state = load_projector_state(adapter_dir)
    assert tuple(state) == PROJECTOR_KEYS
    own = get_projector(peft_model).state_dict()
    assert all(torch.equal(state[k], own[k]) for k in PROJECTOR_KEYS)


def test_merge_gives_the_same_logits(trained: tuple, tiny_model_dir: Path) -> None:
    from transformers import LlavaForConditionalGeneration

    peft_model, adapter_dir, batch = trained
    lm = _load(str(tiny_model_dir), adapter=str(adapter_dir), merge=True)
    assert type(lm.model) is LlavaForConditionalGeneration
    assert lm.info["merged"]
    torch.testing.assert_close(_logits(lm.model, batch), _logits(peft_model, batch), atol=1e-5, rtol=0)


def test_trainable_adapter_trains_lora_only(trained: tuple, tiny_model_dir: Path) -> None:
    _, adapter_dir, _ = trained
    lm = _load(str(tiny_model_dir), adapter=str(adapter_dir), trainable=True)
    trainable = [n for n, p in lm.model.named_parameters() if p.requires_grad]
    assert trainable
    assert all("lora_" in n for n in trainable)
    assert lm.model.training


def test_merged_adapter_trains_as_a_new_base(trained: tuple, tiny_model_dir: Path) -> None:
    """Training from a merged adapter: a plain model (nothing trainable yet; the trainer adds a new LoRA)."""
    from transformers import LlavaForConditionalGeneration

    peft_model, adapter_dir, batch = trained
    lm = _load(str(tiny_model_dir), adapter=str(adapter_dir), merge=True, trainable=True)
    assert type(lm.model) is LlavaForConditionalGeneration and lm.info["merged"] and lm.model.training
    assert not any(p.requires_grad for p in lm.model.parameters())
    lm.model.eval()
    torch.testing.assert_close(_logits(lm.model, batch), _logits(peft_model, batch), atol=1e-5, rtol=0)


def _original_llava_adapter(adapter_dir: Path, projector: dict[str, torch.Tensor], out: Path) -> Path:
    """Rewrite a saved adapter the way HA-DPO's release stores it: original LLaVA names, .bin files."""
    from safetensors.torch import load_file

    out.mkdir()
    state = load_file(str(adapter_dir / "adapter_model.safetensors"))
    renamed = {k.replace(".model.language_model.layers.", ".model.layers."): v for k, v in state.items()}
    assert renamed.keys() != state.keys()
    torch.save(renamed, out / "adapter_model.bin")
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    config["target_modules"] = list(LM_PROJECTIONS)
    (out / "adapter_config.json").write_text(json.dumps(config))
    original = {
        f"base_model.model.model.mm_projector.{'0' if k.startswith('linear_1') else '2'}.{k.split('.')[1]}": v
        for k, v in projector.items()
    }
    torch.save(original, out / LEGACY_PROJECTOR_FILE)
    return out


def test_original_llava_adapter_and_non_lora_trainables_load(
    trained: tuple, tiny_model_dir: Path, tmp_path: Path
) -> None:
    from hadpo.models.lora import lora_module_names

    peft_model, adapter_dir, batch = trained
    legacy = _original_llava_adapter(adapter_dir, load_projector_state(adapter_dir), tmp_path / "released")
    lm = _load(str(tiny_model_dir), adapter=str(legacy))
    assert lm.info["original_llava_adapter"]
    assert lm.info["projector"] == str(legacy / LEGACY_PROJECTOR_FILE)
    assert lora_module_names(lm.model) == lora_module_names(peft_model)  # no LoRA on the CLIP tower
    assert torch.equal(_logits(lm.model, batch), _logits(peft_model, batch))


def test_non_lora_trainables_keys_map_onto_the_projector(tmp_path: Path) -> None:
    tensors = {
        "base_model.model.model.mm_projector.0.weight": torch.ones(4, 2),
        "base_model.model.model.mm_projector.0.bias": torch.zeros(4),
        "base_model.model.model.mm_projector.2.weight": torch.full((3, 4), 2.0),
        "base_model.model.model.mm_projector.2.bias": torch.zeros(3),
    }
    torch.save(tensors, tmp_path / LEGACY_PROJECTOR_FILE)
    state = load_projector_state(tmp_path / LEGACY_PROJECTOR_FILE)
    assert tuple(state) == PROJECTOR_KEYS
    assert torch.equal(state["linear_2.weight"], torch.full((3, 4), 2.0))


def test_bad_projector_files_name_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / LEGACY_PROJECTOR_FILE
    torch.save(
        {"base_model.model.model.mm_projector.0.weight": torch.ones(1), "model.embed_tokens.weight": torch.ones(1)},
        path,
    )
    with pytest.raises(DataError, match=re.escape("model.embed_tokens.weight")) as err:
        load_projector_state(path)
    assert err.value.file == str(path)
    torch.save({"mm_projector.0.weight": torch.ones(1)}, path)
    with pytest.raises(DataError, match="missing projector parameters") as err:
        load_projector_state(path)
    assert err.value.field == "linear_1.bias"
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no projector weights"):
        load_projector_state(tmp_path / "empty")


def test_projector_of_the_wrong_shape_is_rejected(tiny_model_dir: Path, tmp_path: Path) -> None:
    from hadpo.models.loading import save_projector_state

    peft_model = _random_adapter(tiny_model_dir, train_projector=False)
    peft_model.save_pretrained(tmp_path)
    save_projector_state(
        {k: torch.zeros(2, 2) if k.endswith("weight") else torch.zeros(2) for k in PROJECTOR_KEYS}, tmp_path
    )
    with pytest.raises(DataError, match=re.escape("linear_1.weight")):
        _load(str(tiny_model_dir), adapter=str(tmp_path))


def test_adapter_that_does_not_fit_is_an_error(trained: tuple, tiny_model_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    _, adapter_dir, _ = trained
    state = load_file(str(adapter_dir / "adapter_model.safetensors"))
    save_file(
        {k.replace(".layers.", ".blocks."): v for k, v in state.items()}, str(tmp_path / "adapter_model.safetensors")
    )
    (tmp_path / "adapter_config.json").write_text((adapter_dir / "adapter_config.json").read_text())
    with pytest.raises(DataError, match="does not fit"):
        _load(str(tiny_model_dir), adapter=str(tmp_path))


def test_hub_id_offline_fails_fast_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match=r"'llava-hf/no-such-model-here'.*local folder"):
        _load("llava-hf/no-such-model-here")


def test_bad_arguments_are_rejected(tiny_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match="dtype"):
        _load(str(tiny_model_dir), dtype="fp8")
    with pytest.raises(ParamsError, match="device"):
        _load(str(tiny_model_dir), device="gpu0")
    with pytest.raises(ModelLoadError, match="does not exist"):
        _load(str(tmp_path / "missing"))
    with pytest.raises(DataError, match="adapter folder not found"):
        _load(str(tiny_model_dir), adapter=str(tmp_path / "missing"))
    with pytest.raises(DataError, match=re.escape("adapter_config.json")):
        _load(str(tiny_model_dir), adapter=str(tmp_path))


def test_auto_device_resolves_to_cpu_without_a_gpu(tiny_model_dir) -> None:
    import torch

    loaded = _load(str(tiny_model_dir), device="auto")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert loaded.info["device"] == expected and next(loaded.model.parameters()).device.type == expected


def test_a_missing_model_folder_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """'models/llava' could be a hub id or a folder not made yet: the error names the folder that was tried."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HADPO_ROOT", str(tmp_path))
    with pytest.raises(ModelLoadError, match=rf"there is no folder {tmp_path}/models/llava-1\.5, and as a hub id"):
        _load("models/llava-1.5")
    with pytest.raises(ModelLoadError, match=rf"base model folder {tmp_path}/models/x/y does not exist"):
        _load("models/x/y")


def test_float16_on_the_cpu_is_refused_with_the_way_out(tiny_model_dir: Path) -> None:
    with pytest.raises(ParamsError, match=r"float16 is unusable on the CPU.*-p dtype bfloat16"):
        _load(str(tiny_model_dir), dtype="float16", device="cpu")


def test_models_load_without_hub_kernels(tiny_loaded: Any) -> None:
    """transformers kernelizes a model with layers fetched from the hub unless told not to; on a GPU box that fails
    offline and, online, runs code the kit's checks never ran."""
    assert tiny_loaded.model.use_kernels is False
