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
from hadpo.pipeline import PipelineConfig, run_pipeline, stages

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
    for name, plan in plans.items():
        assert not _under(plan, runs / "ci"), "nothing of a renamed run stays in the params files' runs/ci/"
        assert len(_under(plan, runs / name)) >= 10  # world, base model, mining, training, POPE, SHR, dashboard
        assert plan["00_world"]["data_root"] == str(runs / name / "data")
        assert plan["01_data"]["model"] == str(runs / name / "base" / "sft" / "model")
        assert plan["02_train"]["output_dir"] == str(runs / name / "train")
        assert plan["03_pope_hadpo"]["adapter"] == plan["04_shr_hadpo"]["adapter"] == str(runs / name / "train" /
                                                                                          "adapter")
        assert plan["03_pope_hadpo"]["run_dir"] == str(runs / name / "pope" / "hadpo")
        assert plan["04_shr_base"]["run_dir"] == str(runs / name / "shr" / "base")
        dashboard = plan["08_dashboard"]
        assert dashboard["run_name"] == name and dashboard["report_dir"] == str(reports / name)
        assert dashboard["hadpo_pope_dir"] == plan["03_pope_hadpo"]["run_dir"]
        assert dashboard["train_dir"] == plan["02_train"]["output_dir"]
        assert dashboard["hadpo_chair_dir"] == plan["05_chair_hadpo"]["run_dir"] == str(runs / name / "chair" / "hadpo")
        assert plan["07_mmhal_hadpo"]["adapter"] == plan["06_amber_hadpo"]["adapter"] == plan["03_pope_hadpo"][
            "adapter"]
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
