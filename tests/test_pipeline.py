"""The whole chain 00 → 05 through papermill with tiny params: every stage connects, reports are written,
and a rerun skips what is finished."""

from __future__ import annotations

from pathlib import Path

import pytest

from hadpo.io import read_json
from hadpo.notebooks import REPO_ROOT
from hadpo.pipeline import PipelineConfig, run_pipeline, stages

STAGES = ["00_world", "01_data", "02_train", "03_pope_base", "03_pope_hadpo", "04_shr_base", "04_shr_hadpo",
          "05_dashboard"]


@pytest.mark.slow
def test_whole_chain_with_tiny_params(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "params").symlink_to(REPO_ROOT / "params")
    monkeypatch.chdir(tmp_path)
    cfg = PipelineConfig.from_yaml("params/demo-ci.yaml")
    assert [name for _, name, _ in stages(cfg)] == STAGES
    index = run_pipeline(cfg, log=lambda line: None)

    reports = tmp_path / "reports" / "ci"
    for name in STAGES:
        assert (reports / f"{name}.ipynb").is_file() and (reports / f"{name}.html").is_file(), name
    html = index.read_text()
    assert 'href="ci/' in html
    summary = read_json(reports / "summary.json")
    assert summary["run_name"] == "ci"
    assert list((reports).glob("*.png")), "the dashboard saves its figures as PNG"
    # The HA-DPO evaluation used the trained adapter, the base one did not.
    assert read_json(tmp_path / "runs/ci/pope/hadpo/random/protocol.json")["adapter"].endswith("train/adapter")
    assert read_json(tmp_path / "runs/ci/pope/base/random/protocol.json")["adapter"] is None

    lines: list[str] = []
    run_pipeline(cfg, log=lines.append)
    assert sum("skipped" in line for line in lines) == len(STAGES)
