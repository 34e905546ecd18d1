"""The world's SFT objective (``shapes_sft``): its conditions weight the loss exactly as documented, and it
trains through the kit's trainer like any registered objective."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hadpo.distributed import DistContext
from hadpo.errors import ParamsError
from hadpo.io import read_jsonl
from hadpo.train.config import TrainConfig
from hadpo.world.sft import build

CPU = DistContext(rank=0, local_rank=0, world_size=1, device="cpu")


def _cfg(tmp_path: Path, model: Path, world: Path, **overrides) -> TrainConfig:
    base = dict(objective="shapes_sft", model=str(model), data_root=str(world), output_dir=str(tmp_path / "sft"),
                device="cpu", max_pairs=12, template="plain", launcher="python", deepspeed_config=None)
    return TrainConfig.from_dict({**base, **overrides})


def test_decision_token_and_description_weights(tmp_path, tiny_model_dir, mining_world) -> None:
    """The loss is sum(w * nll) / sum(w) with w = decision_token_weight on the Yes/No token of existence
    questions only (the first answer token that is not whitespace), w = description_weight on every token of a
    description, and 1 elsewhere; the unweighted NLL is logged beside it."""
    options = {"decision_token_weight": 10.0, "description_weight": 3.0, "vision_pretrain_steps": 0}
    objective = build(_cfg(tmp_path, tiny_model_dir, mining_world, objective_options=options), CPU)
    tok = objective.encoder.tokenizer
    kinds = []
    for e in objective.dataset:
        assert e.weights is not None and len(e.weights) == len(e.answer_ids)
        if set(e.weights) == {3.0}:
            kinds.append("desc")
            continue
        (index,) = [i for i, w in enumerate(e.weights) if w == 10.0]
        assert set(e.weights) == {1.0, 10.0}
        assert tok.decode([e.answer_ids[index]]).strip() in ("Yes", "No")  # the word itself, never a bare space
        kinds.append("qa")
    assert "desc" in kinds and "qa" in kinds
    batch = objective.collate(objective.dataset[:8])
    loss, metrics = objective(batch)
    from hadpo.train.logps import packed_logps

    logps = packed_logps(objective.model, batch["packed"])
    nll, mask = -logps.per_token[:, 0], logps.mask[:, 0]
    w = torch.ones_like(nll)
    for row, example in enumerate(objective.dataset[:8]):
        w[row, : len(example.weights)] = torch.tensor(example.weights)
    expected = (w * nll * mask).sum() / (w * mask).sum()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert metrics["nll"] == pytest.approx(((nll * mask).sum() / mask.sum()).item(), rel=1e-5)
    assert loss.item() != pytest.approx(metrics["nll"], rel=1e-3)


def test_options_are_checked_by_name(tmp_path, tiny_model_dir, mining_world) -> None:
    with pytest.raises(ParamsError, match=r"objective_options.*'decision_weight'"):
        build(_cfg(tmp_path, tiny_model_dir, mining_world, objective_options={"decision_weight": 3.0}), CPU)


@pytest.mark.slow
def test_trains_through_the_kit_trainer_and_freezes_the_pretrained_tower(tmp_path, tiny_model_dir,
                                                                         mining_world) -> None:
    from hadpo.models.loading import load_model
    from hadpo.specs import ModelSpec
    from hadpo.train.stage import launch_training

    cfg = _cfg(tmp_path, tiny_model_dir, mining_world, objective_options={"vision_pretrain_steps": 5},
               max_steps=3, per_device_batch_size=8, learning_rate=2e-3, max_pairs=None)
    lines: list[str] = []
    summary = launch_training(cfg, echo=lines.append)
    assert any("vision pretraining stand-in" in line for line in lines)
    after = load_model(ModelSpec(model=summary["model"], device="cpu")).model
    before = load_model(ModelSpec(model=str(tiny_model_dir), device="cpu")).model
    tower = dict(before.model.vision_tower.named_parameters())
    assert any(not torch.equal(p, tower[n]) for n, p in after.model.vision_tower.named_parameters())
    assert len(read_jsonl(Path(cfg.output_dir) / "metrics.jsonl")) == 3
