"""Statistics for the dashboard, computed from result files only: POPE per-question outcomes, bootstrap
intervals, McNemar's exact test, mean F1 over the POPE sets, and an image-level bootstrap of SHR.

POPE answers are parsed with the evaluator's own rule (:func:`hadpo.eval.pope.score.get_rule`) and the point
metrics come from its :func:`~hadpo.eval.pope.score.compute_metrics`, so every number here agrees with the
run's ``metrics.json``; this module only adds the uncertainty.

Bootstrap (percentile method): draw ``n`` questions with replacement ``n_resamples`` times from a seeded
generator, recompute the metric on each draw, and report the ``(1 - c) / 2`` and ``(1 + c) / 2`` quantiles of
those values for confidence ``c``. The same seed gives the same interval.

McNemar's exact test compares two models on the same questions. Only the discordant questions carry
information: ``b`` = base right and adapted wrong, ``c`` = base wrong and adapted right. Under the null hypothesis
(both models equally accurate) each discordant question goes either way with probability 1/2, so
``p = min(1, 2 · P[X ≤ min(b, c)])`` with ``X ~ Binomial(b + c, 1/2)``. Example: ``b = 10, c = 2`` ⇒
``P[X ≤ 2] = (C(12,0) + C(12,1) + C(12,2)) / 2^12 = (1 + 12 + 66) / 4096 = 79 / 4096`` ⇒ ``p = 158 / 4096 ≈ 0.03857``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hadpo.data.layout import DataLayout
from hadpo.data.pope_files import read_pope_answers, read_pope_questions
from hadpo.errors import DataError
from hadpo.eval.pope.score import compute_metrics, get_rule, match_answers
from hadpo.io import read_json, sha256_file

#: The POPE metrics that get an interval, as named in the evaluator's ``metrics.json``.
POPE_METRICS: tuple[str, ...] = ("accuracy", "precision", "recall", "f1", "yes_ratio")

#: Resamples are drawn in blocks of this many, so memory stays at ``block × n`` indices whatever ``n_resamples``.
_BLOCK = 256


# ---------------------------------------------------------------------------------------------------- POPE outcomes
@dataclass(frozen=True)
class PopeOutcomes:
    """Per-question results of one model on one POPE set, in label-file order.

    ``prediction`` holds ``"yes"``, ``"no"`` or ``None`` (unparseable under the ``strict`` rule).
    """

    question_ids: tuple[int, ...]
    labels: tuple[str, ...]
    predictions: tuple[str | None, ...]
    rule: str
    answers_file: str
    labels_file: str

    def __len__(self) -> int:
        return len(self.question_ids)

    @property
    def correct(self) -> np.ndarray:
        """Boolean array: the parsed answer equals the label (an unparseable answer is wrong)."""
        return np.array([p == lab for p, lab in zip(self.predictions, self.labels, strict=True)], dtype=bool)

    def metrics(self) -> dict[str, Any]:
        """The evaluator's metrics (counts and ratios as fractions) for these outcomes."""
        return compute_metrics(list(self.predictions), list(self.labels))


def pope_outcomes(
    answers_file: str | Path,
    labels_file: str | Path,
    *,
    rule: str = "pope",
    limit: int | None = None,
) -> PopeOutcomes:
    """Parse every answer of ``answers_file`` and pair it with its label in ``labels_file`` by ``question_id``.

    ``limit`` keeps only the first ``limit`` labelled questions (and the answers to them), as a POPE run with
    ``limit`` scored them. Missing, extra or duplicate ids are a :class:`DataError` naming the id.
    """
    parse = get_rule(rule)
    questions = read_pope_questions(labels_file)
    if limit:
        questions = questions[:limit]
    answers = read_pope_answers(answers_file)
    if limit:
        in_scope = {q.question_id for q in questions}
        answers = [a for a in answers if a.question_id in in_scope]
    pairs = match_answers(answers, questions, answers_file=answers_file, labels_file=labels_file)
    return PopeOutcomes(
        question_ids=tuple(q.question_id for q, _ in pairs),
        labels=tuple(str(q.label) for q, _ in pairs),
        predictions=tuple(parse(a.answer) for _, a in pairs),
        rule=rule,
        answers_file=str(answers_file),
        labels_file=str(labels_file),
    )


