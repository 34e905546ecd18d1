"""hadpo compare: methods × seeds with intervals, paired differences to the reference at the same seed (worked by
hand), incomplete judgements marked, loud failures naming the file or field, and the command line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from hadpo.cli import main
from hadpo.errors import DataError, ParamsError
from hadpo.io import read_json
from hadpo.report import compare as cmp
from hadpo.report import stage as dashboard

Make = Callable[..., dict[str, Any]]


def model_folders(model: str) -> dict[str, str]:
    """Two models on the same items. A: POPE answers of conftest's base, the complete SHR judgement (conftest's
    HA-DPO one), CHAIR and MMHal-Bench below; B: conftest's HA-DPO POPE answers, the SHR judgement that left image 3
    unjudged (conftest's base), its own CHAIR and MMHal-Bench. No AMBER."""
    pope, shr = {"A": ("pope/base", "shr/hadpo"), "B": ("pope/hadpo", "shr/base")}[model]
    return {"pope": pope, "shr": shr, "chair": f"chair/{model}", "mmhal": f"mmhal/{model}"}


def manifest(first: str, second: str) -> dict[str, Any]:
    return {"name": "run", "rounds": 2, "base": model_folders("A"), "per_round": [
        {"round": 1, "train_dir": "train", "evaluations": model_folders(first)},
        {"round": 2, "train_dir": "train", "evaluations": model_folders(second)}]}


@pytest.fixture
def project(results_root: Path, fakes: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two runs (two seeds) of the same two methods: in runs/s0 round 1 is model A and round 2 model B, in runs/s1
    the other way round; results_root is the project root."""
    monkeypatch.delenv("HADPO_ROOT", raising=False)
    monkeypatch.chdir(results_root)
    (results_root / "params").mkdir()
    # CHAIR_s: A hallucinates on images 1 and 4, B on none; CHAIR_i: A 2 of 10 mentions, B 0 of 8.
    fakes.write_benchmark_run(results_root / "chair" / "A", fakes.chair_records([["x"], [], [], ["z"]]))
    fakes.write_benchmark_run(results_root / "chair" / "B", fakes.chair_records([[], [], [], []]))
    # MMHal-Bench ratings: B higher on three questions, a tie on the third; both rate question 2 below 3.
    fakes.write_benchmark_run(results_root / "mmhal" / "A", fakes.mmhal_records([3, 4, 2, 5]))
    fakes.write_benchmark_run(results_root / "mmhal" / "B", fakes.mmhal_records([4, 5, 2, 6]))
    for run, (first, second) in {"s0": ("A", "B"), "s1": ("B", "A")}.items():
        path = results_root / "runs" / run / "rounds.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(manifest(first, second)))
    return results_root


def config(**changes: Any) -> cmp.CompareConfig:
    return cmp.CompareConfig.from_dict({
        "methods": {"HA-DPO": ["runs/s0/rounds.json#1", "runs/s1/rounds.json#1"],
                    "2 rounds": ["runs/s0/rounds.json#2", "runs/s1/rounds.json#2"]},
        "reference": "HA-DPO", "out": "reports/compare", "bootstrap_resamples": 200, **changes})


def estimates(row: dict[str, Any]) -> dict[str, Any]:
    return {k: None if c["delta"] is None else round(c["delta"]["estimate"], 4) for k, c in row["cells"].items()}


def test_paired_differences_worked_by_hand(project: Path) -> None:
    result = cmp.compare(config())
    assert [(r["method"], r["seed"]) for r in result["rows"]] == [
        ("base model", None), ("HA-DPO", 0), ("HA-DPO", 1), ("2 rounds", 0), ("2 rounds", 1)]
    assert [(d["method"], d["seed"]) for d in result["deltas"]] == [("base model", 0), ("2 rounds", 0),
                                                                   ("2 rounds", 1)]
    base, seed0, seed1 = result["deltas"]
    # Seed 0, B − A. POPE adversarial precision 3/4 − 3/5, yes-ratio 4/8 − 5/8 (A says yes on q5 and q6 where B does
    # not, B on q8: McNemar 2 · P[X ≤ 1], X ~ Bin(3, 1/2) = 1), mean F1 3/4 − 2/3. SHR over the images judged in
    # both (1 and 2): B 2/4 − A 1/3. CHAIR_i 0/8 − 2/10; CHAIR_s 0 − 2/4 (McNemar, b = 2, c = 0: 2 · 1/4 = 0.5).
    # MMHal-Bench: mean rating 17/4 − 14/4 (sign test, B higher on 3, one tie: 2 · 1/8 = 0.25); hallucination
    # rate 1/4 − 1/4 (no discordant question: p = 1).
    assert estimates(seed0) == {
        "pope_adv_precision": 0.15, "pope_adv_yes_ratio": -0.125, "pope_mean_f1": 0.0833, "shr": 0.1667,
        "chair_i": -0.2, "chair_s": -0.5, "amber_chair": None, "amber_hal": None, "mmhal_score": 0.75,
        "mmhal_hal_rate": 0.0, "reward_accuracy": None}
    cells = seed0["cells"]
    assert (cells["chair_s"]["test"], cells["chair_s"]["p_value"]) == ("McNemar (exact)", 0.5)
    assert (cells["mmhal_score"]["test"], cells["mmhal_score"]["p_value"]) == ("sign test (exact)", 0.25)
    assert cells["mmhal_hal_rate"]["p_value"] == 1.0 and cells["pope_adv_yes_ratio"]["p_value"] == 1.0
    assert cells["chair_i"]["test"] == "paired bootstrap Δ" and cells["chair_i"]["p_value"] is None
    assert cells["chair_s"]["paired_items"] == 4 and cells["shr"]["paired_items"] == 2
    assert cells["amber_hal"]["state"] == "not run" and cells["reward_accuracy"]["state"] == "n/a"
    # B's SHR judgement left an image unjudged: compared over the judged ones, and marked.
    assert cells["shr"]["state"] == "incomplete" and cells["shr"]["note"] == "INCOMPLETE: method judgement"
    for cell in cells.values():
        if cell["delta"] is not None:
            assert cell["delta"]["low"] <= cell["delta"]["estimate"] <= cell["delta"]["high"]
    # Seed 1 pairs the runs' second entries: A − B, the same differences with the other sign and the same tests.
    assert estimates(seed1) == {k: None if v is None else -v + 0.0 for k, v in estimates(seed0).items()}
    assert seed1["cells"]["chair_s"]["p_value"] == 0.5 and seed1["cells"]["shr"]["note"] == (
        "INCOMPLETE: reference judgement")
    assert seed1["reference_source"].endswith("runs/s1/rounds.json#1")
    # The base model (A here) against the reference's seed 0 (A): nothing differs.
    assert {v for v in estimates(base).values() if v is not None} == {0.0}


def test_values_and_markdown_mark_an_incomplete_judgement(project: Path) -> None:
    result = cmp.compare(config())
    rows = {(r["method"], r["seed"]): r["cells"] for r in result["rows"]}
    assert rows[("HA-DPO", 0)]["chair_s"]["value"] == 0.5 and rows[("2 rounds", 0)]["mmhal_score"]["value"] == 4.25
    assert rows[("HA-DPO", 1)]["shr"]["state"] == "incomplete"
    assert rows[("HA-DPO", 1)]["shr"]["note"] == "INCOMPLETE: 1 unjudged"
    out = project / "reports" / "compare"
    assert read_json(out / cmp.JSON_FILE)["deltas"] == json.loads(json.dumps(result["deltas"]))
    text = (out / cmp.MARKDOWN_FILE).read_text()
    assert text == result["markdown"]
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("| Method | Seed | POPE"))
    assert lines[first + 1].startswith("| --- | --- |")
    shr = lines[first].split(" | ").index("SHR (%)")
    ha_dpo_seed1 = lines[first + 4].split(" | ")  # after the header, the rule, the base model and seed 0
    assert ha_dpo_seed1[:2] == ["| HA-DPO", "1"]
    assert ha_dpo_seed1[shr].startswith("50.00 [") and ha_dpo_seed1[shr].endswith("] (INCOMPLETE: 1 unjudged)")
    delta = [line for line in lines if line.startswith("| 2 rounds | 0 |")][-1]  # the Δ table's
    assert "-50.00 [" in delta and "p = 0.5" in delta and "+0.75 [" in delta and "p = 0.25" in delta
    assert "(INCOMPLETE: method judgement)" in delta
    assert any("SHR (%) INCOMPLETE: 1 unjudged: over the judged items only" in n for n in result["notes"])


def test_the_paired_intervals_are_the_dashboards(project: Path, dashboard_params: Make) -> None:
    """Base vs HA-DPO through compare gives the Δ intervals of the dashboard's benchmark table."""
    result = cmp.compare(config(methods={"A": ["runs/s0/rounds.json#1"], "B": ["runs/s0/rounds.json#2"]},
                                reference="A"))
    cfg = dashboard.DashboardConfig.from_dict(dashboard_params(
        base_chair_dir=str(project / "chair" / "A"), hadpo_chair_dir=str(project / "chair" / "B"),
        base_mmhal_dir=str(project / "mmhal" / "A"), hadpo_mmhal_dir=str(project / "mmhal" / "B")))
    by_name = {c.base.name: c for c in dashboard.benchmark_comparisons(cfg)[0]}
    cells = result["deltas"][-1]["cells"]
    for key, name in (("chair_i", "CHAIR_i (%)"), ("chair_s", "CHAIR_s (%)"), ("mmhal_score", "score (0-6)")):
        assert cells[key]["delta"] == by_name[name].delta.to_dict(), key
        assert cells[key]["p_value"] == by_name[name].p_value


def test_loud_failures_name_the_file_or_field(project: Path) -> None:
    with pytest.raises(ParamsError, match=r"'methods'\['HA-DPO'\]\[1\].*whole number"):
        config(methods={"HA-DPO": ["runs/s0/rounds.json#1", "runs/s1/rounds.json#one"]})
    with pytest.raises(ParamsError, match=r"'methods'\['HA-DPO'\]\[0\].*<path to rounds.json>#<round>"):
        config(methods={"HA-DPO": ["runs/s0/rounds.json"]})
    with pytest.raises(ParamsError, match="parameter 'reference' must be one of the methods"):
        config(reference="DPO")
    with pytest.raises(ParamsError, match=r"runs/s0/rounds.json has no round 3 \(its rounds: 0, 1, 2"):
        cmp.compare(config(methods={"HA-DPO": ["runs/s0/rounds.json#3"]}))
    with pytest.raises(DataError, match="rounds manifest not found") as info:
        cmp.compare(config(methods={"HA-DPO": ["runs/s9/rounds.json#1"]}))
    assert info.value.file == str(project / "runs" / "s9" / "rounds.json")
    data = manifest("A", "B")
    data["per_round"][1]["evaluations"]["chair"] = "chair/C"
    (project / "runs" / "s0" / "rounds.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"CHAIR evaluation folder not found \(named by .*per_round\[1\]"
                                        r"\.evaluations\.chair") as info:
        cmp.compare(config())
    assert info.value.file == str(project / "chair" / "C")
    (project / "chair" / "C").mkdir()  # a run still going: the folder, no results yet
    with pytest.raises(DataError, match="no CHAIR results yet"):
        cmp.compare(config())


def test_the_command_prints_the_markdown_and_fails_in_one_line(project: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HADPO_ERROR_LOG", str(tmp_path / "errors.log"))
    params = project / "compare.yaml"
    params.write_text(yaml.safe_dump({"methods": {"HA-DPO": ["runs/s0/rounds.json#1"],
                                                  "2 rounds": ["runs/s0/rounds.json#2"]},
                                      "reference": "HA-DPO", "out": str(project / "cmp")}))
    assert main(["compare", "-f", str(params), "-p", "bootstrap_resamples", "50"]) == 0
    printed = capsys.readouterr().out
    assert "| Method | Seed | POPE adv. precision (%)" in printed and "| 2 rounds | 0 |" in printed
    assert (project / "cmp" / cmp.MARKDOWN_FILE).is_file()
    assert main(["compare", "-f", str(params), "-y", "{methods: {HA-DPO: [runs/s0/rounds.json#7]}}"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("hadpo compare: error:") and "no round 7" in err
