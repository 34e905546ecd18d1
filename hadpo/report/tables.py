"""Dashboard tables (pandas): POPE per set in the HA-DPO README's layout, the mean-F1 headline, SHR with length
statistics, the SHR judge's requests and faults, and the published LLaVA-1.5-7B numbers.

Ratios are shown as percentages with two decimals, as the HA-DPO README; ``Δ`` rows are adapted minus base in
percentage points (or in the column's own unit for per-image counts). Interval columns hold ``[low, high]`` text
so a table can be read, copied and exported without losing them.

The builders return plain DataFrames (values unformatted); :func:`shown` turns one into what a notebook cell
displays: an HTML table without an index column, each column formatted by kind (counts as integers, every rate of
a table in one unit, missing values as ``—``), with the same table as text for the executed notebook.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from hadpo.eval.shr.metrics import is_complete
from hadpo.report.stats import Interval, McNemarResult, PopeComparison

if TYPE_CHECKING:
    from hadpo.display import Table

#: POPE metric key (evaluator's ``metrics.json``) → column header (HA-DPO README).
POPE_HEADERS: dict[str, str] = {
    "accuracy": "Accuracy",
    "precision": "Precision",
    "recall": "Recall",
    "f1": "F1 Score",
    "yes_ratio": "Yes Ratio (%)",
}
#: The label on every published number, so it is never mistaken for a measurement.
PUBLISHED_LABEL = "published reference (HA-DPO README), not measured here"
#: Set names as the README prints them.
SET_TITLES: dict[str, str] = {"random": "Random", "popular": "Popular", "adversarial": "Adversarial"}
BASE_MARK, ADAPTED_MARK, DELTA_MARK = "✗", "✓", "Δ"
MEAN_F1_SET = "Mean of sets"

# (accuracy, precision, recall, f1, yes_ratio) in %, HA-DPO README, LLaVA-1.5-7B.
_PUBLISHED_POPE: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "random": ((89.60, 88.77, 90.66, 89.70, 51.06), (90.53, 92.99, 87.66, 90.25, 47.13)),
    "popular": ((86.20, 83.23, 90.66, 86.79, 54.46), (87.90, 88.07, 87.66, 87.81, 49.76)),
    "adversarial": ((79.76, 74.43, 90.66, 81.75, 60.90), (81.46, 77.99, 87.66, 82.54, 56.20)),
}
_PUBLISHED_SHR: tuple[float, float] = (36.7, 34.0)
PUBLISHED_MODEL = "LLaVA-1.5-7B"
#: The one published cell that does not recompute from its neighbours.
PUBLISHED_NOTE = (
    "Popular + HA-DPO: F1 recomputed from the printed precision and recall (TP 1315, FP 178) is 87.87, "
    "not the printed 87.81 (a likely typo in the README); every other LLaVA-1.5 cell recomputes exactly."
)


#: Display formats by kind of column: rates in % (two decimals, as the README), counts as integers.
PERCENT, COUNT, SECONDS = "{:.2f}", "{:.0f}", "{:.1f}"


def count_format(values: Sequence[Any]) -> str:
    """:data:`COUNT` when every value is whole (or missing), else two decimals: a mean over judge runs that
    differ must not be rounded into a count it is not."""
    numbers = [float(v) for v in values if isinstance(v, (int, float)) and not math.isnan(float(v))]
    return COUNT if all(v.is_integer() for v in numbers) else "{:.2f}"


def shown(frame: pd.DataFrame, *, formats: Mapping[str, str] | None = None, caption: str | None = None) -> Table:
    """What a dashboard cell displays for ``frame``: :func:`hadpo.notebooks.table` (HTML without the index column,
    text left-aligned, missing values as ``—``), with ``formats`` (column → format string) for the columns the
    frame has. Numeric columns without a format must hold integers; give every rate of one table the same unit."""
    from hadpo.display import table

    return table(frame.reset_index(drop=True), caption=caption,
                 formats={c: f for c, f in (formats or {}).items() if c in frame.columns})


def pct(value: float | None) -> float:
    """A fraction as a percentage with two decimals; None stays NaN."""
    return math.nan if value is None else round(100.0 * float(value), 2)


def interval_text(interval: Interval | None, *, factor: float = 100.0, digits: int = 2) -> str:
    """``"[low, high]"`` in display units (percent by default); an empty string when there is no interval."""
    if interval is None:
        return ""
    return f"[{interval.low * factor:.{digits}f}, {interval.high * factor:.{digits}f}]"


def p_value_text(result: McNemarResult | None) -> str:
    """A p-value for display: three significant digits, and ``< 1e-4`` for smaller values."""
    if result is None:
        return ""
    return "< 1e-4" if result.p_value < 1e-4 else f"{result.p_value:.3g}"


def _ci_header(key: str, confidence: float) -> str:
    return f"{POPE_HEADERS[key]} {round(100 * confidence)}% CI"


def pope_table(
    comparisons: Mapping[str, PopeComparison],
    *,
    model: str = "LLaVA-1.5",
    ci_metrics: Sequence[str] = ("accuracy", "f1"),
    mean_f1: tuple[Interval, Interval] | None = None,
) -> pd.DataFrame:
    """POPE per set: base (HA-DPO ✗), adapted (✓) and Δ rows, with interval columns and McNemar's p.

    ``comparisons`` maps a set name to its :class:`~hadpo.report.stats.PopeComparison`, in display order.
    ``mean_f1`` — ``(base, adapted)`` intervals of the mean F1 over the sets — adds the headline rows
    (``Set = "Mean of sets"``), which fill only the F1 columns.
    """
    unknown = [k for k in ci_metrics if k not in POPE_HEADERS]
    if unknown:
        raise ValueError(f"unknown POPE metric(s) {unknown}; expected some of {list(POPE_HEADERS)}")
    first = next(iter(comparisons.values()), None)
    confidence = first.base_intervals["f1"].confidence if first else 0.95
    ci_cols = [_ci_header(k, confidence) for k in ci_metrics]
    columns = ["Set", "Model", "HA-DPO", *POPE_HEADERS.values(), *ci_cols, "McNemar p"]
    rows: list[dict[str, Any]] = []
    for pope_set, comp in comparisons.items():
        title = SET_TITLES.get(pope_set, pope_set)
        for mark, metrics, intervals in (
            (BASE_MARK, comp.base_metrics, comp.base_intervals),
            (ADAPTED_MARK, comp.adapted_metrics, comp.adapted_intervals),
        ):
            row: dict[str, Any] = {"Set": title, "Model": model, "HA-DPO": mark, "McNemar p": ""}
            row.update({h: pct(metrics[k]) for k, h in POPE_HEADERS.items()})
            row.update({_ci_header(k, confidence): interval_text(intervals.get(k)) for k in ci_metrics})
            rows.append(row)
        delta: dict[str, Any] = {"Set": title, "Model": model, "HA-DPO": DELTA_MARK, "McNemar p": p_value_text(
            comp.mcnemar)}
        delta.update({h: round(pct(comp.adapted_metrics[k]) - pct(comp.base_metrics[k]), 2)
                      for k, h in POPE_HEADERS.items()})
        delta.update({c: "" for c in ci_cols})
        rows.append(delta)
    if mean_f1 is not None:
        rows.extend(_mean_f1_rows(mean_f1, model=model, ci_metrics=ci_metrics, confidence=confidence))
    return pd.DataFrame(rows, columns=columns)


#: Formats of :func:`pope_table`'s columns: every rate in %.
POPE_FORMATS: dict[str, str] = {h: PERCENT for h in POPE_HEADERS.values()}


def _mean_f1_rows(
    mean_f1: tuple[Interval, Interval], *, model: str, ci_metrics: Sequence[str], confidence: float
) -> list[dict[str, Any]]:
    base, adapted = mean_f1
    out = []
    for mark, value, interval in ((BASE_MARK, pct(base.estimate), base), (ADAPTED_MARK, pct(adapted.estimate), adapted),
                                  (DELTA_MARK, round(pct(adapted.estimate) - pct(base.estimate), 2), None)):
        row: dict[str, Any] = {"Set": MEAN_F1_SET, "Model": model, "HA-DPO": mark, "McNemar p": ""}
        row.update({h: math.nan for h in POPE_HEADERS.values()})
        row["F1 Score"] = value
        row.update({_ci_header(k, confidence): "" for k in ci_metrics})
        if "f1" in ci_metrics:
            row[_ci_header("f1", confidence)] = interval_text(interval)
        out.append(row)
    return out


def mean_f1_table(mean_f1: tuple[Interval, Interval], *, model: str = "LLaVA-1.5") -> pd.DataFrame:
    """The headline on its own: mean F1 over the POPE sets, base and adapted, with intervals and Δ."""
    base, adapted = mean_f1
    header = f"{round(100 * base.confidence)}% CI"
    return pd.DataFrame(
        [
            {"Model": model, "HA-DPO": BASE_MARK, "Mean F1": pct(base.estimate), header: interval_text(base)},
            {"Model": model, "HA-DPO": ADAPTED_MARK, "Mean F1": pct(adapted.estimate), header: interval_text(adapted)},
            {"Model": model, "HA-DPO": DELTA_MARK, "Mean F1": round(pct(adapted.estimate) - pct(base.estimate), 2),
             header: ""},
        ]
    )


# ---------------------------------------------------------------------------------------------------- SHR
def _runs(metrics: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    runs = [v for k, v in metrics.items() if k.startswith("run") and k[3:].isdigit() and isinstance(v, Mapping)]
    if not runs:
        raise ValueError("SHR metrics hold no judge run (no 'run1' key)")
    return runs


def _run_mean(runs: Sequence[Mapping[str, Any]], key: str) -> float:
    values = [r[key] for r in runs if r.get(key) is not None]
    return float(sum(values) / len(values)) if values else math.nan


def judgement_state(metrics: Mapping[str, Any]) -> str:
    """``complete``, ``INCOMPLETE: n unjudged`` or ``not recorded`` (files of the original code cannot tell)."""
    complete = is_complete(metrics)
    if complete is None:
        return "not recorded"
    if complete:
        return "complete"
    unjudged = sum(int(r.get("num_unjudged", 0)) for r in _runs(metrics))
    return f"INCOMPLETE: {unjudged} unjudged"


def shr_row(metrics: Mapping[str, Any], interval: Interval | None = None) -> dict[str, Any]:
    """One SHR table row from an SHR ``metrics.json`` (per-run values averaged over the judge runs).

    SHR is ``mean_hal_ratio × 100``. Unjudged and skipped images are the mean over runs; files written by the
    original code have neither and show NaN. ``Judgement`` says whether every image was judged.
    """
    runs = _runs(metrics)
    row: dict[str, Any] = {
        "Judgement": judgement_state(metrics),
        "SHR (%)": pct(metrics["mean_hal_ratio"]),
        "SHR CI": interval_text(interval),
        "Words / image": round(_run_mean(runs, "words_per_image"), 2),
        "Sentences / image": round(_run_mean(runs, "sents_per_image"), 2),
        "Hal. sentences / image": round(_run_mean(runs, "hal_sents_per_image"), 2),
        "Hal. words (%)": pct(_run_mean(runs, "hal_words_ratio")),
        "Judged images": round(_run_mean(runs, "num_images"), 2),
        "Unjudged images": round(_run_mean(runs, "num_unjudged"), 2),
        "Skipped images": round(_run_mean(runs, "num_skipped"), 2),
    }
    for n in range(1, 5):
        value = metrics.get(f"gram-{n}-repetition")
        row[f"{n}-gram rep. (%)"] = pct(value)
    return row


#: SHR columns that get no Δ (the text ones).
_SHR_DELTA_SKIP = ("SHR CI", "Judgement")


def shr_table(
    base: Mapping[str, Any],
    adapted: Mapping[str, Any],
    *,
    model: str = "LLaVA-1.5",
    base_interval: Interval | None = None,
    adapted_interval: Interval | None = None,
) -> pd.DataFrame:
    """SHR base vs HA-DPO (lower SHR is better) with length statistics, unjudged counts and repetition, and Δ.

    Repetition is unique ÷ total n-grams (higher = less repetitive). The interval column is named for its
    confidence, when intervals are given.
    """
    b = shr_row(base, base_interval)
    a = shr_row(adapted, adapted_interval)
    delta = {k: ("" if k in _SHR_DELTA_SKIP else round(a[k] - b[k], 2)) for k in b}
    rows = [
        {"Model": model, "HA-DPO": BASE_MARK, **b},
        {"Model": model, "HA-DPO": ADAPTED_MARK, **a},
        {"Model": model, "HA-DPO": DELTA_MARK, **delta},
    ]
    frame = pd.DataFrame(rows)
    interval = base_interval or adapted_interval
    if interval is None:
        return frame.drop(columns=["SHR CI"])
    return frame.rename(columns={"SHR CI": f"SHR {round(100 * interval.confidence)}% CI"})


#: SHR columns counted in images (a mean over judge runs).
SHR_COUNT_COLUMNS = ("Judged images", "Unjudged images", "Skipped images")


def shr_formats(frame: pd.DataFrame) -> dict[str, str]:
    """Formats of :func:`shr_table`'s columns: rates in %, lengths per image, image counts as integers."""
    formats = {"SHR (%)": PERCENT, "Hal. words (%)": PERCENT, "Words / image": "{:.1f}",
               "Sentences / image": "{:.2f}", "Hal. sentences / image": "{:.2f}",
               **{f"{n}-gram rep. (%)": PERCENT for n in range(1, 5)}}
    formats.update({c: count_format(frame[c].tolist()) for c in SHR_COUNT_COLUMNS if c in frame.columns})
    return formats


