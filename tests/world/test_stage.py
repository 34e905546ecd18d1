"""Notebook 00's package calls at a tiny size: deterministic SFT, a reloadable base model, the behaviour file."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hadpo.io import read_json
from hadpo.models.loading import load_model
from hadpo.specs import ModelSpec
from hadpo.world.config import BaseModelConfig
from hadpo.world.stage import (
    BEHAVIOUR_FILE,
    behaviour_table,
    build_untrained_model,
    build_world,
    measure_base_model,
    train_base_model,
)


def _cfg(root: Path, **overrides) -> BaseModelConfig:
    values = dict(data_root=str(root / "data"), model_dir=str(root / "base"), train_images=40, pope_images=6,
                  shr_images=4, sft_max_steps=3, sft_batch_size=8, vision_pretrain_steps=3, eval_num_beams=1,
                  eval_batch_size=16)
    return BaseModelConfig.from_dict({**values, **overrides})


@pytest.mark.slow
def test_sft_is_deterministic_and_the_model_reloads(tmp_path: Path) -> None:
    a, b = _cfg(tmp_path / "a"), _cfg(tmp_path / "b")
    for cfg in (a, b):
        build_world(cfg)
        train_base_model(cfg, echo=None)
    ma, mb = (load_model(ModelSpec(model=c.base_model, device="cpu")) for c in (a, b))
    for (name, pa), (_, pb) in zip(ma.model.named_parameters(), mb.model.named_parameters(), strict=True):
        assert torch.equal(pa, pb), name
    untrained = load_model(ModelSpec(model=build_untrained_model(a), device="cpu"))
    assert any(not torch.equal(p, dict(untrained.model.named_parameters())[n])
               for n, p in ma.model.named_parameters())
    # A rerun with the model already trained skips training.
    lines: list[str] = []
    train_base_model(a, echo=lines.append)
    assert any("skipping" in line for line in lines)


@pytest.mark.slow
def test_behaviour_is_written_for_later_notebooks(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    build_world(cfg)
    train_base_model(cfg, echo=None)
    report = measure_base_model(cfg)
    saved = read_json(Path(cfg.model_dir) / BEHAVIOUR_FILE)
    assert saved["pope_random_accuracy"] == report["pope_random_accuracy"]
    assert set(saved["pope"]) == {"random", "popular", "adversarial"}
    for key in ("pope_adversarial_yes_ratio", "hallucinated_sentence_share", "absent_object_sentence_share",
                "partner_share", "wrong_column_share", "targets"):
        assert key in saved
    assert saved["absent_object_sentences"] + saved["wrong_column_sentences"] <= saved["sentences"]
    table = behaviour_table(report)
    assert list(table.columns) == ["measure", "target", "measured", "met"] and len(table) == 8
