"""CHAIR, AMBER and MMHal-Bench on the dashboard: base vs HA-DPO per measure, with intervals and paired tests.

Every benchmark stage writes a per-item file (``scores.jsonl``) next to its ``metrics.json``; a measure is read
from it as per-item values, either a **mean** of one value per item (CHAIR_s's 0/1, an MMHal rating) or a
**ratio** of sums (CHAIR_i: hallucinated mentions ÷ mentions), so that it can be resampled by item:

* the interval of each model's estimate is a percentile bootstrap over its items;
* Δ (HA-DPO − base) gets a paired bootstrap interval over the items both models answered (same resampled items
  for both);
* the paired test is McNemar's exact test where the per-item value is 0/1 (an image hallucinated or not, an
  answer right or wrong), an exact sign test where it is graded (an MMHal rating: which model scored the item
  higher, ties dropped — the same binomial), and none for a ratio of sums, whose Δ interval says it instead.

The benchmarks' readers are :data:`MEASURES`: a function of a run folder returning each measure's per-item
values; a stage that wrote nothing there (not run) is left out with a note, never shown as a zero.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hadpo.errors import DataError
from hadpo.io import read_json, read_jsonl
from hadpo.report.stats import Interval, PopeOutcomes, _sub_seed, mcnemar_exact, percentile_interval

#: The per-item file every benchmark stage writes in its run folder.
SCORES_FILE = "scores.jsonl"
METRICS_FILE = "metrics.json"


@dataclass(frozen=True)
class Measure:
    """One measure of a benchmark, per item: ``values[item] = (numerator, denominator)`` (denominator 1 for a
    mean). ``factor`` scales it for display (100 for a rate in %)."""

    benchmark: str
    name: str
    better: Literal["lower", "higher", "—"]
    kind: Literal["mean", "ratio"]
    values: Mapping[str, tuple[float, float]]
    factor: float = 100.0
    #: Shown in the dashboard's at-a-glance table and the reports index.
    headline: bool = False

    def estimate(self, ids: Sequence[str]) -> float:
        num = sum(self.values[i][0] for i in ids)
        den = sum(self.values[i][1] for i in ids)
        return num / den if den else 0.0

    @property
    def binary(self) -> bool:
        """Whether every per-item value is 0 or 1 (McNemar applies)."""
        return self.kind == "mean" and all(n in (0, 1) and d == 1 for n, d in self.values.values())


def _arrays(measure: Measure, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    pairs = np.array([measure.values[i] for i in ids], dtype=float).reshape(-1, 2)
    return pairs[:, 0], pairs[:, 1]


def _resampled(num: np.ndarray, den: np.ndarray, draws: np.ndarray) -> np.ndarray:
    nums, dens = num[draws].sum(axis=1), den[draws].sum(axis=1)
    out = np.zeros_like(nums)
    np.divide(nums, dens, out=out, where=dens != 0)
    return out


def bootstrap(measure: Measure, *, n_resamples: int, seed: int, confidence: float) -> Interval:
    """The measure's estimate with a percentile bootstrap interval over its items."""
    ids = sorted(measure.values)
    num, den = _arrays(measure, ids)
    draws = np.random.default_rng(seed).integers(0, len(ids), size=(n_resamples, len(ids)))
    return percentile_interval(measure.estimate(ids), _resampled(num, den, draws), confidence=confidence)


