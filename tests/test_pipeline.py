"""The whole chain 00 → 05 through papermill with tiny params: every stage connects, reports are written,
and a rerun skips what is finished; a run's name chooses its run and report folders (the path planning)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from hadpo.errors import ParamsError
from hadpo.io import read_json
from hadpo.notebooks import REPO_ROOT, resolve_parameters
from hadpo.pipeline import PipelineConfig, plan, run_pipeline, stages

if TYPE_CHECKING:
    from conftest import CiRun

STAGES = ["00_world", "01_data", "02_train", "03_pope_base", "03_pope_hadpo", "04_shr_base", "04_shr_hadpo",
          "05_chair_base", "05_chair_hadpo", "06_amber_base", "06_amber_hadpo", "07_mmhal_base", "07_mmhal_hadpo",
          "08_dashboard"]


@pytest.mark.slow
def test_whole_chain_with_tiny_params(ci_run: CiRun, monkeypatch: pytest.MonkeyPatch) -> None:
    # The run itself is the session's ci_run fixture (tests/conftest.py), shared with the browser tests.
    root, cfg, index = ci_run.root, ci_run.cfg, ci_run.index
    monkeypatch.chdir(root)  # the rerun below resolves the config's relative paths as the first run did
    assert [name for _, name, _ in stages(cfg)] == STAGES

    reports = root / "reports" / "ci"
    for name in STAGES:
        assert (reports / f"{name}.ipynb").is_file() and (reports / f"{name}.html").is_file(), name
    html = index.read_text()
    assert 'href="ci/' in html
    summary = read_json(reports / "summary.json")
    assert summary["run_name"] == "ci"
    # every benchmark the pipeline ran is compared on the dashboard, each measure with its paired test
    assert {c["benchmark"] for c in summary["benchmarks"]} == {"CHAIR", "AMBER", "MMHal-Bench"} and not summary["notes"]
    assert all(c["paired_items"] == 16 for c in summary["benchmarks"] if c["benchmark"] == "CHAIR")
    assert list((reports).glob("*.png")), "the dashboard saves its figures as PNG"
    # The HA-DPO evaluation used the trained adapter, the base one did not.
    assert read_json(root / "runs/ci/pope/hadpo/random/protocol.json")["adapter"].endswith("train/adapter")
    assert read_json(root / "runs/ci/pope/base/random/protocol.json")["adapter"] is None

    lines: list[str] = []
    run_pipeline(cfg, log=lines.append)
    assert sum("skipped" in line for line in lines) == len(STAGES)


# ---- run names: the path planning, without executing a notebook ------------------------------------------------
def _executions(cfg: PipelineConfig) -> dict[str, dict[str, Any]]:
    """``{output name: every parameter it runs with}``: the stage params file, then the pipeline's overrides."""
    return {name: resolve_parameters(notebook, Path(cfg.params_dir) / f"{notebook}.yaml", overrides).to_dict()
            for notebook, name, overrides in stages(cfg)}


def _under(values: dict[str, dict[str, Any]], root: Path) -> set[str]:
    """The parameter values that are paths under ``root``."""
    return {v for params in values.values() for v in params.values()
            if isinstance(v, str) and os.path.isabs(v) and Path(v).is_relative_to(root)}


