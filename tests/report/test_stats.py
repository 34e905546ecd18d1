"""Statistics: McNemar hand values, bootstrap intervals (contain the estimate, seeded), POPE and SHR agreement
with the evaluators."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from hadpo.errors import DataError
from hadpo.eval.pope.score import score_files
from hadpo.eval.shr.metrics import run_metrics
from hadpo.report import stats


def test_binomial_tail_hand_values() -> None:
    """P[X <= 2], X ~ Bin(12, 1/2) = (1 + 12 + 66) / 4096 = 79 / 4096; P[X <= 0], n = 1 is 1/2."""
    assert stats.binomial_cdf_half(2, 12) == 79 / 4096
    assert stats.binomial_cdf_half(0, 1) == 0.5
    assert stats.binomial_cdf_half(-1, 5) == 0.0
    assert stats.binomial_cdf_half(5, 5) == 1.0


def test_mcnemar_exact_hand_values() -> None:
    """b=10, c=2: p = 2 * 79/4096 = 158/4096 ≈ 0.038574; b=6, c=0: p = 2 * 1/64 = 0.03125; b=c: p = 1."""
    assert stats.mcnemar_exact(10, 2) == pytest.approx(158 / 4096, abs=1e-15)
    assert round(stats.mcnemar_exact(10, 2), 6) == 0.038574
    assert stats.mcnemar_exact(2, 10) == stats.mcnemar_exact(10, 2)
    assert stats.mcnemar_exact(6, 0) == 0.03125
    assert stats.mcnemar_exact(5, 5) == 1.0
    assert stats.mcnemar_exact(0, 0) == 1.0


def test_mcnemar_exact_large_counts_stay_finite() -> None:
    """Thousands of discordant pairs: 2**n overflows a float, the exact integer sum does not."""
    p = stats.mcnemar_exact(1500, 1400)
    assert 0.0 < p < 0.1
    assert stats.mcnemar_exact(1500, 1500) == 1.0
    with pytest.raises(ValueError):
        stats.mcnemar_exact(-1, 2)


def test_pope_outcomes_agree_with_the_evaluator(tmp_path: Path, fakes: SimpleNamespace) -> None:
    labels = fakes.write_labels(tmp_path / "labels.json", fakes.LABELS)
    folder = fakes.write_pope_set(tmp_path / "run", "random", labels, fakes.BASE_ANSWERS)
    outcomes = stats.pope_outcomes(folder / "answers.jsonl", labels)
    expected = score_files(folder / "answers.jsonl", labels)
    assert outcomes.metrics() == {k: v for k, v in expected.items() if k != "rule"}
    # Hand-worked: TP 3, FN 1, FP 2, TN 2.
    assert (expected["TP"], expected["FN"], expected["FP"], expected["TN"]) == (3, 1, 2, 2)
    assert outcomes.correct.tolist() == [True, True, True, False, False, False, True, True]


def test_pope_outcomes_limit_keeps_the_first_questions(tmp_path: Path, fakes: SimpleNamespace) -> None:
    labels = fakes.write_labels(tmp_path / "labels.json", fakes.LABELS)
    folder = fakes.write_pope_set(tmp_path / "run", "random", labels, fakes.BASE_ANSWERS)
    outcomes = stats.pope_outcomes(folder / "answers.jsonl", labels, limit=4)
    assert outcomes.question_ids == (1, 2, 3, 4)
    assert outcomes.metrics()["accuracy"] == 0.75


def test_pope_outcomes_missing_answer_names_the_id(tmp_path: Path, fakes: SimpleNamespace) -> None:
    labels = fakes.write_labels(tmp_path / "labels.json", fakes.LABELS)
    folder = fakes.write_pope_set(tmp_path / "run", "random", labels, fakes.BASE_ANSWERS)
    answers = folder / "answers.jsonl"
    answers.write_text("".join(answers.read_text().splitlines(keepends=True)[:7]))
    with pytest.raises(DataError, match="question_id 8") as info:
        stats.pope_outcomes(folder / "answers.jsonl", labels)
    assert info.value.field == "question_id"


def _outcomes(n: int, accuracy: float, seed: int) -> stats.PopeOutcomes:
    rng = random.Random(seed)
    labels = tuple(rng.choice(["yes", "no"]) for _ in range(n))
    preds = tuple(lab if rng.random() < accuracy else ("no" if lab == "yes" else "yes") for lab in labels)
    return stats.PopeOutcomes(tuple(range(n)), labels, preds, "pope", "answers.jsonl", "labels.json")


def test_bootstrap_intervals_contain_the_estimate_and_are_seeded() -> None:
    outcomes = _outcomes(300, 0.8, seed=1)
    first = stats.pope_intervals(outcomes, n_resamples=400, seed=7)
    again = stats.pope_intervals(outcomes, n_resamples=400, seed=7)
    other = stats.pope_intervals(outcomes, n_resamples=400, seed=8)
    point = outcomes.metrics()
    assert first == again
    assert first != other
    for metric, interval in first.items():
        assert interval.estimate == point[metric]
        assert interval.contains(interval.estimate), metric
        assert interval.low < interval.high
        assert interval.confidence == 0.95


def test_bootstrap_interval_widens_with_confidence() -> None:
    outcomes = _outcomes(200, 0.7, seed=2)
    narrow = stats.pope_intervals(outcomes, n_resamples=300, seed=0, confidence=0.5)["accuracy"]
    wide = stats.pope_intervals(outcomes, n_resamples=300, seed=0, confidence=0.99)["accuracy"]
    assert wide.low < narrow.low and narrow.high < wide.high


def test_bootstrap_blocks_do_not_change_the_draws_count() -> None:
    """More resamples than one block (256) still yields exactly n_resamples values per metric."""
    samples = stats.bootstrap_pope(_outcomes(50, 0.8, seed=3), n_resamples=300, seed=0)
    assert {k: len(v) for k, v in samples.items()} == {m: 300 for m in stats.POPE_METRICS}


def test_bootstrap_rejects_bad_arguments() -> None:
    outcomes = _outcomes(10, 0.8, seed=4)
    with pytest.raises(ValueError, match="n_resamples"):
        stats.pope_intervals(outcomes, n_resamples=0)
    with pytest.raises(ValueError, match="confidence"):
        stats.pope_intervals(outcomes, confidence=1.5)
    empty = stats.PopeOutcomes((), (), (), "pope", "answers.jsonl", "labels.json")
    with pytest.raises(DataError, match=r"answers\.jsonl"):
        stats.bootstrap_pope(empty)


def test_mcnemar_on_outcomes_counts_discordant_pairs(tmp_path: Path, fakes: SimpleNamespace) -> None:
    labels = fakes.write_labels(tmp_path / "labels.json", fakes.LABELS)
    base = fakes.write_pope_set(tmp_path / "base", "random", labels, fakes.BASE_ANSWERS)
    adapted = fakes.write_pope_set(tmp_path / "adapted", "random", labels, fakes.ADAPTED_ANSWERS)
    result = stats.mcnemar(stats.pope_outcomes(base / "answers.jsonl", labels),
                           stats.pope_outcomes(adapted / "answers.jsonl", labels))
    # b = 1 (q8), c = 2 (q5, q6): p = min(1, 2 * P[X <= 1], X ~ Bin(3, 1/2)) = min(1, 2 * 4/8) = 1.
    assert (result.b, result.c, result.n, result.p_value) == (1, 2, 8, 1.0)


def test_mcnemar_needs_the_same_questions() -> None:
    a = _outcomes(10, 0.8, seed=5)
    b = stats.PopeOutcomes(tuple(range(1, 11)), a.labels, a.predictions, "pope", "other.jsonl", "labels.json")
    with pytest.raises(DataError, match="different questions") as info:
        stats.mcnemar(a, b)
    assert info.value.record == 0


def test_mean_f1_interval_is_the_mean_of_the_sets() -> None:
    sets = {name: _outcomes(120, acc, seed=i) for i, (name, acc) in enumerate(
        [("random", 0.9), ("popular", 0.8), ("adversarial", 0.7)])}
    interval = stats.mean_f1_interval(sets, n_resamples=300, seed=1)
    f1s = [o.metrics()["f1"] for o in sets.values()]
    assert interval.estimate == pytest.approx(float(np.mean(f1s)))
    assert stats.mean_f1({k: o.metrics() for k, o in sets.items()}) == pytest.approx(interval.estimate)
    assert interval.contains(interval.estimate)
    assert interval == stats.mean_f1_interval(sets, n_resamples=300, seed=1)


def test_shr_counts_match_the_evaluator(fakes: SimpleNamespace) -> None:
    """Base: image 1 has 1 of 2 sentences hallucinated, image 2 1 of 2 ("cannot judge" counts as labelled),
    image 3 is unjudged and left out: SHR = 2 / 4 = 0.5, as the evaluator's hal_sents_ratio."""
    counts = stats.shr_counts({"run1": fakes.BASE_SHR})
    assert counts.image_ids == ("1", "2")
    assert counts.hallucinated[:, 0].tolist() == [1, 1]
    assert counts.labelled[:, 0].tolist() == [2, 2]
    interval = stats.shr_interval(counts, n_resamples=200, seed=0)
    assert interval.estimate == 0.5 == run_metrics(fakes.BASE_SHR)["hal_sents_ratio"]
    assert interval.contains(0.5)
    assert interval == stats.shr_interval(counts, n_resamples=200, seed=0)


def test_shr_counts_without_runs_is_an_error() -> None:
    with pytest.raises(DataError, match="run1"):
        stats.shr_counts({"other": {}}, file="judgement.json")