@dataclass(frozen=True)
class Comparison:
    """One measure, base vs HA-DPO."""

    base: Measure
    adapted: Measure
    base_interval: Interval
    adapted_interval: Interval
    delta: Interval
    paired_items: int
    test: str
    p_value: float | None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``summary.json``."""
        return {"benchmark": self.base.benchmark, "measure": self.base.name, "better": self.base.better,
                "factor": self.base.factor, "headline": self.base.headline, "base": self.base_interval.to_dict(),
                "hadpo": self.adapted_interval.to_dict(), "delta": self.delta.to_dict(),
                "paired_items": self.paired_items, "test": self.test, "p_value": self.p_value}


def paired_test(base: Measure, adapted: Measure, ids: Sequence[str]) -> tuple[str, float | None]:
    """``(test name, p-value)`` on the paired items (see the module docstring)."""
    if base.kind == "ratio":
        return "paired bootstrap Δ", None
    b = sum(1 for i in ids if base.values[i][0] > adapted.values[i][0])  # base higher
    c = sum(1 for i in ids if adapted.values[i][0] > base.values[i][0])  # HA-DPO higher
    return ("McNemar (exact)" if base.binary and adapted.binary else "sign test (exact)"), mcnemar_exact(b, c)


def paired(base: Measure, adapted: Measure, *, n_resamples: int, seed: int,
           confidence: float) -> tuple[Interval, int, str, float | None]:
    """Δ (adapted − base) with its paired bootstrap interval over the items both have (the same resampled items
    for both), the number of those items, and the paired test (:func:`paired_test`)."""
    ids = sorted(set(base.values) & set(adapted.values))
    if not ids:
        raise DataError(base.benchmark, f"{base.name}: the two runs share no item")
    draws = np.random.default_rng(_sub_seed(seed, 2)).integers(0, len(ids), size=(n_resamples, len(ids)))
    (bn, bd), (an, ad) = _arrays(base, ids), _arrays(adapted, ids)
    delta_samples = _resampled(an, ad, draws) - _resampled(bn, bd, draws)
    delta = percentile_interval(adapted.estimate(ids) - base.estimate(ids), delta_samples, confidence=confidence)
    test, p_value = paired_test(base, adapted, ids)
    return delta, len(ids), test, p_value


def compare(base: Measure, adapted: Measure, *, n_resamples: int, seed: int, confidence: float) -> Comparison:
    """Both models' intervals, the paired Δ interval and the paired test of one measure."""
    delta, items, test, p_value = paired(base, adapted, n_resamples=n_resamples, seed=seed, confidence=confidence)
    return Comparison(base, adapted,
                      bootstrap(base, n_resamples=n_resamples, seed=_sub_seed(seed, 0), confidence=confidence),
                      bootstrap(adapted, n_resamples=n_resamples, seed=_sub_seed(seed, 1), confidence=confidence),
                      delta, items, test, p_value)


def paired_mean(base: Sequence[Measure], adapted: Sequence[Measure], *, shared_draws: bool, n_resamples: int,
                seed: int, confidence: float) -> tuple[Interval, int]:
    """Δ (adapted − base) of a *mean of measures* with its paired bootstrap interval, and the items paired.

    The Δ is resampled the way the single-model interval of that mean is (the paired form of it, no new method):

    * ``shared_draws=False``: ``base[k]`` and ``adapted[k]`` are one part answered by both models (a POPE set, for
      the mean F1 over sets); each part's shared items are resampled on their own, as
      :func:`hadpo.report.stats.mean_f1_interval` resamples each set, with the same draw for both models;
    * ``shared_draws=True``: every part of both models is over the same items (an SHR judge run over the same
      images); one draw of the items all parts share is used in every part, as
      :func:`hadpo.report.stats.shr_interval` draws images (the models may have different numbers of parts).

    Resample ``b`` of Δ is mean_k adapted_k(b) − mean_k base_k(b).
    """
    if not base or not adapted:
        raise ValueError("a mean needs at least one measure per model")
    if shared_draws:
        ids = sorted(set.intersection(*(set(m.values) for m in (*base, *adapted))))
        if not ids:
            raise DataError(base[0].benchmark, f"{base[0].name}: the two runs share no item")
        draws = np.random.default_rng(_sub_seed(seed, 2)).integers(0, len(ids), size=(n_resamples, len(ids)))

        def mean_of(parts: Sequence[Measure]) -> tuple[float, np.ndarray]:
            samples = [_resampled(*_arrays(m, ids), draws) for m in parts]
            return float(np.mean([m.estimate(ids) for m in parts])), np.mean(samples, axis=0)

        (b_point, b_samples), (a_point, a_samples) = mean_of(base), mean_of(adapted)
        return percentile_interval(a_point - b_point, a_samples - b_samples, confidence=confidence), len(ids)
    if len(base) != len(adapted):
        raise ValueError(f"{len(base)} base parts but {len(adapted)} adapted ones; pair them one to one")
    points, samples, items = [], [], 0
    for k, (b, a) in enumerate(zip(base, adapted, strict=True)):
        ids = sorted(set(b.values) & set(a.values))
        if not ids:
            raise DataError(b.benchmark, f"{b.name}: the two runs share no item")
        draws = np.random.default_rng(_sub_seed(seed, k)).integers(0, len(ids), size=(n_resamples, len(ids)))
        points.append(a.estimate(ids) - b.estimate(ids))
        samples.append(_resampled(*_arrays(a, ids), draws) - _resampled(*_arrays(b, ids), draws))
        items += len(ids)
    return percentile_interval(float(np.mean(points)), np.mean(samples, axis=0), confidence=confidence), items


