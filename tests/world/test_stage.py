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
    MEASURE_LABELS,
    TARGETS,
    behaviour_table,
    build_untrained_model,
    build_world,
    measure_base_model,
    model_table,
    train_base_model,
    world_table,
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
    table = behaviour_table(report).frame
    assert list(table.columns) == ["Measure", "Target (%)", "Measured (%)", "Met"] and len(table) == 8


def test_force_rebuilds_the_base_model_and_keeps_the_earlier_one(tmp_path: Path) -> None:
    from hadpo.world.stage import sft_config

    cfg = _cfg(tmp_path)
    build_world(cfg)
    untrained = Path(build_untrained_model(cfg))
    weights = {p.name: p.read_bytes() for p in untrained.iterdir() if p.is_file()}
    (Path(cfg.model_dir) / BEHAVIOUR_FILE).write_text("{}")  # the earlier run's behaviour check
    forced = cfg.replace(force=True)
    assert Path(build_untrained_model(forced)) == untrained and (untrained / "config.json").is_file()
    (replaced,) = Path(cfg.model_dir).glob("replaced-*")
    assert sorted(p.name for p in replaced.iterdir()) == sorted([BEHAVIOUR_FILE, "untrained"])
    assert {p.name: p.read_bytes() for p in (replaced / "untrained").iterdir() if p.is_file()} == weights
    # The SFT and the behaviour check redo theirs: the configs they build carry the force.
    assert sft_config(forced).rerun.force and not sft_config(cfg).rerun.force


def test_the_behaviour_table_shows_shares_in_percent_and_says_what_is_met() -> None:
    report = {key: 0.5 for key in MEASURE_LABELS}
    report["pope_random_accuracy"] = 0.9123
    report["targets"] = {key: {"met": key == "pope_random_accuracy"} for key in TARGETS}
    shown = behaviour_table(report)
    rows = shown.frame.to_dict("records")
    assert rows[0] == {"Measure": "POPE random: accuracy", "Target (%)": "≥ 85", "Measured (%)": pytest.approx(91.23),
                       "Met": "yes"}
    assert [r["Met"] for r in rows[1:4]] == ["NO"] * 3 and {r["Target (%)"] for r in rows[4:]} == {"(reported)"}
    assert ">91.2<" in shown._repr_html_()


def test_the_world_table_counts_what_was_generated() -> None:
    world = {"counts": {"images": {"train": 300, "pope": 30, "shr": 8}, "objects": 748,
                        "sft": {"desc": 300, "qa_adv": 205}},
             "pairs": [["red circle", "blue square"], ["green triangle", "yellow cross"]]}
    shown = world_table(world)
    assert shown.frame.to_dict("records") == [
        {"What": "Train images", "Count": 300}, {"What": "POPE images", "Count": 30},
        {"What": "SHR images", "Count": 8}, {"What": "Objects placed", "Count": 748},
        {"What": "SFT conversations: descriptions", "Count": 300},
        {"What": "SFT conversations: question about an absent partner", "Count": 205}]
    assert shown.caption == "Co-occurrence pairs: red circle + blue square; green triangle + yellow cross"


def test_the_model_table_counts_parameters_from_the_weight_files(tiny_model_dir: Path) -> None:
    from safetensors.torch import load_file

    expected = sum(t.numel() for path in tiny_model_dir.glob("*.safetensors") for t in load_file(str(path)).values())
    row = model_table(str(tiny_model_dir)).frame.to_dict("records")[0]
    assert row["Parameters"] == expected > 0 and row["Image tokens per image"] == 9
