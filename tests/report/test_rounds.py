"""Metrics by round: a pipeline run's rounds.json read into one model per round, each measure with the dashboard's
own interval, missing folders and incomplete judgements marked, the table, the figure and summary.json."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from matplotlib.figure import Figure

from hadpo.errors import DataError
from hadpo.io import read_json
from hadpo.report import rounds
from hadpo.report import stage as dashboard
from hadpo.report.html import HtmlFragment

Make = Callable[..., dict[str, Any]]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BENCHMARKS = ("chair", "amber", "mmhal")


def write_benchmarks(root: Path, fakes: SimpleNamespace) -> None:
    """CHAIR, AMBER and MMHal-Bench for the base model and round 1 (worked values in the tests below)."""
    fakes.write_benchmark_run(root / "chair" / "base", fakes.chair_records([["x"], ["x", "y"], [], ["z"]]))
    fakes.write_benchmark_run(root / "chair" / "hadpo", fakes.chair_records([[], ["x"], [], []]))
    fakes.write_benchmark_run(root / "amber" / "base", fakes.amber_records([1, 2, 0, 0]))
    fakes.write_benchmark_run(root / "amber" / "hadpo", fakes.amber_records([0, 1, 0, 0]))
    fakes.write_benchmark_run(root / "mmhal" / "base", fakes.mmhal_records([1, 4, 2, 5]))
    fakes.write_benchmark_run(root / "mmhal" / "hadpo", fakes.mmhal_records([3, 4, 4, 5]))


def manifest_data(**round_two: Any) -> dict[str, Any]:
    """A two-round manifest with relative paths (as a pipeline run under the project root writes them); round 2 is
    still running: its POPE and SHR folders do not exist yet and the benchmarks are not in it."""
    evaluations = {"pope": "pope/hadpo", "shr": "shr/hadpo", **{k: f"{k}/hadpo" for k in BENCHMARKS}}
    return {
        "name": "unit-rounds", "rounds": 2, "start_from": "previous", "round_pairs": "new",
        "base": {"pope": "pope/base", "shr": "shr/base", **{k: f"{k}/base" for k in BENCHMARKS}},
        "per_round": [
            {"round": 2, "train_dir": "round-2/train", "evaluations": {"pope": "round-2/pope/hadpo",
                                                                       "shr": "round-2/shr/hadpo"}, **round_two},
            {"round": 1, "mining_dir": "round-1/mining", "train_dir": "train", "evaluations": evaluations},
        ],
    }


@pytest.fixture
def rounds_file(results_root: Path, fakes: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``<results_root>/runs/unit-rounds/rounds.json`` over the fixture's folders; results_root is the project root."""
    monkeypatch.delenv("HADPO_ROOT", raising=False)
    (results_root / "params").mkdir()
    write_benchmarks(results_root, fakes)
    path = results_root / "runs" / "unit-rounds" / "rounds.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(manifest_data()))
    return path


def test_the_manifest_gives_round_zero_then_every_round_with_paths_from_the_project_root(rounds_file: Path,
                                                                                        results_root: Path) -> None:
    manifest = rounds.read_manifest(rounds_file)
    assert manifest.name == "unit-rounds" and manifest.rounds == [0, 1, 2]  # sorted, the base model first
    base, first, second = manifest.models
    assert base.label == "base" and base.folders["pope"] == str(results_root / "pope" / "base")
    assert first.train_dir == str(results_root / "train") and second.folders.keys() == {"pope", "shr"}
    assert first.source == f"{rounds_file}#1" and manifest.model(3) is None
    assert "per_round[0].evaluations.pope" in second.where("pope")


@pytest.mark.parametrize(("change", "field"), [
    ({"round": 0}, "per_round[0].round"),
    ({"round": "2"}, "per_round[0].round"),
    ({"round": 1}, "per_round[1].round"),  # listed twice
    ({"evaluations": ["pope"]}, "per_round[0].evaluations"),
    ({"evaluations": {"pope": 3}}, "per_round[0].evaluations.pope"),
    ({"train_dir": 5}, "per_round[0].train_dir"),
])
def test_a_malformed_manifest_names_the_field(rounds_file: Path, change: dict[str, Any], field: str) -> None:
    rounds_file.write_text(json.dumps(manifest_data(**change)))
    with pytest.raises(DataError) as info:
        rounds.read_manifest(rounds_file)
    assert info.value.field == field and info.value.file == str(rounds_file)
    rounds_file.unlink()
    with pytest.raises(DataError, match="rounds manifest not found"):
        rounds.read_manifest(rounds_file)


def by_round(path: Path) -> rounds.RoundsResults:
    return rounds.by_round(path, n_resamples=200, seed=0)