def pope_set_files(run_dir: str | Path, pope_set: str) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """(answers file, protocol, metrics) of one set of a POPE run folder; a missing file is a DataError."""
    folder = Path(run_dir) / pope_set
    answers = folder / "answers.jsonl"
    for path in (answers, folder / "metrics.json", folder / "protocol.json"):
        if not path.is_file():
            raise DataError(path.absolute(), f"POPE result file not found (is '{pope_set}' evaluated in {run_dir}?)")
    protocol, metrics = read_json(folder / "protocol.json"), read_json(folder / "metrics.json")
    for path, data in ((folder / "protocol.json", protocol), (folder / "metrics.json", metrics)):
        if not isinstance(data, dict):
            raise DataError(path, f"expected a JSON object, got {type(data).__name__}")
    return answers, protocol, metrics


def has_pope_set(run_dir: str | Path, pope_set: str) -> bool:
    """Whether a POPE run folder holds the finished results of ``pope_set`` (answers, protocol and metrics)."""
    folder = Path(run_dir) / pope_set
    return all((folder / name).is_file() for name in ("answers.jsonl", "metrics.json", "protocol.json"))


def pope_labels_file(pope_set: str, protocol: Mapping[str, Any], protocol_file: Path, *,
                     data_root: str | None = None) -> Path:
    """The question (label) file the answers of a set were made for: under ``data_root`` when given, else the one
    its ``protocol.json`` names; checked against the SHA-256 recorded there."""
    if data_root:
        path = DataLayout(data_root).pope_file(pope_set)
    else:
        recorded = protocol.get("questions_file")
        if not isinstance(recorded, str) or not recorded:
            raise DataError(protocol_file, "no question (label) file recorded; set pope_data_root",
                            field="questions_file")
        path = Path(recorded)
    if not path.is_file():
        raise DataError(path.absolute(),
                        f"POPE label file not found (named by {protocol_file}; set pope_data_root to override)")
    expected = protocol.get("questions_sha256")
    if isinstance(expected, str) and expected and sha256_file(path) != expected:
        raise DataError(path, f"this label file is not the one the answers in {protocol_file.parent} were made for "
                              f"(SHA-256 differs from protocol.json)", field="questions_sha256")
    return path


def read_pope_set(run_dir: str | Path, pope_set: str, *, data_root: str | None = None) -> PopeOutcomes:
    """The per-question outcomes of one set of a POPE run folder, parsed with the rule its ``metrics.json`` records
    and checked against it (answers changed after scoring make it stale: a DataError naming the count)."""
    answers, protocol, metrics = pope_set_files(run_dir, pope_set)
    folder = answers.parent
    labels = pope_labels_file(pope_set, protocol, folder / "protocol.json", data_root=data_root)
    rule = metrics.get("rule", "pope")
    limit = metrics.get("limit")
    outcomes = pope_outcomes(answers, labels, rule=str(rule), limit=limit if isinstance(limit, int) else None)
    recomputed = outcomes.metrics()
    # metrics.json is written when the answers are scored; answers changed afterwards make it stale.
    for key in ("TP", "FP", "TN", "FN"):
        if key in metrics and metrics[key] != recomputed[key]:
            raise DataError(folder / "metrics.json", f"{key} is {metrics[key]} but the answers give {recomputed[key]};"
                                                     f" the file is stale, score the set again", field=key)
    return outcomes


# ---------------------------------------------------------------------------------------------------- bootstrap
@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap interval (same units as the estimate)."""

    estimate: float
    low: float
    high: float
    confidence: float

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies inside the closed interval."""
        return self.low <= value <= self.high

    def scaled(self, factor: float) -> Interval:
        """The same interval in other units (e.g. ``factor=100`` for percentages)."""
        return Interval(self.estimate * factor, self.low * factor, self.high * factor, self.confidence)

    def to_dict(self) -> dict[str, float]:
        """Plain data for JSON."""
        return {"estimate": self.estimate, "low": self.low, "high": self.high, "confidence": self.confidence}


