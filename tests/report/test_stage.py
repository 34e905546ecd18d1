"""Dashboard: one call per part on fake result folders; PNGs and summary.json written; missing files located."""

from __future__ import annotations

import json
import re
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


def _cells(html: str, tag: str) -> list[list[str]]:
    rows = re.findall(r"<tr>(.*?)</tr>", html, flags=re.S)
    pattern = rf"<{tag}[^>]*>(.*?)</{tag}>"
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(pattern, row, flags=re.S)] for row in rows]


def header_cells(html: str) -> list[str]:
    """The column headers of the first table in ``html``, as displayed."""
    return next(r for r in _cells(html, "th") if r)


def body_cells(html: str) -> list[list[str]]:
    """The data rows of the tables in ``html``, each as its displayed cell texts."""
    return [r for r in _cells(html, "td") if r]


def write_shr_images(data_root: Path, image_ids: list[str]) -> Path:
    """``<data_root>/shr/val_images_final.json`` embedding VG records of small PNG images, and the images."""
    from PIL import Image

    entries = []
    for image_id in image_ids:
        path = data_root / "VG" / "VG_100K" / f"{image_id}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (48, 32), (200, 30, 30)).save(path)
        entries.append({"image_id": int(image_id), "image": {"image_id": int(image_id), "width": 48, "height": 32,
                                                             "url": f"https://x.invalid/VG_100K/{image_id}.png"}})
    (data_root / "shr").mkdir(parents=True, exist_ok=True)
    (data_root / "shr" / "val_images_final.json").write_text(json.dumps(entries))
    return data_root


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
    frame = dashboard.pope_table(cfg).frame
    assert frame["Set"].tolist() == ["Random"] * 3 + ["Popular"] * 3 + ["Adversarial"] * 3 + ["Mean of sets"] * 3
    # Every set holds the same answers: F1 2/3 → 3/4, so the mean F1 is the same.
    assert frame["F1 Score"].tolist() == [66.67, 75.0, 8.33] * 4
    assert frame.equals(dashboard.pope_table(cfg).frame)  # seeded: same intervals every call


def test_pope_table_displays_as_html_in_percent_without_an_index(dashboard_params: Make) -> None:
    shown = dashboard.pope_table(dashboard.DashboardConfig.from_dict(dashboard_params()))
    html = shown._repr_html_()
    cells = body_cells(html)
    assert "<table" in html and "row_heading" not in html  # no index column
    assert cells[0][:8] == ["Random", "LLaVA-1.5", "✗", "62.50", "60.00", "75.00", "66.67", "62.50"]
    assert cells[9][3:8] == ["—", "—", "—", "66.67", "—"]  # mean-of-sets rows: F1 only, the rest "—", never NaN
    assert "All rates in %" in html and "nan" not in html.lower()


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
    shown = dashboard.shr_table(cfg, shr)
    assert isinstance(shown, HtmlFragment)
    html = shown._repr_html_()
    assert html.count("<table") == 2 and "row_heading" not in html and "hadpo-note" not in html
    headers = header_cells(html)
    assert {"SHR (%)", "Words / image", "Sentences / image", "Judged images"} <= set(headers)
    rows = body_cells(html)
    column = headers.index("SHR (%)")
    assert [r[column] for r in rows[:3]] == ["50.00", "25.00", "-25.00"]
    assert [r[headers.index("Judgement")] for r in rows[:3]] == ["complete", "complete", ""]
    # Image counts are integers, lengths per image keep their decimals.
    assert [r[headers.index("Judged images")] for r in rows[:3]] == ["2", "3", "1"]
    assert rows[0][headers.index("Sentences / image")] == "2.00"
    assert "1-gram rep. (%)" in html  # the repetition table
    assert isinstance(dashboard.shr_figure(cfg, shr), Figure)
    assert (Path(cfg.report_dir) / dashboard.SHR_FIGURE).read_bytes().startswith(PNG_MAGIC)
    html = dashboard.qualitative(cfg, shr)._repr_html_()
    assert "&lt;b&gt;blue&lt;/b&gt;" in html and "LLaVA-1.5 + HA-DPO" in html