#: Judge fault columns: header → (section of metrics["judge"], key); "calls" holds the client's counters.
JUDGE_COLUMNS: dict[str, tuple[str | None, str]] = {
    "Requests": ("calls", "requests"),
    "Cache hits": ("calls", "cache_hits"),
    "Retries": ("calls", "retries"),
    "429s": ("calls", "rate_limited"),
    "Retry-After wait (s)": ("calls", "retry_after_wait_s"),
    "5xx": ("calls", "server_errors"),
    "Timeouts": ("calls", "timeouts"),
    "Connection errors": ("calls", "connection_errors"),
    "Malformed": ("calls", "malformed"),
    "Refused (4xx)": ("calls", "client_errors"),
    "Re-asks": (None, "reasks"),
    "Unusable replies": (None, "unusable_replies"),
    "Unjudged images": (None, "unjudged_images"),
}


def judge_row(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """One row of judge requests and faults from an SHR ``metrics.json`` (NaN where the file records none)."""
    judge = metrics.get("judge")
    row: dict[str, Any] = {}
    for header, (section, key) in JUDGE_COLUMNS.items():
        source = (judge.get(section) if section else judge) if isinstance(judge, Mapping) else None
        value = source.get(key) if isinstance(source, Mapping) else None
        row[header] = math.nan if value is None else value
    reasons = judge.get("unjudged_reasons") if isinstance(judge, Mapping) else None
    row["Unjudged because"] = ", ".join(f"{k}: {v}" for k, v in reasons.items()) if reasons else ""
    return row


def judge_formats(frame: pd.DataFrame) -> dict[str, str]:
    """Formats of :func:`judge_table`'s columns: counts as integers, the Retry-After wait in seconds."""
    return {c: SECONDS if c == "Retry-After wait (s)" else count_format(frame[c].tolist())
            for c in JUDGE_COLUMNS if c in frame.columns}


def judge_table(base: Mapping[str, Any], adapted: Mapping[str, Any], *, model: str = "LLaVA-1.5") -> pd.DataFrame:
    """The SHR judge's requests and faults for both models: the cost and the reliability behind each SHR.

    Request counts are those of the invocation that wrote each ``metrics.json`` (a rerun served from the cache
    makes none); re-asks, unusable replies and unjudged images describe the judgement itself.
    """
    return pd.DataFrame([
        {"Model": model, "HA-DPO": BASE_MARK, **judge_row(base)},
        {"Model": model, "HA-DPO": ADAPTED_MARK, **judge_row(adapted)},
    ])


# ---------------------------------------------------------------------------------------------------- published
def published_pope_table() -> pd.DataFrame:
    """LLaVA-1.5-7B POPE numbers (%) from the HA-DPO README, in its layout, labelled as not measured here."""
    rows = []
    for pope_set, (base, adapted) in _PUBLISHED_POPE.items():
        for mark, values in ((BASE_MARK, base), (ADAPTED_MARK, adapted)):
            rows.append({"Set": SET_TITLES[pope_set], "Model": PUBLISHED_MODEL, "HA-DPO": mark,
                         **dict(zip(POPE_HEADERS.values(), values, strict=True)), "Source": PUBLISHED_LABEL})
    return pd.DataFrame(rows)


def published_shr_table() -> pd.DataFrame:
    """LLaVA-1.5-7B SHR (%) from the HA-DPO README, labelled as not measured here."""
    base, adapted = _PUBLISHED_SHR
    return pd.DataFrame(
        [
            {"Model": PUBLISHED_MODEL, "HA-DPO": BASE_MARK, "SHR (%)": base, "Source": PUBLISHED_LABEL},
            {"Model": PUBLISHED_MODEL, "HA-DPO": ADAPTED_MARK, "SHR (%)": adapted, "Source": PUBLISHED_LABEL},
        ]
    )


def published_mean_f1() -> tuple[float, float]:
    """Mean F1 (%) over the three sets of the published LLaVA-1.5-7B numbers: (baseline, HA-DPO)."""
    base = sum(v[0][3] for v in _PUBLISHED_POPE.values()) / len(_PUBLISHED_POPE)
    adapted = sum(v[1][3] for v in _PUBLISHED_POPE.values()) / len(_PUBLISHED_POPE)
    return round(base, 2), round(adapted, 2)