def test_a_run_name_chooses_its_run_and_report_folders() -> None:
    ci = PipelineConfig.from_yaml(REPO_ROOT / "params" / "demo-ci.yaml")
    runs, reports = Path(ci.runs_dir), Path(ci.reports_dir)
    plans = {name: _executions(ci.replace(name=name)) for name in ("first", "second")}
    for name, planned in plans.items():
        assert not _under(planned, runs / "ci"), "nothing of a renamed run stays in the params files' runs/ci/"
        assert len(_under(planned, runs / name)) >= 10  # world, base model, mining, training, POPE, SHR, dashboard
        assert planned["00_world"]["data_root"] == str(runs / name / "data")
        assert planned["01_data"]["model"] == str(runs / name / "base" / "sft" / "model")
        assert planned["02_train"]["output_dir"] == str(runs / name / "train")
        assert planned["03_pope_hadpo"]["adapter"] == planned["04_shr_hadpo"]["adapter"] == str(runs / name / "train" /
                                                                                          "adapter")
        assert planned["03_pope_hadpo"]["run_dir"] == str(runs / name / "pope" / "hadpo")
        assert planned["04_shr_base"]["run_dir"] == str(runs / name / "shr" / "base")
        dashboard = planned["08_dashboard"]
        assert dashboard["run_name"] == name and dashboard["report_dir"] == str(reports / name)
        assert dashboard["hadpo_pope_dir"] == planned["03_pope_hadpo"]["run_dir"]
        assert dashboard["train_dir"] == planned["02_train"]["output_dir"]
        chair = str(runs / name / "chair" / "hadpo")
        assert dashboard["hadpo_chair_dir"] == planned["05_chair_hadpo"]["run_dir"] == chair
        adapters = {planned[f"{nb}_hadpo"]["adapter"] for nb in ("03_pope", "06_amber", "07_mmhal")}
        assert adapters == {str(runs / name / "train" / "adapter")}
    assert not _under(plans["first"], runs / "second") and not _under(plans["second"], runs / "first")


def test_the_params_files_own_run_is_planned_exactly_as_they_say() -> None:
    """`make demo` (name demo, params/world writing runs/demo/) runs every notebook with its params file's values,
    so its stamps, results and reports stay where, and what, they were."""
    demo = PipelineConfig.from_yaml(REPO_ROOT / "params" / "demo.yaml")
    plan = _executions(demo)
    for notebook, name, _ in stages(demo):
        as_written = resolve_parameters(notebook, Path(demo.params_dir) / f"{notebook}.yaml").to_dict()
        differs = {k for k, v in plan[name].items() if as_written[k] != v}
        assert differs == ({"adapter", "run_dir"} if name.endswith("_hadpo") else set()), name
    assert plan["08_dashboard"]["report_dir"] == str(Path(demo.reports_dir) / "demo")
    assert plan["02_train"]["output_dir"] == str(Path(demo.runs_dir) / "demo" / "train")


def test_a_preset_writing_into_two_runs_cannot_be_renamed(tmp_path: Path) -> None:
    preset = tmp_path / "params" / "split"
    preset.mkdir(parents=True)
    for path in (REPO_ROOT / "params" / "world-ci").glob("*.yaml"):
        text = path.read_text()
        if path.stem == "04_shr":
            text = text.replace("runs/ci/shr/base", "runs/elsewhere/shr/base")
        (preset / path.name).write_text(text)
    cfg = PipelineConfig.from_dict({"name": "x", "params_dir": str(preset), "runs_dir": str(tmp_path / "runs")})
    with pytest.raises(ParamsError, match=r"several runs under .*runs/ci .*runs/elsewhere \(04_shr's run_dir\)"):
        stages(cfg)


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden"])
def test_a_run_name_is_one_folder_name(name: str) -> None:
    with pytest.raises(ParamsError, match="parameter 'name' must be a folder name"):
        PipelineConfig.from_dict({"name": name})


# ---- on-policy rounds: the planning ------------------------------------------------------------------------------
def _rounds_plan(**values: Any) -> tuple[PipelineConfig, dict[str, dict[str, Any]]]:
    cfg = PipelineConfig.from_yaml(REPO_ROOT / "params" / "demo-ci.yaml").replace(name="r", **values)
    return cfg, _executions(cfg)


