"""Tables: POPE in the README layout with hand-worked numbers, mean-F1 rows, SHR, published reference."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from hadpo.io import read_json
from hadpo.report import stats, tables


@pytest.fixture
def comparison(tmp_path: Path, fakes: SimpleNamespace) -> stats.PopeComparison:
    labels = fakes.write_labels(tmp_path / "labels.json", fakes.LABELS)
    base = fakes.write_pope_set(tmp_path / "base", "random", labels, fakes.BASE_ANSWERS)
    adapted = fakes.write_pope_set(tmp_path / "adapted", "random", labels, fakes.ADAPTED_ANSWERS)
    return stats.compare_pope(stats.pope_outcomes(base / "answers.jsonl", labels),
                              stats.pope_outcomes(adapted / "answers.jsonl", labels), n_resamples=200, seed=0)


def test_pope_table_layout_and_hand_worked_numbers(comparison: stats.PopeComparison) -> None:
    """Base: acc 5/8 = 62.50, P 3/5 = 60.00, R 3/4 = 75.00, F1 2/3 = 66.67, yes 5/8 = 62.50.
    HA-DPO: acc 6/8 = 75.00, P 3/4 = 75.00, R 75.00, F1 75.00, yes 4/8 = 50.00. Δ = HA-DPO − base."""
    frame = tables.pope_table({"random": comparison}, model="LLaVA-1.5")
    assert list(frame.columns[:8]) == ["Set", "Model", "HA-DPO", "Accuracy", "Precision", "Recall", "F1 Score",
                                       "Yes Ratio (%)"]
    assert list(frame.columns[8:]) == ["Accuracy 95% CI", "F1 Score 95% CI", "McNemar p"]
    metrics = ["Accuracy", "Precision", "Recall", "F1 Score", "Yes Ratio (%)"]
    assert frame.loc[0, metrics].tolist() == [62.5, 60.0, 75.0, 66.67, 62.5]
    assert frame.loc[1, metrics].tolist() == [75.0, 75.0, 75.0, 75.0, 50.0]
    assert frame.loc[2, metrics].tolist() == [12.5, 15.0, 0.0, 8.33, -12.5]
    assert frame["HA-DPO"].tolist() == ["✗", "✓", "Δ"]
    assert frame["Set"].tolist() == ["Random"] * 3
    assert frame.loc[2, "McNemar p"] == "1"
    low, high = (float(x) for x in frame.loc[0, "Accuracy 95% CI"].strip("[]").split(", "))
    assert low <= 62.5 <= high


def test_pope_table_mean_f1_rows(comparison: stats.PopeComparison) -> None:
    mean = (stats.Interval(0.6, 0.5, 0.7, 0.95), stats.Interval(0.7, 0.6, 0.8, 0.95))
    frame = tables.pope_table({"random": comparison}, mean_f1=mean)
    rows = frame[frame["Set"] == tables.MEAN_F1_SET]
    assert rows["F1 Score"].tolist() == [60.0, 70.0, 10.0]
    assert rows["F1 Score 95% CI"].tolist() == ["[50.00, 70.00]", "[60.00, 80.00]", ""]
    assert math.isnan(rows["Accuracy"].iloc[0])
    small = tables.mean_f1_table(mean)
    assert small["Mean F1"].tolist() == [60.0, 70.0, 10.0]


def test_pope_table_rejects_unknown_ci_metric(comparison: stats.PopeComparison) -> None:
    with pytest.raises(ValueError, match="unknown POPE metric"):
        tables.pope_table({"random": comparison}, ci_metrics=("auc",))


def test_shr_table_from_evaluator_metrics(tmp_path: Path, fakes: SimpleNamespace) -> None:
    """Base SHR 2/4 = 50 %, HA-DPO 1/4 = 25 % (evaluator-computed), Δ −25; unjudged images 1 vs 0."""
    base = read_json(fakes.write_shr_run(tmp_path / "b", fakes.BASE_SHR) / "metrics.json")
    adapted = read_json(fakes.write_shr_run(tmp_path / "a", fakes.ADAPTED_SHR) / "metrics.json")
    frame = tables.shr_table(base, adapted, base_interval=stats.Interval(0.5, 0.3, 0.7, 0.9))
    assert frame["SHR (%)"].tolist() == [50.0, 25.0, -25.0]
    assert frame["Unjudged images"].tolist() == [1.0, 0.0, -1.0]
    assert frame["Judged images"].tolist() == [2.0, 3.0, 1.0]
    assert frame["Sentences / image"].tolist() == [2.0, 1.33, -0.67]
    assert frame["SHR 90% CI"].tolist() == ["[30.00, 70.00]", "", ""]
    assert {f"{n}-gram rep. (%)" for n in range(1, 5)} <= set(frame.columns)
    assert "SHR 95% CI" not in tables.shr_table(base, adapted).columns


def test_shr_row_of_original_metrics_without_unjudged_counts() -> None:
    original = {"run1": {"num_images": 10, "sents_per_image": 5.0, "words_per_image": 60.0,
                         "hal_sents_per_image": 1.8, "hal_words_per_image": 20.0, "hal_sents_ratio": 0.367,
                         "hal_words_ratio": 0.33},
                "gram-1-repetition": 0.9, "gram-2-repetition": 0.95, "gram-3-repetition": 0.97,
                "gram-4-repetition": 0.98, "mean_hal_ratio": 0.367}
    row = tables.shr_row(original)
    assert row["SHR (%)"] == 36.7
    assert math.isnan(row["Unjudged images"])
    with pytest.raises(ValueError, match="run1"):
        tables.shr_row({"mean_hal_ratio": 0.3})


def test_published_reference_is_labelled_and_exact() -> None:
    pope = tables.published_pope_table()
    assert (pope["Source"] == tables.PUBLISHED_LABEL).all()
    assert "not measured here" in tables.PUBLISHED_LABEL
    random_base = pope[(pope["Set"] == "Random") & (pope["HA-DPO"] == "✗")].iloc[0]
    assert random_base[["Accuracy", "Precision", "Recall", "F1 Score", "Yes Ratio (%)"]].tolist() == [
        89.60, 88.77, 90.66, 89.70, 51.06]
    assert len(pope) == 6
    shr = tables.published_shr_table()
    assert shr["SHR (%)"].tolist() == [36.7, 34.0]
    # (89.70 + 86.79 + 81.75) / 3 = 86.08; (90.25 + 87.81 + 82.54) / 3 = 86.867 → 86.87.
    assert tables.published_mean_f1() == (86.08, 86.87)
    assert isinstance(pope, pd.DataFrame)


def test_shown_formats_each_column_by_kind_without_an_index() -> None:
    # A count column with a gap is a float column in pandas: it must still read as integers.
    frame = pd.DataFrame({"Model": ["a", "b"], "Requests": [40, math.nan], "SHR (%)": [50.0, 25.0]}, index=[7, 9])
    shown = tables.shown(frame, formats={"Requests": tables.count_format(frame["Requests"].tolist()),
                                         "SHR (%)": tables.PERCENT, "Absent": "{:.1f}"})
    html = shown._repr_html_()
    assert "row_heading" not in html and ">7<" not in html  # no index column, whatever the frame's index
    assert ">40<" in html and "40.0" not in html and ">—<" in html
    assert ">50.00<" in html and ">25.00<" in html
    assert repr(shown).splitlines()[1].split() == ["a", "40", "50.00"]  # the executed notebook's text version


def test_count_format_keeps_fractions_it_cannot_round() -> None:
    assert tables.count_format([8, 8.0, math.nan, None]) == tables.COUNT
    assert tables.count_format([7.5, 8]) == "{:.2f}"  # a mean over judge runs that differ is not a count


def test_shr_and_judge_formats_show_counts_as_integers(tmp_path: Path, fakes: SimpleNamespace) -> None:
    base = read_json(fakes.write_shr_run(tmp_path / "b", fakes.BASE_SHR) / "metrics.json")
    adapted = read_json(fakes.write_shr_run(tmp_path / "a", fakes.ADAPTED_SHR) / "metrics.json")
    frame = tables.shr_table(base, adapted)
    formats = tables.shr_formats(frame)
    assert formats["Judged images"] == formats["Unjudged images"] == tables.COUNT
    assert formats["SHR (%)"] == formats["Hal. words (%)"] == formats["1-gram rep. (%)"] == tables.PERCENT
    judge = tables.judge_table({**base, "judge": {"calls": {"requests": 3, "retry_after_wait_s": 1.25}}}, adapted)
    assert tables.judge_formats(judge)["Requests"] == tables.COUNT
    assert tables.judge_formats(judge)["Retry-After wait (s)"] == tables.SECONDS
