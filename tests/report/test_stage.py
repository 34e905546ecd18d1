"""Dashboard: one call per part on fake result folders; PNGs and summary.json written; missing files located."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from matplotlib.figure import Figure

from hadpo.errors import DataError, ParamsError
from hadpo.io import read_json
from hadpo.report import stage as dashboard
from hadpo.report.html import HtmlFragment, write_index

Make = Callable[..., dict[str, Any]]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_config_checks_and_normalises(dashboard_params: Make) -> None:
    cfg = dashboard.DashboardConfig.from_dict(dashboard_params(pope_sets=["adv", "random", "adversarial"]))
    assert cfg.pope_sets == ["adversarial", "random"]
    with pytest.raises(ParamsError, match="pope_sets"):
        dashboard.DashboardConfig.from_dict(dashboard_params(pope_sets=["nope"]))
    with pytest.raises(ParamsError, match="unknown parameter"):
        dashboard.DashboardConfig.from_dict(dashboard_params(resamples=3))
    with pytest.raises(ParamsError, match="confidence"):
        dashboard.DashboardConfig.from_dict(dashboard_params(confidence=1.0))


def test_pope_table_has_every_set_and_the_headline(dashboard_params: Make) -> None:
    cfg = dashboard.DashboardConfig.from_dict(dashboard_params())
    frame = dashboard.pope_table(cfg)
    assert isinstance(frame, pd.DataFrame)
    assert frame["Set"].tolist() == ["Random"] * 3 + ["Popular"] * 3 + ["Adversarial"] * 3 + ["Mean of sets"] * 3
    # Every set holds the same answers: F1 2/3 → 3/4, so the mean F1 is the same.
    assert frame["F1 Score"].tolist() == [66.67, 75.0, 8.33] * 4
    assert frame.equals(dashboard.pope_table(cfg))  # seeded: same intervals every call


def test_pope_figure_is_saved(dashboard_params: Make) -> None:
    cfg = dashboard.DashboardConfig.from_dict(dashboard_params())
    assert isinstance(dashboard.pope_figure(cfg), Figure)
    assert (Path(cfg.report_dir) / dashboard.POPE_FIGURE).read_bytes().startswith(PNG_MAGIC)


def complete_base(results_root: Path, fakes) -> None:
    """Rewrite the base SHR run without its unjudged image: both judgements complete."""
    fakes.write_shr_run(results_root / "shr" / "base", {k: v for k, v in fakes.BASE_SHR.items() if k != "3"})


def test_shr_parts(dashboard_params: Make, results_root: Path, fakes) -> None:
    complete_base(results_root, fakes)
    cfg = dashboard.DashboardConfig.from_dict(dashboard_params())
    shr = dashboard.shr_results(cfg)
    frame = dashboard.shr_table(cfg, shr)
    assert isinstance(frame, pd.DataFrame)
    assert frame["SHR (%)"].tolist() == [50.0, 25.0, -25.0]
    assert frame["Judgement"].tolist() == ["complete", "complete", ""]
    assert isinstance(dashboard.shr_figure(cfg, shr), Figure)
    assert (Path(cfg.report_dir) / dashboard.SHR_FIGURE).read_bytes().startswith(PNG_MAGIC)
    html = dashboard.qualitative(cfg, shr)._repr_html_()
    assert "&lt;b&gt;blue&lt;/b&gt;" in html and "LLaVA-1.5 + HA-DPO" in html


def test_training_curves_are_saved(dashboard_params: Make) -> None:
    cfg = dashboard.DashboardConfig.from_dict(dashboard_params())
    assert isinstance(dashboard.training_curves(cfg), Figure)
    assert (Path(cfg.report_dir) / dashboard.TRAINING_FIGURE).read_bytes().startswith(PNG_MAGIC)


def test_training_throughput_is_the_median_of_the_logged_steps(dashboard_params: Make, results_root: Path) -> None:
    cfg = dashboard.DashboardConfig.from_dict(dashboard_params())
    table = dashboard.training_throughput(cfg)
    row = table.iloc[0]
    assert row["Seconds / step"] == 5.0 and row["Pairs / s"] == pytest.approx(3.2)  # steps 1-5: 3..7 s, median 5
    assert row["LM tokens / s (image tokens included)"] == pytest.approx(1920.0)
    assert dashboard.summary(cfg)["training"]["throughput"]["pairs_per_second"] == pytest.approx(3.2)
    old = [{k: v for k, v in r.items() if not k.startswith("perf/")}
           for r in map(json.loads, (results_root / "train" / "metrics.jsonl").read_text().splitlines())]
    (results_root / "train" / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in old))
    assert "records no speed" in str(dashboard.training_throughput(cfg))


def test_missing_optional_parts_give_notes(dashboard_params: Make, results_root: Path) -> None:
    (results_root / "shr" / "hadpo" / "judgement.json").unlink()
    cfg = dashboard.DashboardConfig.from_dict(dashboard_params(train_dir=None))
    for part in (dashboard.shr_table(cfg), dashboard.shr_figure(cfg), dashboard.qualitative(cfg)):
        assert isinstance(part, HtmlFragment)
        assert "SHR not available" in part.body and "judgement.json not found" in part.body
    curves = dashboard.training_curves(cfg)
    assert isinstance(curves, HtmlFragment) and "no train_dir given" in curves.body
    result = dashboard.summary(cfg)
    assert result["shr"] is None and result["training"] is None
    assert len(result["notes"]) == 2
    strict = cfg.replace(require_all=True)
    with pytest.raises(DataError, match=r"judgement\.json") as info:
        dashboard.shr_table(strict)
    assert info.value.file.endswith("judgement.json")


def test_missing_pope_file_names_it(dashboard_params: Make, results_root: Path) -> None:
    missing = results_root / "pope" / "hadpo" / "popular" / "answers.jsonl"
    missing.unlink()
    cfg = dashboard.DashboardConfig.from_dict(dashboard_params())
    with pytest.raises(DataError) as info:
        dashboard.pope_table(cfg)
    assert info.value.file == str(missing)


def test_stale_pope_metrics_are_refused(dashboard_params: Make, results_root: Path) -> None:
    path = results_root / "pope" / "base" / "random" / "metrics.json"
    metrics = read_json(path)
    path.write_text(json.dumps({**metrics, "TP": metrics["TP"] + 1}))
    with pytest.raises(DataError, match="stale") as info:
        dashboard.pope_results(dashboard.DashboardConfig.from_dict(dashboard_params()))
    assert info.value.field == "TP"


def test_labels_from_a_data_root_are_checked_against_the_protocol(dashboard_params: Make,
                                                                  results_root: Path) -> None:
    cfg = dashboard.DashboardConfig.from_dict(dashboard_params(pope_data_root=str(results_root / "data")))
    assert len(dashboard.pope_results(cfg).comparisons) == 3
    labels = results_root / "data" / "POPE" / "output" / "coco" / "coco_pope_random.json"
    labels.write_text(labels.read_text().replace('"yes"', '"no"', 1))
    with pytest.raises(DataError, match="SHA-256 differs") as info:
        dashboard.pope_results(cfg)
    assert info.value.file == str(labels)


def test_an_incomplete_judgement_is_flagged_and_gives_no_headline(dashboard_params: Make) -> None:
    # The fixture's base SHR left image 3 unjudged.
    cfg = dashboard.DashboardConfig.from_dict(dashboard_params())
    shown = dashboard.shr_table(cfg)
    assert isinstance(shown, HtmlFragment)
    html = shown._repr_html_()
    assert "incomplete judgement, not a result" in html and "INCOMPLETE: 1 unjudged" in html
    assert "hadpo-note" in html and "<table" in html
    summary = dashboard.summary(cfg)
    assert summary["headline"]["SHR (%)"].startswith("not reported: judgement incomplete (base: INCOMPLETE: 1")
    assert "50.00" not in summary["headline"]["SHR (%)"]
    assert summary["shr"]["base"]["complete"] is False and summary["shr"]["hadpo"]["complete"] is True
    assert any("incomplete judgement" in n for n in summary["notes"])
    dashboard.shr_figure(cfg)
    assert (Path(cfg.report_dir) / dashboard.SHR_FIGURE).is_file()


def test_judge_faults_sit_beside_shr(dashboard_params: Make, results_root: Path) -> None:
    metrics_file = results_root / "shr" / "base" / "metrics.json"
    metrics = read_json(metrics_file)
    metrics["judge"] = {"calls": {"requests": 40, "retries": 7, "rate_limited": 5, "retry_after_wait_s": 12.5,
                                  "server_errors": 2, "timeouts": 0, "connection_errors": 0, "malformed": 1,
                                  "client_errors": 0, "cache_hits": 3},
                        "reasks": 4, "unusable_replies": 4, "unjudged_images": 1,
                        "unjudged_reasons": {"unusable reply": 1}}
    metrics_file.write_text(json.dumps(metrics))
    cfg = dashboard.DashboardConfig.from_dict(dashboard_params())
    table = dashboard.judge_faults(cfg)
    base, adapted = table.iloc[0], table.iloc[1]
    assert (base["Requests"], base["Retries"], base["429s"], base["Retry-After wait (s)"]) == (40, 7, 5, 12.5)
    assert (base["5xx"], base["Malformed"], base["Re-asks"], base["Unjudged images"]) == (2, 1, 4, 1)
    assert base["Unjudged because"] == "unusable reply: 1"
    assert pd.isna(adapted["Requests"])  # a metrics file that records no judge section shows blanks, not zeros


def test_summary_feeds_the_index(dashboard_params: Make, results_root: Path, fakes) -> None:
    complete_base(results_root, fakes)
    cfg = dashboard.DashboardConfig.from_dict(dashboard_params())
    result = dashboard.summary(cfg)
    saved = read_json(Path(cfg.report_dir) / "summary.json")
    assert saved["headline"] == result["headline"] == {
        "POPE mean F1 over 3 set(s)": "66.67 → 75.00 (+8.33)",
        "SHR (%)": "50.00 → 25.00 (-25.00)",
        "final reward accuracy": "1.000 at step 5",
    }
    assert saved["pope"]["random"]["mcnemar"] == {"b": 1, "c": 2, "n": 8, "p_value": 1.0}
    assert saved["config"]["run_name"] == "unit" and saved["notes"] == []
    (Path(cfg.report_dir) / "05_dashboard.html").write_text("<html></html>")
    index = write_index(Path(cfg.report_dir).parent).read_text()
    assert "66.67 → 75.00 (+8.33)" in index and "unit/05_dashboard.html" in index


def test_published_reference_is_labelled() -> None:
    html = dashboard.published_reference()._repr_html_()
    assert "not measured here" in html and "89.70" in html and "36.7" in html