def _check_resampling(n_resamples: int, confidence: float) -> None:
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` elementwise with 0 where ``den`` is 0 (the evaluator's convention)."""
    out = np.zeros(np.broadcast(num, den).shape, dtype=float)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _pope_indicators(outcomes: PopeOutcomes) -> dict[str, np.ndarray]:
    """0/1 per question for each confusion cell and for a "yes" label; unparseable answers are in no cell."""
    pred = np.array([p if p is not None else "" for p in outcomes.predictions])
    label_yes = np.array([lab == "yes" for lab in outcomes.labels])
    return {
        "tp": ((pred == "yes") & label_yes).astype(np.int64),
        "fp": ((pred == "yes") & ~label_yes).astype(np.int64),
        "tn": ((pred == "no") & ~label_yes).astype(np.int64),
        "label_yes": label_yes.astype(np.int64),
    }


def _pope_from_counts(tp: np.ndarray, fp: np.ndarray, tn: np.ndarray, label_yes: np.ndarray, n: int) -> dict[
    str, np.ndarray
]:
    """Vectorised form of the evaluator's ratios (same zero-denominator rule)."""
    precision = _safe_div(tp, tp + fp)
    recall = _safe_div(tp, label_yes)
    return {
        "accuracy": (tp + tn) / n,
        "precision": precision,
        "recall": recall,
        "f1": _safe_div(2 * precision * recall, precision + recall),
        "yes_ratio": (tp + fp) / n,
    }


def bootstrap_pope(outcomes: PopeOutcomes, *, n_resamples: int = 1000, seed: int = 0) -> dict[str, np.ndarray]:
    """``{metric: values over resamples}`` for the five POPE ratios (fractions), questions drawn with replacement.

    Deterministic for a given ``seed``; an empty outcome set is an error.
    """
    _check_resampling(n_resamples, 0.5)
    n = len(outcomes)
    if n == 0:
        raise DataError(outcomes.answers_file, "no answered questions to resample")
    cells = _pope_indicators(outcomes)
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {m: [] for m in POPE_METRICS}
    for start in range(0, n_resamples, _BLOCK):
        size = min(_BLOCK, n_resamples - start)
        idx = rng.integers(0, n, size=(size, n))
        counts = {k: v[idx].sum(axis=1) for k, v in cells.items()}
        for metric, values in _pope_from_counts(**counts, n=n).items():
            parts[metric].append(values)
    return {m: np.concatenate(v) for m, v in parts.items()}


def percentile_interval(estimate: float, samples: np.ndarray, *, confidence: float = 0.95) -> Interval:
    """The percentile-method interval of bootstrap ``samples`` around ``estimate``."""
    _check_resampling(1, confidence)
    samples = np.asarray(samples, dtype=float)
    if samples.size == 0:
        raise ValueError("no bootstrap samples")
    alpha = 1.0 - confidence
    low, high = np.quantile(samples, [alpha / 2, 1 - alpha / 2])
    return Interval(float(estimate), float(low), float(high), confidence)


def pope_intervals(
    outcomes: PopeOutcomes, *, n_resamples: int = 1000, seed: int = 0, confidence: float = 0.95
) -> dict[str, Interval]:
    """``{metric: Interval}`` for accuracy, precision, recall, F1 and yes-ratio (fractions)."""
    _check_resampling(n_resamples, confidence)
    point = outcomes.metrics()
    samples = bootstrap_pope(outcomes, n_resamples=n_resamples, seed=seed)
    return {m: percentile_interval(point[m], samples[m], confidence=confidence) for m in POPE_METRICS}


def mean_f1_interval(
    outcomes_by_set: Mapping[str, PopeOutcomes],
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Interval:
    """Mean F1 over POPE sets (LLaVA's single POPE number) with a bootstrap interval.

    Each set is resampled on its own (its questions are a separate sample) with a generator seeded from
    ``(seed, position of the set)``, and resample ``b`` of the mean is the mean of the sets' resample ``b``.
    """
    if not outcomes_by_set:
        raise ValueError("mean F1 needs at least one POPE set")
    _check_resampling(n_resamples, confidence)
    points = [o.metrics()["f1"] for o in outcomes_by_set.values()]
    draws = [
        bootstrap_pope(o, n_resamples=n_resamples, seed=_sub_seed(seed, i))["f1"]
        for i, o in enumerate(outcomes_by_set.values())
    ]
    return percentile_interval(float(np.mean(points)), np.mean(draws, axis=0), confidence=confidence)


def mean_f1(metrics_by_set: Mapping[str, Mapping[str, Any]]) -> float:
    """Mean of the sets' ``f1`` values (fractions), e.g. of the evaluator's ``metrics.json`` per set."""
    if not metrics_by_set:
        raise ValueError("mean F1 needs at least one POPE set")
    return float(np.mean([m["f1"] for m in metrics_by_set.values()]))


def _sub_seed(seed: int, index: int) -> int:
    """A seed for the ``index``-th independent stream derived from ``seed`` (stable across runs)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


# ---------------------------------------------------------------------------------------------------- McNemar
@dataclass(frozen=True)
class McNemarResult:
    """McNemar's exact test on paired correctness.

    ``b``: first model right, second wrong; ``c``: first wrong, second right; ``n``: paired questions.
    """

    b: int
    c: int
    n: int
    p_value: float

    def to_dict(self) -> dict[str, float | int]:
        """Plain data for JSON."""
        return {"b": self.b, "c": self.c, "n": self.n, "p_value": self.p_value}


def binomial_cdf_half(k: int, n: int) -> float:
    """``P[X ≤ k]`` for ``X ~ Binomial(n, 1/2)``, exact (integer sums, one final division).

    ``binomial_cdf_half(2, 12) = 79 / 4096``; ``binomial_cdf_half(0, 1) = 0.5``.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    # Python integers are exact at any size, and int / int rounds once, so the tail is exact to a double
    # even for thousands of discordant pairs (where 2**n overflows a float).
    return sum(math.comb(n, i) for i in range(k + 1)) / 2**n


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts ``b`` and ``c``.

    ``p = min(1, 2 · P[X ≤ min(b, c)])``, ``X ~ Binomial(b + c, 1/2)``; ``b = c = 0`` gives 1.
    Worked: ``b=10, c=2`` ⇒ ``158/4096 ≈ 0.038574``; ``b=5, c=5`` ⇒ 1; ``b=6, c=0`` ⇒ ``2/64 = 0.03125``.
    """
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got b={b}, c={c}")
    return min(1.0, 2.0 * binomial_cdf_half(min(b, c), b + c))


def mcnemar(base: PopeOutcomes, adapted: PopeOutcomes) -> McNemarResult:
    """McNemar's exact test between two models that answered the same question ids.

    A question id answered by one model and not the other is a :class:`DataError` naming the answer file.
    """
    if set(base.question_ids) != set(adapted.question_ids):
        only_base = sorted(set(base.question_ids) - set(adapted.question_ids))
        only_adapted = sorted(set(adapted.question_ids) - set(base.question_ids))
        first = (only_base or only_adapted)[0]
        file = adapted.answers_file if only_base else base.answers_file
        raise DataError(
            file,
            f"the two models answered different questions ({len(only_base)} only in {base.answers_file}, "
            f"{len(only_adapted)} only in {adapted.answers_file}); McNemar's test needs the same question ids",
            record=first,
            field="question_id",
        )
    adapted_correct = dict(zip(adapted.question_ids, adapted.correct.tolist(), strict=True))
    base_correct = base.correct.tolist()
    b = sum(1 for q, ok in zip(base.question_ids, base_correct, strict=True) if ok and not adapted_correct[q])
    c = sum(1 for q, ok in zip(base.question_ids, base_correct, strict=True) if not ok and adapted_correct[q])
    return McNemarResult(b=b, c=c, n=len(base), p_value=mcnemar_exact(b, c))


# ---------------------------------------------------------------------------------------------------- SHR
@dataclass(frozen=True)
class ShrCounts:
    """Per judged image (rows) and judge run (columns): hallucinated and labelled sentences."""

    image_ids: tuple[str, ...]
    runs: tuple[str, ...]
    hallucinated: np.ndarray
    labelled: np.ndarray


_SHR_LABELS = ("hallucination", "correct", "cannot judge")


def _is_judged(record: Mapping[str, Any]) -> bool:
    """A record the judge labelled: ``status == "judged"``, or (files without a status) every label readable."""
    if "status" in record:
        return record["status"] == "judged"
    return all(e.get("classification") in _SHR_LABELS for e in record.get("judgement") or [])


def shr_counts(judgements: Mapping[str, Mapping[str, Mapping[str, Any]]], *, file: str | Path = "judgement.json") -> (
    ShrCounts
):
    """Hallucinated / labelled sentence counts of the images judged in *every* run of a ``judgement.json``.

    Counting follows the evaluator: ``cannot judge`` is labelled but not hallucinated; an entry with another
    label is not counted. Images unjudged in some run are left out, so all runs share one set of images.
    """
    runs = tuple(k for k in judgements if k.startswith("run"))
    if not runs:
        raise DataError(file, "no judge run (expected a 'run1' key)", field="run1")
    common = [i for i in judgements[runs[0]] if all(i in judgements[r] and _is_judged(judgements[r][i]) for r in runs)]
    hal = np.zeros((len(common), len(runs)), dtype=np.int64)
    lab = np.zeros_like(hal)
    for j, run in enumerate(runs):
        for i, image_id in enumerate(common):
            entries = judgements[run][image_id].get("judgement")
            if not isinstance(entries, list):
                raise DataError(file, "expected a list of sentence judgements", record=image_id, field="judgement")
            labels = [e.get("classification") if isinstance(e, Mapping) else None for e in entries]
            hal[i, j] = sum(1 for x in labels if x == "hallucination")
            lab[i, j] = sum(1 for x in labels if x in _SHR_LABELS)
    return ShrCounts(image_ids=tuple(common), runs=runs, hallucinated=hal, labelled=lab)


def _shr_from_sums(hal: np.ndarray, lab: np.ndarray) -> np.ndarray:
    """Mean over runs (last axis) of hallucinated ÷ labelled sentences."""
    return _safe_div(hal, lab).mean(axis=-1)


def shr_interval(counts: ShrCounts, *, n_resamples: int = 1000, seed: int = 0, confidence: float = 0.95) -> Interval:
    """SHR (fraction: mean over runs of hallucinated ÷ labelled sentences) with an image-level bootstrap interval.

    Sentences of one description are not independent, so whole images are resampled (a cluster bootstrap);
    the same draw of images is used in every run.
    """
    _check_resampling(n_resamples, confidence)
    n = len(counts.image_ids)
    if n == 0:
        raise ValueError("no judged image to resample")
    estimate = float(_shr_from_sums(counts.hallucinated.sum(axis=0), counts.labelled.sum(axis=0)))
    rng = np.random.default_rng(seed)
    parts = []
    for start in range(0, n_resamples, _BLOCK):
        idx = rng.integers(0, n, size=(min(_BLOCK, n_resamples - start), n))
        parts.append(_shr_from_sums(counts.hallucinated[idx].sum(axis=1), counts.labelled[idx].sum(axis=1)))
    return percentile_interval(estimate, np.concatenate(parts), confidence=confidence)


@dataclass(frozen=True)
class PopeComparison:
    """One POPE set answered by a base and an adapted model: metrics (fractions), intervals and McNemar."""

    base_metrics: dict[str, Any]
    base_intervals: dict[str, Interval]
    adapted_metrics: dict[str, Any]
    adapted_intervals: dict[str, Interval]
    mcnemar: McNemarResult


def compare_pope(
    base: PopeOutcomes,
    adapted: PopeOutcomes,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> PopeComparison:
    """Both models' metrics and bootstrap intervals on one set, and McNemar's test between them.

    Both models are resampled with the same seed, so with the same questions they see the same draws.
    """
    return PopeComparison(
        base_metrics=base.metrics(),
        base_intervals=pope_intervals(base, n_resamples=n_resamples, seed=seed, confidence=confidence),
        adapted_metrics=adapted.metrics(),
        adapted_intervals=pope_intervals(adapted, n_resamples=n_resamples, seed=seed, confidence=confidence),
        mcnemar=mcnemar(base, adapted),
    )