def test_qualitative_embeds_each_image_and_marks_hallucinated_sentences(dashboard_params: Make, results_root: Path,
                                                                        fakes) -> None:
    complete_base(results_root, fakes)
    data_root = write_shr_images(results_root / "data", ["1", "2"])
    for model in ("base", "hadpo"):  # the SHR evaluator records the data root it read the images from
        metrics_file = results_root / "shr" / model / "metrics.json"
        metrics = read_json(metrics_file)
        metrics_file.write_text(json.dumps({**metrics, "protocol": {"data": {"data_root": str(data_root)}}}))
    cfg = dashboard.DashboardConfig.from_dict(dashboard_params())
    html = dashboard.qualitative(cfg)._repr_html_()
    thumbnails = re.findall(r'<img class="hadpo-thumb" src="(data:image/png;base64,[A-Za-z0-9+/=]+)"', html)
    assert len(thumbnails) == 2  # images 1 and 2, embedded: the page needs no image files
    assert "image not found" not in html
    assert '<span class="hal" title="hallucination: because">A green cross.</span>' in html
    assert "text-align: left !important" in html  # prose reads from the left in the exported page too


def test_training_curves_are_saved(dashboard_params: Make) -> None:
    cfg = dashboard.DashboardConfig.from_dict(dashboard_params())
    fig = dashboard.training_curves(cfg)
    assert isinstance(fig, Figure)
    assert (Path(cfg.report_dir) / dashboard.TRAINING_FIGURE).read_bytes().startswith(PNG_MAGIC)
    # The fixture's log has no SFT term: the total is the DPO loss, and both panels say so.
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:3] == ["DPO loss (= total loss, γ = 0)", "SFT term (chosen NLL per token, before γ)",
                          "Total loss (= DPO loss, γ = 0)"]


def test_training_curves_separate_the_dpo_loss_from_the_sft_term(dashboard_params: Make, results_root: Path) -> None:
    log = results_root / "train" / "metrics.jsonl"
    records = [{**r, "sft_loss": 0.5, "loss": r["loss"] + 2.0 * 0.5}
               for r in map(json.loads, log.read_text().splitlines())]
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    (results_root / "train" / "train_config.resolved.json").write_text(json.dumps({"gamma": 2.0, "beta": 0.1}))
    fig = dashboard.training_curves(dashboard.DashboardConfig.from_dict(dashboard_params()))
    dpo, sft, total = fig.axes[:3]
    assert dpo.get_title() == "DPO loss (total − 2 · SFT)" and total.get_title() == "Total loss (DPO + 2 · SFT)"
    assert list(dpo.get_lines()[0].get_ydata()) == pytest.approx([0.69 - 0.05 * s for s in range(1, 6)])
    assert list(total.get_lines()[0].get_ydata()) == pytest.approx([1.69 - 0.05 * s for s in range(1, 6)])
    assert list(sft.get_lines()[0].get_ydata()) == [0.5] * 5


def test_training_curves_show_each_mdpo_term_with_its_weight(dashboard_params: Make, results_root: Path) -> None:
    log = results_root / "train" / "metrics.jsonl"
    records = [{**r, "dpo_loss": r["loss"], "conditional_loss": 0.4, "anchor_loss": 0.1, "loss": r["loss"] + 0.4 + 0.02,
                "rewards/conditional_margins": 0.5} for r in map(json.loads, log.read_text().splitlines())]
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    (results_root / "train" / "train_config.resolved.json").write_text(json.dumps(
        {"gamma": 0.0, "conditional_weight": 1.0, "anchor_weight": 0.2, "beta": 0.1}))
    fig = dashboard.training_curves(dashboard.DashboardConfig.from_dict(dashboard_params()))
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:5] == ["DPO loss (logged)", "Conditional term (unweighted; weight 1)",
                          "Anchor term (unweighted; weight 0.2)", "SFT term (chosen NLL per token, before γ)",
                          "Total loss\n(DPO + 1 · conditional + 0.2 · anchor)"]
    assert [t.get_text() for t in fig.axes[3].texts] == ["no SFT term (γ = 0)"]
    assert list(fig.axes[0].get_lines()[0].get_ydata()) == pytest.approx([0.69 - 0.05 * s for s in range(1, 6)])
    assert len(fig.axes) == 12


