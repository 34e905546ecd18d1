"""Base vs HA-DPO on the per-item benchmark measures: estimates, paired tests and notes, worked by hand."""

from __future__ import annotations

import json

import pytest

from hadpo.report.benchmarks import MEASURES, Measure, compare, compare_runs, paired_test


def _measure(values, kind="mean", name="m"):
    return Measure("B", name, "lower", kind, values)


def test_binary_measures_get_mcnemar_on_the_discordant_items():
    # Items 1-8: base hallucinates on 1-6, HA-DPO on 1 and 7 → b (base only) = 5 (2..6), c (HA-DPO only) = 1 (7).
    base = _measure({str(i): (float(i <= 6), 1.0) for i in range(1, 9)})
    adapted = _measure({str(i): (float(i in (1, 7)), 1.0) for i in range(1, 9)})
    test, p = paired_test(base, adapted, sorted(base.values))
    # Two-sided exact: 2 · P[X ≤ 1], X ~ Bin(6, 1/2) = 2 · 7/64 = 0.21875.
    assert test == "McNemar (exact)" and p == pytest.approx(14 / 64)
    c = compare(base, adapted, n_resamples=200, seed=0, confidence=0.9)
    assert c.base_interval.estimate == 6 / 8 and c.adapted_interval.estimate == 2 / 8
    assert c.delta.estimate == pytest.approx(-0.5) and c.delta.low <= -0.5 <= c.delta.high and c.paired_items == 8


def test_graded_measures_get_the_sign_test_and_ratios_only_the_paired_interval():
    base = _measure({"a": (4.0, 1.0), "b": (2.0, 1.0), "c": (3.0, 1.0)})
    adapted = _measure({"a": (5.0, 1.0), "b": (5.0, 1.0), "c": (3.0, 1.0)})
    # HA-DPO higher on a and b, tie on c (dropped): 2 · P[X ≤ 0], X ~ Bin(2, 1/2) = 0.5.
    assert paired_test(base, adapted, ["a", "b", "c"]) == ("sign test (exact)", 0.5)
    ratio_base = _measure({"a": (1.0, 4.0), "b": (3.0, 4.0)}, kind="ratio")
    ratio_adapted = _measure({"a": (0.0, 2.0), "b": (1.0, 2.0)}, kind="ratio")
    c = compare(ratio_base, ratio_adapted, n_resamples=100, seed=1, confidence=0.95)
    # Ratios of sums: base (1 + 3) / 8 = 0.5, HA-DPO 1 / 4 = 0.25; no test, Δ interval instead.
    assert c.base_interval.estimate == 0.5 and c.adapted_interval.estimate == 0.25
    assert c.test == "paired bootstrap Δ" and c.p_value is None


def test_missing_or_incomplete_runs_become_notes(tmp_path):
    base, hadpo = tmp_path / "base", tmp_path / "hadpo"
    for folder, hallucinated in ((base, ["x"]), (hadpo, [])):
        folder.mkdir()
        (folder / "metrics.json").write_text(json.dumps({"complete": True}))
        (folder / "scores.jsonl").write_text(json.dumps({"image_id": "1", "words": 5, "mentions": ["y", *hallucinated],
                                                         "hallucinated": hallucinated, "truth": ["y"],
                                                         "covered": ["y"]}) + "\n")
    comparisons, notes = compare_runs({"CHAIR": (str(base), str(hadpo))}, n_resamples=10, seed=0, confidence=0.9)
    by = {c.base.name: c for c in comparisons}
    assert by["CHAIR_i (%)"].base_interval.estimate == 0.5 and by["CHAIR_i (%)"].adapted_interval.estimate == 0.0
    assert by["CHAIR_s (%)"].test == "McNemar (exact)"
    assert len(notes) == len(MEASURES) - 1 and all("no run folders configured" in n for n in notes)
    (hadpo / "metrics.json").write_text(json.dumps({"complete": False}))
    comparisons, notes = compare_runs({"CHAIR": (str(base), str(hadpo))}, n_resamples=10, seed=0, confidence=0.9)
    assert comparisons == [] and any("marked incomplete" in n for n in notes)


def test_pope_measures_give_the_evaluators_metrics_unparseable_answers_included():
    from hadpo.report.benchmarks import pope_measures
    from hadpo.report.stats import PopeOutcomes

    # Labels yes yes yes no no; answers yes, unparseable, no, yes, no: TP 1, FP 1, TN 1, a "yes" missed twice.
    outcomes = PopeOutcomes((1, 2, 3, 4, 5), ("yes", "yes", "yes", "no", "no"), ("yes", None, "no", "yes", "no"),
                            "strict", "answers.jsonl", "labels.json")
    measures = pope_measures(outcomes, "random")
    ids = [str(i) for i in outcomes.question_ids]
    expected = outcomes.metrics()
    for name in ("precision", "yes_ratio", "f1"):
        assert measures[name].estimate(ids) == pytest.approx(expected[name]), name
    assert measures["yes_ratio"].binary and measures["precision"].kind == "ratio"


def test_a_paired_mean_of_identical_parts_is_the_paired_difference_of_one():
    from hadpo.report.benchmarks import paired, paired_mean

    base = _measure({"a": (1.0, 4.0), "b": (3.0, 4.0), "c": (0.0, 2.0)}, kind="ratio")
    adapted = _measure({"a": (0.0, 4.0), "b": (1.0, 4.0), "c": (0.0, 2.0)}, kind="ratio")
    single, items, _, _ = paired(base, adapted, n_resamples=300, seed=3, confidence=0.9)
    # SHR-like: two judge runs that agree, the same image draws in both: the mean is the one run's Δ, draw for draw.
    shared, shared_items = paired_mean([base, base], [adapted, adapted], shared_draws=True, n_resamples=300, seed=3,
                                       confidence=0.9)
    assert shared == single and shared_items == items == 3
    assert single.estimate == pytest.approx(1 / 10 - 4 / 10)
    # POPE-like: two sets, each resampled on its own; the point estimate is the mean of the two Δs.
    sets, set_items = paired_mean([base, base], [adapted, base], shared_draws=False, n_resamples=300, seed=3,
                                  confidence=0.9)
    assert sets.estimate == pytest.approx((1 / 10 - 4 / 10 + 0.0) / 2) and set_items == 6
    assert sets.low <= sets.estimate <= sets.high