def pope_measures(outcomes: PopeOutcomes, pope_set: str) -> dict[str, Measure]:
    """One POPE set's per-question measures, for paired comparisons across runs: ``precision`` (TP ÷ "yes"
    answers, a ratio), ``yes_ratio`` ("yes" answers, 0/1 per question) and ``f1`` (2TP ÷ (2TP + FP + FN), a ratio of
    per-question sums); their estimates are the evaluator's (:meth:`~hadpo.report.stats.PopeOutcomes.metrics`)."""
    ids = [str(q) for q in outcomes.question_ids]
    said_yes = [p == "yes" for p in outcomes.predictions]
    is_yes = [label == "yes" for label in outcomes.labels]
    tp = [float(s and y) for s, y in zip(said_yes, is_yes, strict=True)]
    fp = [float(s and not y) for s, y in zip(said_yes, is_yes, strict=True)]
    # FN: a "yes" label not answered "yes" (an unparseable answer too, as the evaluator's recall counts it).
    fn = [float(y and not s) for s, y in zip(said_yes, is_yes, strict=True)]
    name = f"POPE {pope_set}"
    return {
        "precision": Measure(name, "precision (%)", "higher", "ratio",
                             {i: (t, float(s)) for i, t, s in zip(ids, tp, said_yes, strict=True)}),
        "yes_ratio": Measure(name, "yes-ratio (%)", "—", "mean",
                             {i: (float(s), 1.0) for i, s in zip(ids, said_yes, strict=True)}),
        "f1": Measure(name, "F1 (%)", "higher", "ratio",
                      {i: (2 * t, 2 * t + f + n) for i, t, f, n in zip(ids, tp, fp, fn, strict=True)}),
    }


# ------------------------------------------------------------------------------------------------ the readers
def read_scores(folder: str | Path, *, incomplete_ok: bool = False) -> list[dict[str, Any]]:
    """A run folder's per-item records; a run whose metrics say it is incomplete is refused (unless
    ``incomplete_ok``: its items so far, for a caller that marks the result incomplete wherever it shows it)."""
    folder = Path(folder)
    metrics = read_json(folder / METRICS_FILE)
    if metrics.get("complete") is False and not incomplete_ok:
        raise DataError(folder / METRICS_FILE, "the run is marked incomplete; its measures are not reported")
    return read_jsonl(folder / SCORES_FILE)


def chair_measures(folder: str | Path, *, incomplete_ok: bool = False) -> list[Measure]:
    """CHAIR_s, CHAIR_i, recall and words per description, per image."""
    records = read_scores(folder, incomplete_ok=incomplete_ok)
    by = {str(r["image_id"]): r for r in records}
    return [
        Measure("CHAIR", "CHAIR_s (%)", "lower", "mean",
                {i: (float(bool(r["hallucinated"])), 1.0) for i, r in by.items()}),
        Measure("CHAIR", "CHAIR_i (%)", "lower", "ratio",
                {i: (float(len(r["hallucinated"])), float(len(r["mentions"]))) for i, r in by.items()}, headline=True),
        Measure("CHAIR", "recall (%)", "higher", "ratio",
                {i: (float(len(r["covered"])), float(len(r["truth"]))) for i, r in by.items()}),
        Measure("CHAIR", "words / description", "—", "mean", {i: (float(r["words"]), 1.0) for i, r in by.items()},
                factor=1.0),
    ]