def test_each_round_mines_from_and_trains_on_the_model_the_previous_round_trained() -> None:
    cfg, plan_ = _rounds_plan(rounds=3)
    runs = Path(cfg.runs_dir) / "r"
    base_model = str(runs / "base" / "sft" / "model")
    assert [name for _, name, _ in stages(cfg)][:5] == ["00_world", "01_data_round1", "02_train_round1",
                                                       "03_pope_base", "03_pope_hadpo_round1"]
    for k in (1, 2, 3):
        here = runs / f"round-{k}"
        mining, train = plan_[f"01_data_round{k}"], plan_[f"02_train_round{k}"]
        current = base_model if k == 1 else str(runs / f"round-{k - 1}" / "train" / "policy")
        assert mining["model"] == train["model"] == current and mining["adapter"] is None
        assert mining["run_dir"] == str(here / "mining") and train["output_dir"] == str(here / "train")
        # fresh images each round, its own data folder, and the leak check on every round's mining
        assert mining["seed"] == k - 1 and mining["exclude_leaks"] is True
        assert mining["name"] == train["data_name"] == f"tiny-llava-round-{k}" and train["extra_data"] == []
        # the next round's model is written only where a next round needs it
        assert train["save_merged"] is (k < 3)
        for notebook in ("03_pope", "04_shr", "05_chair", "06_amber", "07_mmhal"):
            evaluated = plan_[f"{notebook}_hadpo_round{k}"]
            assert evaluated["model"] == current and evaluated["adapter"] == str(here / "train" / "adapter")
            assert Path(evaluated["run_dir"]).is_relative_to(here) and evaluated["run_dir"].endswith("hadpo")
    # the base model is evaluated once, outside the rounds; the dashboard shows the last round and every round
    assert plan_["03_pope_base"]["run_dir"] == str(runs / "pope" / "base")
    assert not any(name.startswith("03_pope_base_") for name in plan_)
    dashboard = plan_["08_dashboard"]
    assert dashboard["hadpo_pope_dir"] == plan_["03_pope_hadpo_round3"]["run_dir"]
    assert dashboard["train_dir"] == plan_["02_train_round3"]["output_dir"]
    assert dashboard["rounds_file"] == str(runs / "rounds.json")


def test_rounds_from_the_base_model_and_on_all_pairs_so_far() -> None:
    cfg, plan_ = _rounds_plan(rounds=2, start_from="base", round_pairs="all")
    runs = Path(cfg.runs_dir) / "r"
    base_model = str(runs / "base" / "sft" / "model")
    round1_adapter = str(runs / "round-1" / "train" / "adapter")
    mining, train = plan_["01_data_round2"], plan_["02_train_round2"]
    # round 2 mines from the base with round 1's adapter, and trains a new LoRA on the base again
    assert (mining["model"], mining["adapter"]) == (base_model, round1_adapter)
    assert (train["model"], train["adapter"]) == (base_model, None)
    assert train["extra_data"] == ["tiny-llava-round-1"] and not plan_["02_train_round1"]["save_merged"]
    assert plan_["03_pope_hadpo_round2"]["model"] == base_model


def test_a_shared_world_keeps_the_world_and_base_evaluations_and_names_the_data_after_the_run() -> None:
    cfg, plan_ = _rounds_plan(rounds=2, world_run="ci", train_seed=7,
                              stage_params={"02_train": {"conditional_weight": 1.0}})
    runs = Path(cfg.runs_dir)
    assert plan_["00_world"]["data_root"] == str(runs / "ci" / "data")
    assert plan_["03_pope_base"]["run_dir"] == str(runs / "ci" / "pope" / "base")
    assert plan_["01_data_round1"]["model"] == str(runs / "ci" / "base" / "sft" / "model")
    # mined pairs land in the shared data root, in folders no other run name uses
    assert plan_["01_data_round2"]["name"] == "tiny-llava-r-round-2"
    assert plan_["01_data_round1"]["run_dir"] == str(runs / "r" / "round-1" / "mining")
    for k in (1, 2):
        assert plan_[f"02_train_round{k}"]["seed"] == 7 and plan_[f"02_train_round{k}"]["conditional_weight"] == 1.0
    planned = plan(cfg)
    assert planned.manifest["base"]["pope"] == str(runs / "ci" / "pope" / "base")
    assert [r["train_dir"] for r in planned.manifest["per_round"]] == [str(runs / "r" / f"round-{k}" / "train")
                                                                      for k in (1, 2)]


def test_stage_params_name_a_notebook_and_its_parameters(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match="'stage_params': '09_x' must be one of"):
        PipelineConfig.from_dict({"stage_params": {"09_x": {"a": 1}}})
    cfg = PipelineConfig.from_yaml(REPO_ROOT / "params" / "demo-ci.yaml").replace(
        stage_params={"02_train": {"no_such_key": 1}})
    with pytest.raises(ParamsError, match="no_such_key"):
        stages(cfg)


