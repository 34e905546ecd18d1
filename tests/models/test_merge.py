"""The merged model folder of an on-policy round: base + adapter (and its trained projector) in one folder that
loads with ``from_pretrained`` and computes what the base with the adapter computes; kept on rerun, never replaced
by another adapter's merge."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from hadpo.errors import ParamsError
from hadpo.models.loading import load_model, save_projector
from hadpo.models.merge import MERGE_RECORD, merged, write_merged
from hadpo.specs import ModelSpec
from tests.models.test_loading import _random_adapter


def _adapter(tiny_model_dir: Path, out: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    peft_model = _random_adapter(tiny_model_dir, train_projector=True)
    with torch.no_grad():  # a different adapter per seed
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.add_(seed * 0.01)
    peft_model.save_pretrained(out)
    save_projector(peft_model, out)
    return out


def _logits(spec: ModelSpec, encoder: Any, questions: list[str], images: list) -> torch.Tensor:
    loaded = load_model(spec)
    batch = encoder(loaded.processor, questions, images)
    with torch.no_grad():
        return loaded.model(**batch).logits


def test_the_merged_folder_computes_what_base_plus_adapter_computes(
    tiny_model_dir: Path, tmp_path: Path, encoder: Any, questions: list[str], images: list
) -> None:
    adapter = _adapter(tiny_model_dir, tmp_path / "adapter", seed=1)
    spec = ModelSpec(model=str(tiny_model_dir), adapter=str(adapter), device="cpu")
    out = write_merged(spec, tmp_path / "policy")
    assert (out / "config.json").is_file() and (out / MERGE_RECORD).is_file()
    assert not (tmp_path / "policy.partial").exists()
    with_adapter = _logits(spec, encoder, questions, images)
    from_folder = _logits(ModelSpec(model=str(out), device="cpu"), encoder, questions, images)
    base = _logits(ModelSpec(model=str(tiny_model_dir), device="cpu"), encoder, questions, images)
    assert torch.allclose(with_adapter, from_folder, atol=1e-5)
    assert not torch.allclose(base, from_folder, atol=1e-3), "the adapter changed nothing: the test proves nothing"


def test_a_finished_merge_is_kept_and_another_adapters_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    first = _adapter(tiny_model_dir, tmp_path / "a1", seed=1)
    spec = ModelSpec(model=str(tiny_model_dir), adapter=str(first), device="cpu")
    out = write_merged(spec, tmp_path / "policy")
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    assert merged(spec, out) and write_merged(spec, out) == out
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp  # kept, not rewritten
    second = _adapter(tiny_model_dir, tmp_path / "a2", seed=2)
    with pytest.raises(ParamsError, match="holds the merge of another adapter"):
        write_merged(spec.replace(adapter=str(second)), out)