def test_training_throughput_is_the_median_of_the_logged_steps(dashboard_params: Make, results_root: Path) -> None:
    cfg = dashboard.DashboardConfig.from_dict(dashboard_params())
    table = dashboard.training_throughput(cfg)
    row = table.frame.iloc[0]
    assert row["Seconds / step"] == 5.0 and row["Pairs / s"] == pytest.approx(3.2)  # steps 1-5: 3..7 s, median 5
    assert row["LM tokens / s (image tokens included)"] == pytest.approx(1920.0)
    assert body_cells(table._repr_html_())[0] == ["median over 5 logged steps", "5.000", "3.2", "1,920.0"]
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
    base, adapted = table.frame.iloc[0], table.frame.iloc[1]
    assert (base["Requests"], base["Retries"], base["429s"], base["Retry-After wait (s)"]) == (40, 7, 5, 12.5)
    assert (base["5xx"], base["Malformed"], base["Re-asks"], base["Unjudged images"]) == (2, 1, 4, 1)
    assert base["Unjudged because"] == "unusable reply: 1"
    assert pd.isna(adapted["Requests"])  # a metrics file that records no judge section shows blanks, not zeros
    html = table._repr_html_()
    headers, rows = header_cells(html), body_cells(html)
    # Counts show as integers even in a column with a gap (a float column in pandas), the gap as "—".
    assert rows[0][headers.index("Requests")] == "40" and rows[1][headers.index("Requests")] == "—"
    assert rows[0][headers.index("Retry-After wait (s)")] == "12.5"


def test_summary_feeds_the_index(dashboard_params: Make, results_root: Path, fakes) -> None:
    complete_base(results_root, fakes)
    cfg = dashboard.DashboardConfig.from_dict(dashboard_params())
    result = dashboard.summary(cfg)
    saved = read_json(Path(cfg.report_dir) / "summary.json")
    assert saved["headline"] == result["headline"] == {
        "POPE mean F1 over 3 set(s)": "66.67 → 75.00 (+8.33)",
        "SHR (%)": "50.00 → 25.00 (-25.00)",
        "final reward accuracy (%)": "100.0 at step 5",
    }
    assert saved["pope"]["random"]["mcnemar"] == {"b": 1, "c": 2, "n": 8, "p_value": 1.0}
    assert saved["config"]["run_name"] == "unit" and saved["notes"] == []
    (Path(cfg.report_dir) / "08_dashboard.html").write_text("<html></html>")
    index = write_index(Path(cfg.report_dir).parent).read_text()
    assert "66.67 → 75.00 (+8.33)" in index and "unit/08_dashboard.html" in index


def test_headline_shows_the_summary_as_a_table_and_writes_it(dashboard_params: Make, results_root: Path,
                                                            fakes) -> None:
    complete_base(results_root, fakes)
    cfg = dashboard.DashboardConfig.from_dict(dashboard_params())
    html = dashboard.headline(cfg)._repr_html_()
    assert "<table" in html and "'headline'" not in html and "environment" not in html  # a table, not the dict
    rows = body_cells(html)
    assert rows[0][:5] == ["POPE F1, mean of 3 set(s) (%)", "higher", "66.67", "75.00", "8.33"]
    assert rows[1][:5] == ["SHR (%)", "lower", "50.00", "25.00", "-25.00"]
    assert "Note" not in header_cells(html)  # an empty column is left out
    assert "5 optimiser steps logged; reward accuracy at the last step 100.0 %" in html
    assert read_json(Path(cfg.report_dir) / "summary.json")["headline"]["SHR (%)"] == "50.00 → 25.00 (-25.00)"


def test_headline_reports_no_shr_from_an_incomplete_judgement(dashboard_params: Make) -> None:
    cfg = dashboard.DashboardConfig.from_dict(dashboard_params(train_dir=None))
    html = dashboard.headline(cfg)._repr_html_()
    shr = body_cells(html)[1]
    assert shr[0] == "SHR (%)" and shr[2:5] == ["—", "—", "—"] and shr[-1] == "not reported: judgement incomplete"
    assert "no train_dir given" in html and "hadpo-note" in html


def test_no_dashboard_cell_displays_a_dict() -> None:
    """Every expression cell of notebook 05 calls a stage function that returns a table, a figure or HTML."""
    import ast
    import inspect

    import nbformat

    from hadpo.notebooks import NOTEBOOK_DIR

    nb = nbformat.read(str(NOTEBOOK_DIR / "08_dashboard.ipynb"), as_version=4)
    shown = []
    for cell in nb.cells:
        stmt = ast.parse(cell.source).body[0] if cell.cell_type == "code" else None
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            name = ast.unparse(stmt.value.func).removeprefix("stage.")
            shown.append((name, str(inspect.signature(getattr(dashboard, name)).return_annotation)))
    assert "headline" in dict(shown) and "summary" not in dict(shown)
    assert [name for name, returns in shown if "dict" in returns] == []


def test_published_reference_is_labelled() -> None:
    html = dashboard.published_reference()._repr_html_()
    assert "not measured here" in html and "89.70" in html and "36.7" in html
    assert "row_heading" not in html  # no index column