def test_each_round_is_measured_by_hand_and_missing_results_are_never_numbers(rounds_file: Path) -> None:
    results = by_round(rounds_file)
    (_, cells0), (_, cells1), (_, cells2) = results.rows
    assert [m.round for m, _ in results.rows] == [0, 1, 2]

    def values(cells: dict[str, rounds.Cell]) -> dict[str, float | None]:
        return {k: None if c.value is None else round(c.value, 4) for k, c in cells.items()}

    # POPE adversarial: precision 3/5 → 3/4, yes-ratio 5/8 → 4/8, mean F1 2/3 → 3/4 (conftest); CHAIR_i 4/12 → 1/9,
    # CHAIR_s 3/4 → 1/4; AMBER CHAIR 3/16 → 1/16, Hal 2/4 → 1/4; MMHal-Bench mean rating 3 → 4, rated below 3
    # 2/4 → 0/4; SHR (images judged in every run) 2/4 → 1/4; the last step's reward accuracy 1.0.
    assert values(cells0) == {
        "pope_adv_precision": 0.6, "pope_adv_yes_ratio": 0.625, "pope_mean_f1": 0.6667, "shr": 0.5,
        "chair_i": 0.3333, "chair_s": 0.75, "amber_chair": 0.1875, "amber_hal": 0.5, "mmhal_score": 3.0,
        "mmhal_hal_rate": 0.5, "reward_accuracy": None}
    assert values(cells1) == {
        "pope_adv_precision": 0.75, "pope_adv_yes_ratio": 0.5, "pope_mean_f1": 0.75, "shr": 0.25, "chair_i": 0.1111,
        "chair_s": 0.25, "amber_chair": 0.0625, "amber_hal": 0.25, "mmhal_score": 4.0, "mmhal_hal_rate": 0.0,
        "reward_accuracy": 1.0}
    assert all(c.interval is not None and c.interval.low <= c.value <= c.interval.high
               for c in cells1.values() if c.value is not None and c.interval is not None)
    assert cells0["reward_accuracy"].state == rounds.NOT_APPLICABLE
    # Round 2 is still running: its folders are missing, the benchmarks not in it; no cell holds a number.
    assert {k: c.state for k, c in cells2.items()} == {
        **dict.fromkeys(["pope_adv_precision", "pope_adv_yes_ratio", "pope_mean_f1", "shr", "reward_accuracy"],
                        rounds.MISSING),
        **dict.fromkeys(["chair_i", "chair_s", "amber_chair", "amber_hal", "mmhal_score", "mmhal_hal_rate"],
                        rounds.NOT_RUN)}
    assert all(c.value is None for c in cells2.values())
    frame = rounds.table_frame(results)
    row = frame.iloc[2]
    assert row["POPE adv. precision (%)"] == "missing" and row["CHAIR_i (%)"] == "not run"
    assert not any(re.search(r"\d", str(v)) for k, v in row.items() if k not in ("Round", "Model"))
    assert frame.iloc[1]["MMHal-Bench score (0-6)"].startswith("4.00 [")  # on its own scale, not ×100
    assert frame.iloc[1]["Reward accuracy, last step (%)"] == "100.00 (step 5)"
    assert frame.iloc[0]["Reward accuracy, last step (%)"] == "—"
    notes = results.notes()
    assert any(n.startswith("round 2, POPE: POPE evaluation folder not found") and "round-2" in n for n in notes)


def test_an_incomplete_judgement_is_marked_never_a_result(rounds_file: Path, results_root: Path,
                                                          fakes: SimpleNamespace) -> None:
    # The fixture's base SHR left image 3 unjudged; an MMHal-Bench run that left question 1 unjudged.
    fakes.write_benchmark_run(results_root / "mmhal" / "hadpo", fakes.mmhal_records([3, None, 4, 5]), complete=False)
    results = by_round(rounds_file)
    cells0, cells1 = results.rows[0][1], results.rows[1][1]
    assert cells0["shr"].state == rounds.INCOMPLETE and cells0["shr"].note == "INCOMPLETE: 1 unjudged"
    assert cells1["mmhal_score"].state == rounds.INCOMPLETE and cells1["mmhal_score"].value == 4.0  # judged ones
    frame = rounds.table_frame(results)
    assert frame.iloc[0]["SHR (%)"].startswith("50.00 [") and frame.iloc[0]["SHR (%)"].endswith(
        "(INCOMPLETE: 1 unjudged)")
    assert frame.iloc[1]["MMHal-Bench score (0-6)"].endswith("(INCOMPLETE: 1 unjudged)")
    assert frame.iloc[1]["SHR (%)"].startswith("25.00 [") and "INCOMPLETE" not in frame.iloc[1]["SHR (%)"]
    assert "base, SHR: INCOMPLETE: 1 unjudged" in results.notes()
    fig = rounds.figure(results)
    shr = next(ax for ax in fig.axes if ax.get_title().startswith("SHR"))
    assert [t.get_text() for t in shr.texts] == ["incomplete", "missing"]  # round 0 hollow, round 2 missing