def amber_measures(folder: str | Path, *, incomplete_ok: bool = False) -> list[Measure]:
    """AMBER's CHAIR, Cover, Hal and Cog per description; accuracy and F1 ("no" positive) per question."""
    records = read_scores(folder, incomplete_ok=incomplete_ok)
    gen = {str(r["id"]): r for r in records if r["kind"] == "generative"}
    dis = {str(r["id"]): r for r in records if r["kind"] == "discriminative"}
    out = []
    if gen:
        out += [
            Measure("AMBER", "CHAIR (%)", "lower", "ratio",
                    {i: (float(r["hallucinated"]), float(r["objects"])) for i, r in gen.items()}),
            Measure("AMBER", "Cover (%)", "higher", "ratio",
                    {i: (float(r["covered"]), float(r["truth"])) for i, r in gen.items()}),
            Measure("AMBER", "Hal (%)", "lower", "mean",
                    {i: (float(r["hallucinated"] > 0), 1.0) for i, r in gen.items()}, headline=True),
            Measure("AMBER", "Cog (%)", "lower", "ratio",
                    {i: (float(r["named"]), float(r["hallu"])) for i, r in gen.items()}),
        ]
    if dis:
        def f1_terms(r: Mapping[str, Any]) -> tuple[float, float]:
            # F1 of "no" = 2TP / (2TP + FP + FN): a ratio of per-question sums.
            tp = float(r["truth"] == "no" and r["prediction"] == "no")
            fp = float(r["truth"] != "no" and r["prediction"] == "no")
            fn = float(r["truth"] == "no" and r["prediction"] != "no")
            return 2 * tp, 2 * tp + fp + fn

        out += [
            Measure("AMBER", "accuracy (%)", "higher", "mean",
                    {i: (float(r["truth"] == r["prediction"]), 1.0) for i, r in dis.items()}),
            Measure("AMBER", "F1 (%)", "higher", "ratio", {i: f1_terms(r) for i, r in dis.items()}),
        ]
    return out


def mmhal_measures(folder: str | Path, *, incomplete_ok: bool = False) -> list[Measure]:
    """MMHal-Bench's score (0–6) and hallucination rate (rated below 3) per judged question."""
    records = [r for r in read_scores(folder, incomplete_ok=incomplete_ok) if r.get("rating") is not None]
    by = {str(r["id"]): float(r["rating"]) for r in records}
    return [
        Measure("MMHal-Bench", "score (0-6)", "higher", "mean", {i: (v, 1.0) for i, v in by.items()}, factor=1.0,
                headline=True),
        Measure("MMHal-Bench", "hallucination rate (%)", "lower", "mean",
                {i: (float(v < 3), 1.0) for i, v in by.items()}),
    ]


#: Benchmark → reader of its measures from a run folder, in the dashboard's order.
MEASURES: dict[str, Callable[..., list[Measure]]] = {"CHAIR": chair_measures, "AMBER": amber_measures,
                                                            "MMHal-Bench": mmhal_measures}


def compare_runs(pairs: Mapping[str, tuple[str | None, str | None]], *, n_resamples: int, seed: int,
                 confidence: float) -> tuple[list[Comparison], list[str]]:
    """Every measure of every benchmark whose two run folders (``pairs[benchmark] = (base, hadpo)``) hold results;
    the notes say which benchmarks were left out and why."""
    comparisons: list[Comparison] = []
    notes: list[str] = []
    for k, (benchmark, reader) in enumerate(MEASURES.items()):
        base_dir, adapted_dir = pairs.get(benchmark, (None, None))
        if not base_dir or not adapted_dir:
            notes.append(f"{benchmark}: no run folders configured")
            continue
        missing = [d for d in (base_dir, adapted_dir) if not (Path(d) / SCORES_FILE).is_file()]
        if missing:
            notes.append(f"{benchmark}: no results in {', '.join(missing)}")
            continue
        try:
            base, adapted = reader(base_dir), reader(adapted_dir)
        except DataError as exc:
            notes.append(f"{benchmark}: {exc}")
            continue
        for j, (b, a) in enumerate(zip(base, adapted, strict=True)):
            comparisons.append(compare(b, a, n_resamples=n_resamples, seed=_sub_seed(seed, 100 * k + j),
                                       confidence=confidence))
    return comparisons, notes


def comparison_rows(comparisons: Sequence[Comparison], *, base_label: str, adapted_label: str,
                    confidence: float) -> list[dict[str, Any]]:
    """Table rows (display units: % for rates) of the comparisons."""
    level = f"{round(100 * confidence)}% CI"

    def cell(interval: Interval, factor: float) -> str:
        return f"[{factor * interval.low:.2f}, {factor * interval.high:.2f}]"

    rows = []
    for c in comparisons:
        f = c.base.factor
        rows.append({
            "Benchmark": c.base.benchmark, "Measure": c.base.name, "Better": c.base.better,
            base_label: f * c.base_interval.estimate, adapted_label: f * c.adapted_interval.estimate,
            "Δ": f * c.delta.estimate, f"{level} base": cell(c.base_interval, f),
            f"{level} HA-DPO": cell(c.adapted_interval, f), f"{level} Δ (paired)": cell(c.delta, f),
            "Paired test": c.test, "p": "—" if c.p_value is None else f"{c.p_value:.3g}",
            "Items": c.paired_items,
        })
    return rows