def test_presets_without_a_world_start_at_their_data_and_refuse_rounds_on_released_pairs() -> None:
    cfg = PipelineConfig.from_yaml(REPO_ROOT / "params" / "7b-rounds.yaml")
    names = [name for _, name, _ in stages(cfg)]
    assert names[:2] == ["01_data_round1", "02_train_round1"] and "00_world" not in names
    assert len([n for n in names if n.startswith("02_train_round")]) == 4
    plan_ = _executions(cfg)
    # round 2 mines from round 1's merged model, and every round trains on the folder it mined
    assert plan_["01_data_round2"]["model"] == str(Path(cfg.runs_dir) / "7b-rounds" / "round-1" / "train" / "policy")
    second = plan_["02_train_round2"]
    assert second["desc_data"] is None and second["data_name"] == "llava-v1.5-round-2"
    mdpo = _executions(PipelineConfig.from_yaml(REPO_ROOT / "params" / "7b-mdpo.yaml"))
    assert mdpo["02_train"]["conditional_weight"] == mdpo["02_train"]["anchor_weight"] == 1.0
    assert mdpo["01_data"]["source"] == "released"
    with pytest.raises(ParamsError, match="on-policy rounds mine their pairs"):
        PipelineConfig.from_dict({"rounds": 2, "data_source": "released"})


@pytest.mark.slow
def test_two_on_policy_rounds_run_and_a_rerun_resumes_at_the_round_it_reached(
        ci_run: CiRun, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two rounds on the CI world (shared with the chain above, whose reports are left alone): round 2 mines from
    and trains on round 1's merged model, on both rounds' pairs; a run stopped during round 2 resumes there."""
    monkeypatch.chdir(ci_run.root)
    cfg = ci_run.cfg.replace(name="rounds", rounds=2, world_run="ci", round_pairs="all", reports_dir="reports-rounds")
    run_pipeline(cfg, log=lambda line: None)
    runs = ci_run.root / "runs"
    manifest = read_json(runs / "rounds" / "rounds.json")
    assert manifest == plan(cfg).manifest and [r["round"] for r in manifest["per_round"]] == [1, 2]
    policy = Path(manifest["per_round"][1]["model"])
    assert policy == (runs / "rounds" / "round-1" / "train" / "policy").resolve() or policy.is_relative_to(runs)
    assert (policy / "merge.json").is_file()
    assert not (runs / "rounds" / "round-2" / "train" / "policy").exists(), "no round 3 needs round 2's model"
    described = read_json(runs / "rounds" / "round-2" / "mining" / "descriptions.protocol.json")
    assert Path(described["model"]) == policy and described["adapter"] is None
    for k in (1, 2):  # the leak check ran on every round's mining, and no evaluation image was mined
        stats = read_json(runs / "rounds" / f"round-{k}" / "mining" / "data_stats.json")
        assert stats["leaks"]["excluded"] is True and stats["leaks"]["checked"] > 0
        assert read_json(runs / "rounds" / f"round-{k}" / "mining" / "selection.json")["selected_leaks"] == 0
    trained_on = read_json(runs / "rounds" / "round-2" / "train" / "manifest.json")["data"]["files"]
    assert {Path(f).parent.name for f in trained_on} == {"tiny-llava-rounds-round-1", "tiny-llava-rounds-round-2"}
    evaluated = read_json(runs / "rounds" / "round-2" / "pope" / "hadpo" / "random" / "protocol.json")
    assert Path(evaluated["model"]) == policy and evaluated["adapter"].endswith("round-2/train/adapter")

    # Stopped during round 2's evaluations: its POPE page and everything after it never finished.
    reports = ci_run.root / "reports-rounds" / "rounds"
    names = [name for _, name, _ in stages(cfg)]
    lost = names[names.index("03_pope_hadpo_round2"):]
    for name in lost:
        (reports / f".{name}.done.json").unlink()
    lines: list[str] = []
    run_pipeline(cfg, log=lines.append)
    skipped = {name for name in names if any(line.startswith(f"[hadpo] {name}: finished earlier") for line in lines)}
    assert skipped == set(names) - set(lost)