def test_the_intervals_are_the_dashboards_own(rounds_file: Path, results_root: Path, dashboard_params: Make) -> None:
    """A single-round run's round 0 and round 1 show exactly the intervals of the dashboard's tables."""
    dirs = {f"{w}_{k}_dir": str(results_root / k / ("base" if w == "base" else "hadpo"))
            for w in ("base", "hadpo") for k in BENCHMARKS}
    cfg = dashboard.DashboardConfig.from_dict(dashboard_params(**dirs, rounds_file=str(rounds_file)))
    results = dashboard.rounds_results(cfg)
    cells0, cells1 = results.rows[0][1], results.rows[1][1]
    adversarial = dashboard.pope_results(cfg).comparisons["adversarial"]
    assert cells0["pope_adv_precision"].interval == adversarial.base_intervals["precision"]
    assert cells1["pope_adv_yes_ratio"].interval == adversarial.adapted_intervals["yes_ratio"]
    assert (cells0["pope_mean_f1"].interval, cells1["pope_mean_f1"].interval) == dashboard.pope_results(cfg).mean_f1
    shr = dashboard.shr_results(cfg)
    assert (cells0["shr"].interval, cells1["shr"].interval) == (shr.base_interval, shr.adapted_interval)
    comparisons = {(c.base.benchmark, c.base.name): c for c in dashboard.benchmark_comparisons(cfg)[0]}
    for key, benchmark, measure in (("chair_i", "CHAIR", "CHAIR_i (%)"), ("amber_hal", "AMBER", "Hal (%)"),
                                    ("mmhal_score", "MMHal-Bench", "score (0-6)")):
        c = comparisons[(benchmark, measure)]
        assert (cells0[key].interval, cells1[key].interval) == (c.base_interval, c.adapted_interval), key


def test_the_dashboard_section_table_figure_and_summary(rounds_file: Path, dashboard_params: Make) -> None:
    cfg = dashboard.DashboardConfig.from_dict(dashboard_params(rounds_file=str(rounds_file)))
    shown = dashboard.rounds_table(cfg)
    assert isinstance(shown, HtmlFragment)
    html = shown._repr_html_()
    assert html.count("<table") == 1 and "row_heading" not in html and "Round 0 is the base model" in html
    assert "Missing or incomplete" in html and "round 2, SHR: SHR evaluation folder not found" in html
    fig = dashboard.rounds_figure(cfg)
    assert isinstance(fig, Figure) and len(fig.axes) == len(rounds.COLUMNS)
    assert (Path(cfg.report_dir) / dashboard.ROUNDS_FIGURE).read_bytes().startswith(PNG_MAGIC)
    summary = dashboard.summary(cfg)
    saved = read_json(Path(cfg.report_dir) / "summary.json")["rounds"]
    assert saved == json.loads(json.dumps(summary["rounds"]))
    assert [r["round"] for r in saved["rows"]] == [0, 1, 2] and saved["name"] == "unit-rounds"
    assert saved["rows"][1]["cells"]["pope_adv_precision"]["value"] == 0.75
    assert saved["rows"][2]["cells"]["shr"] == {"state": "missing", "value": None, "interval": None,
                                                "note": saved["rows"][2]["cells"]["shr"]["note"], "items": None}
    assert any(n.startswith("metrics by round: round 2, POPE") for n in summary["notes"])
    with pytest.raises(DataError, match="require_all"):
        dashboard.rounds_table(cfg.replace(require_all=True))


def test_without_a_rounds_file_the_dashboard_is_as_before(dashboard_params: Make, results_root: Path) -> None:
    cfg = dashboard.DashboardConfig.from_dict(dashboard_params())
    assert cfg.rounds_file is None
    assert "rounds" not in dashboard.summary(cfg)
    for part in (dashboard.rounds_table(cfg), dashboard.rounds_figure(cfg)):
        assert isinstance(part, HtmlFragment) and "hadpo-note" not in part.body and "No rounds_file" in part.body
    dashboard.run(cfg)
    assert not (Path(cfg.report_dir) / dashboard.ROUNDS_FIGURE).exists()
    missing = cfg.replace(rounds_file=str(results_root / "nope" / "rounds.json"))
    assert "rounds.json not found" in dashboard.rounds_table(missing).body
    assert dashboard.summary(missing)["rounds"] is None
