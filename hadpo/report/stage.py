"""Stage 05, the dashboard: one-call functions that each read result files only and return something a notebook
displays (a table, a Figure or HTML); every figure is also saved as PNG in ``report_dir``. Tables show no index
column, counts as integers and the rates of one table in one unit (%); nothing displays a raw dict.

Inputs (all paths relative to the working directory, or absolute)::

    <base_pope_dir>/<set>/answers.jsonl  protocol.json  metrics.json      POPE, base model (required)
    <hadpo_pope_dir>/<set>/...                                            POPE, HA-DPO model (required)
    <base_shr_dir>/metrics.json  judgement.json                           SHR, base (optional)
    <hadpo_shr_dir>/metrics.json  judgement.json                          SHR, HA-DPO (optional)
    <train_dir>/metrics.jsonl                                             DPO training log (optional)
    <rounds_file>  (a pipeline run's rounds.json)                         metrics by round (optional)

POPE labels come from the question file recorded in each set's ``protocol.json`` (or under ``pope_data_root``).
A missing POPE file is a :class:`~hadpo.errors.DataError` naming it; a missing optional part gives a visible
"not available" note naming the missing file (an error with ``require_all``).

Outputs in ``report_dir``: ``pope_bars.png``, ``shr_bars.png``, ``training_curves.png``, ``rounds.png`` (with a
``rounds_file``) and ``summary.json``
(headline numbers for ``reports/index.html``; :func:`headline` shows them as a table). An SHR built on an
incomplete judgement (images the judge left unjudged) is flagged wherever it appears and never becomes a headline
number.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from matplotlib.figure import Figure

from hadpo.errors import DataError
from hadpo.eval.shr.metrics import is_complete
from hadpo.io import atomic_write_json, read_json, read_jsonl_tolerant
from hadpo.manifest import environment
from hadpo.report import benchmarks, plots, rounds, stats, tables
from hadpo.report.config import DashboardConfig
from hadpo.report.html import SUMMARY_FILE, HtmlFragment, note
from hadpo.report.qualitative import read_judgements, recorded_data_root, shr_image_paths, side_by_side
from hadpo.report.training import run_weights

if TYPE_CHECKING:
    from hadpo.display import Table

NOTEBOOK = "08_dashboard"
Config = DashboardConfig

POPE_FIGURE, SHR_FIGURE, TRAINING_FIGURE = "pope_bars.png", "shr_bars.png", "training_curves.png"
ROUNDS_FIGURE = "rounds.png"


class Unavailable(Exception):
    """An optional part of the dashboard has no results; ``path`` is what is missing."""

    def __init__(self, message: str, path: str | Path) -> None:
        super().__init__(message)
        self.path = path


# ---------------------------------------------------------------------------------------------------- POPE
@dataclass(frozen=True)
class PopeResults:
    """POPE for both models: per-set comparisons (in ``pope_sets`` order) and the mean-F1 intervals."""

    comparisons: dict[str, stats.PopeComparison]
    mean_f1: tuple[stats.Interval, stats.Interval]


def _outcomes(cfg: DashboardConfig, run_dir: str, pope_set: str) -> stats.PopeOutcomes:
    return stats.read_pope_set(run_dir, pope_set, data_root=cfg.pope_data_root)


def pope_results(cfg: DashboardConfig) -> PopeResults:
    """Read both models' POPE answers, recompute their metrics, intervals and McNemar's test per set."""
    comparisons: dict[str, stats.PopeComparison] = {}
    base_by_set, adapted_by_set = {}, {}
    for pope_set in cfg.pope_sets:
        base = _outcomes(cfg, cfg.base_pope_dir, pope_set)
        adapted = _outcomes(cfg, cfg.hadpo_pope_dir, pope_set)
        if base.rule != adapted.rule:
            raise DataError(Path(cfg.hadpo_pope_dir) / pope_set / "metrics.json",
                            f"scored with rule {adapted.rule!r} but the base with {base.rule!r}; "
                            "rescore one so both use the same rule", field="rule")
        comparisons[pope_set] = stats.compare_pope(
            base, adapted, n_resamples=cfg.bootstrap_resamples, seed=cfg.seed, confidence=cfg.confidence
        )
        base_by_set[pope_set], adapted_by_set[pope_set] = base, adapted
    kwargs: dict[str, Any] = {"n_resamples": cfg.bootstrap_resamples, "seed": cfg.seed, "confidence": cfg.confidence}
    mean = (stats.mean_f1_interval(base_by_set, **kwargs), stats.mean_f1_interval(adapted_by_set, **kwargs))
    return PopeResults(comparisons=comparisons, mean_f1=mean)


def pope_table(cfg: DashboardConfig, results: PopeResults | None = None) -> Table:
    """POPE per set in the HA-DPO README's layout (base ✗, HA-DPO ✓, Δ), intervals, McNemar p, mean-F1 rows;
    every rate in % (``.frame`` holds the values)."""
    results = results or pope_results(cfg)
    frame = tables.pope_table(results.comparisons, model=cfg.model_name, mean_f1=results.mean_f1)
    level = round(100 * cfg.confidence)
    # The mean-of-sets rows fill only the F1 columns; the others show "—".
    return tables.shown(frame, formats=tables.POPE_FORMATS, caption=(
        f"All rates in %; Δ = HA-DPO − base in percentage points; {level}% bootstrap intervals over questions; "
        "McNemar p from the questions whose correctness changed."))


def pope_figure(cfg: DashboardConfig, results: PopeResults | None = None) -> Figure:
    """Accuracy, F1 and yes-ratio bars per set with interval error bars; saved as ``pope_bars.png``."""
    results = results or pope_results(cfg)
    comps = results.comparisons
    fig = plots.pope_bars(
        {s: c.base_metrics for s, c in comps.items()},
        {s: c.adapted_metrics for s, c in comps.items()},
        base_intervals={s: c.base_intervals for s, c in comps.items()},
        adapted_intervals={s: c.adapted_intervals for s, c in comps.items()},
        labels=(cfg.model_name, f"{cfg.model_name} + HA-DPO"),
    )
    plots.save_figure(fig, Path(cfg.report_dir) / POPE_FIGURE)
    return fig


# ---------------------------------------------------------------------------------------------------- SHR
@dataclass(frozen=True)
class ShrResults:
    """SHR for both models: ``metrics.json`` contents, judgements, and the image-bootstrap intervals."""

    base_metrics: dict[str, Any]
    adapted_metrics: dict[str, Any]
    base_judgements: dict[str, Any]
    adapted_judgements: dict[str, Any]
    base_interval: stats.Interval | None
    adapted_interval: stats.Interval | None
    base_file: Path
    adapted_file: Path


def _shr_files(folder: str | None, which: str) -> tuple[Path, Path]:
    if folder is None:
        raise Unavailable(f"SHR not available: no {which}_shr_dir given", f"{which}_shr_dir")
    metrics, judgement = Path(folder) / "metrics.json", Path(folder) / "judgement.json"
    for path in (metrics, judgement):
        if not path.is_file():
            raise Unavailable(f"SHR not available: {path.absolute()} not found", path)
    return metrics, judgement


def _shr_interval(cfg: DashboardConfig, judgements: dict[str, Any], file: Path) -> stats.Interval | None:
    counts = stats.shr_counts(judgements, file=file)
    if not counts.image_ids:
        return None
    return stats.shr_interval(counts, n_resamples=cfg.bootstrap_resamples, seed=cfg.seed, confidence=cfg.confidence)


def shr_results(cfg: DashboardConfig) -> ShrResults:
    """Read both SHR run folders (raises :class:`Unavailable` naming a missing file)."""
    b_metrics_file, b_judge_file = _shr_files(cfg.base_shr_dir, "base")
    a_metrics_file, a_judge_file = _shr_files(cfg.hadpo_shr_dir, "hadpo")
    metrics = []
    for path in (b_metrics_file, a_metrics_file):
        data = read_json(path)
        if not isinstance(data, dict) or "mean_hal_ratio" not in data:
            raise DataError(path, "expected SHR metrics with a 'mean_hal_ratio' key", field="mean_hal_ratio")
        metrics.append(data)
    b_judge, a_judge = read_judgements(b_judge_file), read_judgements(a_judge_file)
    return ShrResults(
        base_metrics=metrics[0],
        adapted_metrics=metrics[1],
        base_judgements=b_judge,
        adapted_judgements=a_judge,
        base_interval=_shr_interval(cfg, b_judge, b_judge_file),
        adapted_interval=_shr_interval(cfg, a_judge, a_judge_file),
        base_file=b_judge_file,
        adapted_file=a_judge_file,
    )


def _check_required(cfg: DashboardConfig, exc: Unavailable) -> None:
    """With ``require_all``, a missing optional part is an error naming what is missing."""
    if cfg.require_all:
        raise DataError(exc.path, f"{exc} (require_all is set)") from None


def _optional(cfg: DashboardConfig, exc: Unavailable) -> HtmlFragment:
    """The visible note shown in place of a missing optional part."""
    _check_required(cfg, exc)
    return note(str(exc))


def incomplete_judgements(results: ShrResults) -> list[str]:
    """One line per model whose SHR judgement left images unjudged (empty when both are complete)."""
    out = []
    for name, metrics, file in (("base", results.base_metrics, results.base_file),
                                ("HA-DPO", results.adapted_metrics, results.adapted_file)):
        if is_complete(metrics) is False:
            out.append(f"{name}: {tables.judgement_state(metrics)} image judgement(s) in {file.parent}")
    return out


def _incomplete_note(lines: list[str]) -> str:
    return ("SHR built on an incomplete judgement, not a result: " + "; ".join(lines) + ". No SHR headline is "
            "reported; rerun hadpo shr on that folder once the judge works (only the unjudged images are asked).")


def shr_table(cfg: DashboardConfig, results: ShrResults | None = None) -> HtmlFragment:
    """SHR (lower is better) base vs HA-DPO with description length (words and sentences per image) and judged /
    unjudged image counts, then n-gram repetition in a second table; every rate in %.

    A model whose judgement left images unjudged is flagged in the ``Judgement`` column and in a warning above
    the tables.
    """
    try:
        results = results or shr_results(cfg)
    except Unavailable as exc:
        return _optional(cfg, exc)
    frame = tables.shr_table(results.base_metrics, results.adapted_metrics, model=cfg.model_name,
                             base_interval=results.base_interval, adapted_interval=results.adapted_interval)
    formats = tables.shr_formats(frame)
    # Two tables rather than one of 17 columns: the SHR with what it depends on, then how repetitive the text is.
    repetition = [c for c in frame.columns if c.endswith("-gram rep. (%)")]
    main = tables.shown(frame.drop(columns=repetition), formats=formats, caption=(
        "SHR = hallucinated ÷ judged sentences, in %, lower is better; lengths and image counts per model (mean "
        "over judge runs); Δ = HA-DPO − base."))
    repeats = tables.shown(frame[["Model", "HA-DPO", *repetition]], formats=formats, caption=(
        "Repetition: unique ÷ total n-grams over all descriptions, in % (higher = less repetitive)."))
    body = main._repr_html_() + repeats._repr_html_()
    incomplete = incomplete_judgements(results)
    if not incomplete:
        return HtmlFragment(body)
    warning = note(_incomplete_note(incomplete))
    return HtmlFragment(warning.body + body, css=warning.css)


def judge_faults(cfg: DashboardConfig, results: ShrResults | None = None) -> Table | HtmlFragment:
    """The SHR judge's requests and faults for both models (retries, 429s, 5xx, timeouts, re-asks, unjudged), as
    integer counts; "—" where a metrics file records none."""
    try:
        results = results or shr_results(cfg)
    except Unavailable as exc:
        return _optional(cfg, exc)
    frame = tables.judge_table(results.base_metrics, results.adapted_metrics, model=cfg.model_name)
    return tables.shown(frame, formats=tables.judge_formats(frame))


def shr_figure(cfg: DashboardConfig, results: ShrResults | None = None) -> Figure | HtmlFragment:
    """SHR bars with interval error bars and length bars; saved as ``shr_bars.png``."""
    try:
        results = results or shr_results(cfg)
    except Unavailable as exc:
        return _optional(cfg, exc)
    labels = [cfg.model_name, f"{cfg.model_name} + HA-DPO"]
    for i, metrics in enumerate((results.base_metrics, results.adapted_metrics)):
        if is_complete(metrics) is False:
            labels[i] += " (INCOMPLETE judgement)"
    fig = plots.shr_bars(
        tables.shr_row(results.base_metrics), tables.shr_row(results.adapted_metrics),
        base_interval=results.base_interval, adapted_interval=results.adapted_interval,
        labels=(labels[0], labels[1]),
    )
    plots.save_figure(fig, Path(cfg.report_dir) / SHR_FIGURE)
    return fig


def qualitative(cfg: DashboardConfig, results: ShrResults | None = None) -> HtmlFragment:
    """The first ``qualitative_limit`` images described by both models: a thumbnail of each (embedded in the page)
    and both descriptions side by side, hallucinated sentences highlighted."""
    try:
        results = results or shr_results(cfg)
    except Unavailable as exc:
        return _optional(cfg, exc)
    # Both runs describe the same SHR images; either one's recorded data root finds their files.
    data_root = recorded_data_root(results.base_metrics) or recorded_data_root(results.adapted_metrics)
    ids = [str(i) for i in results.base_judgements.get(cfg.qualitative_run, {})]
    return side_by_side(
        results.base_judgements, results.adapted_judgements, run=cfg.qualitative_run, limit=cfg.qualitative_limit,
        labels=(cfg.model_name, f"{cfg.model_name} + HA-DPO"), base_file=results.base_file,
        adapted_file=results.adapted_file, images=shr_image_paths(data_root, ids),
    )


# ---------------------------------------------------------------------------------------------------- training
def training_records(cfg: DashboardConfig) -> list[dict[str, Any]]:
    """The training run's ``metrics.jsonl`` records (raises :class:`Unavailable` when absent or empty)."""
    if cfg.train_dir is None:
        raise Unavailable("training curves not available: no train_dir given", "train_dir")
    path = Path(cfg.train_dir) / "metrics.jsonl"
    if not path.is_file():
        raise Unavailable(f"training curves not available: {path.absolute()} not found", path)
    # A run still in progress may have a torn last line; the tolerant reader drops it.
    records = read_jsonl_tolerant(path)
    if not records:
        raise Unavailable(f"training curves not available: {path} has no records yet", path)
    for i, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise DataError(path, f"expected a JSON object, got {type(record).__name__}", record=i)
        if not isinstance(record.get("step"), int):
            raise DataError(path, f"expected an integer step, got {record.get('step')!r}", record=i, field="step")
    return records


def training_curves(cfg: DashboardConfig) -> Figure | HtmlFragment:
    """DPO loss, each extra loss term (conditional, anchor, SFT: unweighted, its weight from the run's config in
    the title), total loss, rewards chosen/rejected, margins, accuracy, log-probs, gradient norm and learning rate,
    each panel titled with what it plots; saved as ``training_curves.png``."""
    try:
        records = training_records(cfg)
    except Unavailable as exc:
        return _optional(cfg, exc)
    assert cfg.train_dir is not None  # training_records raised Unavailable otherwise
    fig = plots.training_curves(records, smooth=cfg.smooth, title=f"DPO training — {cfg.run_name}",
                                weights=run_weights(cfg.train_dir))
    plots.save_figure(fig, Path(cfg.report_dir) / TRAINING_FIGURE)
    return fig


#: The speed a training run logs per logging step (hadpo.train.metrics.Throughput), with their table labels.
THROUGHPUT_KEYS = (
    ("perf/seconds_per_step", "seconds_per_step", "Seconds / step"),
    ("perf/pairs_per_second", "pairs_per_second", "Pairs / s"),
    ("perf/examples_per_second", "examples_per_second", "Examples / s"),
    ("perf/tokens_per_second", "tokens_per_second", "LM tokens / s (image tokens included)"),
)


def throughput(records: list[dict[str, Any]]) -> dict[str, float] | None:
    """The run's median speed over its logged steps (None for a log written before the kit recorded it)."""
    import statistics

    out = {}
    for key, name, _ in THROUGHPUT_KEYS:
        values = [float(r[key]) for r in records if isinstance(r.get(key), (int, float))]
        if values:
            out[name] = statistics.median(values)
    return out or None


def training_throughput(cfg: DashboardConfig) -> Table | HtmlFragment:
    """The training run's speed: median seconds per step, pairs (or examples) and language-model tokens per second."""
    try:
        records = training_records(cfg)
    except Unavailable as exc:
        return _optional(cfg, exc)
    speed = throughput(records)
    if speed is None:
        return note(f"{cfg.train_dir}: the training log records no speed (written before the kit logged it)")
    labels = {name: label for _, name, label in THROUGHPUT_KEYS}
    frame = pd.DataFrame([{"Statistic": f"median over {len(records)} logged steps",
                           **{labels[k]: v for k, v in speed.items()}}])
    return tables.shown(frame, formats={label: "{:.3f}" if name == "seconds_per_step" else "{:,.1f}"
                                        for _, name, label in THROUGHPUT_KEYS})


# ---------------------------------------------------------------------------------------------------- rounds
def rounds_results(cfg: DashboardConfig) -> rounds.RoundsResults:
    """Every model of the run's ``rounds_file`` (round 0: the base model) with its measures and intervals (raises
    :class:`Unavailable` when no rounds_file is given or it does not exist)."""
    if cfg.rounds_file is None:
        raise Unavailable("metrics by round not available: no rounds_file given", "rounds_file")
    if not Path(cfg.rounds_file).is_file():
        raise Unavailable(f"metrics by round not available: {Path(cfg.rounds_file).absolute()} not found",
                          cfg.rounds_file)
    results = rounds.by_round(cfg.rounds_file, pope_sets=cfg.pope_sets, pope_data_root=cfg.pope_data_root,
                              n_resamples=cfg.bootstrap_resamples, seed=cfg.seed, confidence=cfg.confidence)
    missing = [line for line in results.notes() if "INCOMPLETE" not in line]
    if missing and cfg.require_all:
        raise DataError(cfg.rounds_file, "; ".join(missing) + " (require_all is set)")
    return results


def _no_rounds(cfg: DashboardConfig) -> HtmlFragment | None:
    """What the by-round cells show for a run without rounds (no rounds_file): one muted line, no error."""
    if cfg.rounds_file is not None:
        return None
    return HtmlFragment('<p class="hadpo-muted">No rounds_file given: this run has no metrics by round.</p>')


def _rounds_or_note(cfg: DashboardConfig) -> rounds.RoundsResults | HtmlFragment:
    """The run's results by round, or what a by-round cell shows instead (no rounds_file, or results missing)."""
    empty = _no_rounds(cfg)
    if empty is not None:
        return empty
    try:
        return rounds_results(cfg)
    except Unavailable as exc:
        return _optional(cfg, exc)


def rounds_table(cfg: DashboardConfig, results: rounds.RoundsResults | None = None) -> HtmlFragment:
    """One row per round (round 0 = the base model): POPE adversarial precision and yes-ratio, mean POPE F1, SHR,
    CHAIR_i, CHAIR_s, AMBER CHAIR and Hal, MMHal-Bench score and hallucination rate, each ``value [interval]``, and
    the round's last reward accuracy; missing and incomplete results marked in their cells and listed below."""
    results = results or _rounds_or_note(cfg)
    if isinstance(results, HtmlFragment):
        return results
    shown = tables.shown(rounds.table_frame(results), caption=rounds.caption(cfg.confidence))
    notes = rounds.notes_html(results.notes())
    return HtmlFragment(shown._repr_html_() + notes, css=note("").css if notes else "")


def rounds_figure(cfg: DashboardConfig, results: rounds.RoundsResults | None = None) -> Figure | HtmlFragment:
    """One small panel per measure against the round, the bootstrap interval as error bars (incomplete values
    hollow, missing ones marked); saved as ``rounds.png``."""
    results = results or _rounds_or_note(cfg)
    if isinstance(results, HtmlFragment):
        return results
    fig = rounds.figure(results, title=f"Metrics by round — {results.manifest.name}")
    plots.save_figure(fig, Path(cfg.report_dir) / ROUNDS_FIGURE)
    return fig


# ---------------------------------------------------------------------------------------------------- published
# ---------------------------------------------------------------------------------------- CHAIR, AMBER, MMHal
def benchmark_comparisons(cfg: DashboardConfig) -> tuple[list[benchmarks.Comparison], list[str]]:
    """Base vs HA-DPO on every measure of the benchmarks whose run folders hold results, and notes on the rest
    (a configured benchmark without results is an error with ``require_all``)."""
    comparisons, notes = benchmarks.compare_runs(cfg.benchmark_dirs, n_resamples=cfg.bootstrap_resamples,
                                                 seed=cfg.seed, confidence=cfg.confidence)
    configured = [n for n in notes if not n.endswith("no run folders configured")]
    if configured and cfg.require_all:
        raise DataError(cfg.report_dir, "; ".join(configured))
    return comparisons, configured


def benchmarks_table(cfg: DashboardConfig) -> HtmlFragment:
    """CHAIR, AMBER and MMHal-Bench, base vs HA-DPO: each measure with bootstrap intervals, the paired Δ interval
    and the paired test (:mod:`hadpo.report.benchmarks`)."""
    comparisons, notes = benchmark_comparisons(cfg)
    parts = []
    css = ""
    if comparisons:
        base_label, adapted_label = cfg.model_name, f"{cfg.model_name} + HA-DPO"
        frame = pd.DataFrame(benchmarks.comparison_rows(comparisons, base_label=base_label,
                                                        adapted_label=adapted_label, confidence=cfg.confidence))
        level = f"{round(100 * cfg.confidence)}% CI"
        shown = tables.shown(frame, formats={base_label: tables.PERCENT, adapted_label: tables.PERCENT,
                                             "Δ": tables.PERCENT, "Items": tables.COUNT}, caption=(
            f"Rates in %; Δ = HA-DPO − base; {level}: bootstrap over items, Δ's paired (same items for both "
            "models). Paired test: McNemar on per-item 0/1 outcomes, sign test on graded ones, none on a ratio of "
            "sums (its Δ interval instead)."))
        parts.append(shown._repr_html_())
    for message in notes or ([] if comparisons else ["no CHAIR, AMBER or MMHal-Bench results configured"]):
        fragment = note(message)
        parts.append(fragment.body)
        css = fragment.css
    return HtmlFragment("".join(parts), css=css)


def published_reference() -> HtmlFragment:
    """The HA-DPO README's LLaVA-1.5-7B POPE and SHR numbers, labelled as a published reference."""
    base, adapted = tables.published_mean_f1()
    body = (
        f"<p><b>{tables.PUBLISHED_LABEL}.</b> Mean F1 over the three sets: {base:.2f} → {adapted:.2f}. "
        "All rates in %.</p>"
        + tables.shown(tables.published_pope_table(), formats=tables.POPE_FORMATS)._repr_html_()
        + tables.shown(tables.published_shr_table(), formats={"SHR (%)": "{:.1f}"})._repr_html_()
        + f'<p class="hadpo-muted">{tables.PUBLISHED_NOTE}</p>'
    )
    return HtmlFragment(body, title="Published reference: LLaVA-1.5-7B (HA-DPO README)")


# ---------------------------------------------------------------------------------------------------- summary
def _arrow(base: float, adapted: float) -> str:
    return f"{base:.2f} → {adapted:.2f} ({adapted - base:+.2f})"


def summary(
    cfg: DashboardConfig, *, pope: PopeResults | None = None, shr: ShrResults | None = None
) -> dict[str, Any]:
    """Headline numbers and the full statistics as plain data, written to ``<report_dir>/summary.json``.

    ``headline`` (label → text) is what ``reports/index.html`` shows; ``notes`` lists the optional parts
    that were not available. With a ``rounds_file``, ``rounds`` holds the metrics by round
    (:meth:`hadpo.report.rounds.RoundsResults.to_dict`; None when the manifest is missing); without one there is
    no ``rounds`` key. Pass already computed ``pope`` / ``shr`` results to skip recomputing them.
    """
    pope = pope or pope_results(cfg)
    notes: list[str] = []
    out: dict[str, Any] = {
        "run_name": cfg.run_name,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "config": cfg.to_dict(),
        "environment": environment(),
    }
    out["pope"] = {
        s: {
            "base": {**c.base_metrics, "intervals": {k: v.to_dict() for k, v in c.base_intervals.items()}},
            "hadpo": {**c.adapted_metrics, "intervals": {k: v.to_dict() for k, v in c.adapted_intervals.items()}},
            "mcnemar": c.mcnemar.to_dict(),
        }
        for s, c in pope.comparisons.items()
    }
    base_f1, adapted_f1 = pope.mean_f1
    out["pope_mean_f1"] = {"base": base_f1.to_dict(), "hadpo": adapted_f1.to_dict(),
                           "delta": adapted_f1.estimate - base_f1.estimate}
    headline = {
        f"POPE mean F1 over {len(pope.comparisons)} set(s)": _arrow(100 * base_f1.estimate, 100 * adapted_f1.estimate)
    }
    try:
        shr = shr or shr_results(cfg)
    except Unavailable as exc:
        _check_required(cfg, exc)
        notes.append(str(exc))
        out["shr"] = None
    else:
        rows = (tables.shr_row(shr.base_metrics), tables.shr_row(shr.adapted_metrics))
        out["shr"] = {
            name: {"shr": _none_if_nan(row["SHR (%)"]), "words_per_image": row["Words / image"],
                   "sents_per_image": row["Sentences / image"], "unjudged_images": _none_if_nan(row["Unjudged images"]),
                   "complete": is_complete(metrics), "judge": metrics.get("judge"),
                   "interval": interval.to_dict() if interval else None}
            for name, row, interval, metrics in (("base", rows[0], shr.base_interval, shr.base_metrics),
                                                 ("hadpo", rows[1], shr.adapted_interval, shr.adapted_metrics))
        }
        incomplete = incomplete_judgements(shr)
        if incomplete:
            # An SHR from a judge that left images unjudged is not a result: no headline number from it.
            headline["SHR (%)"] = "not reported: judgement incomplete (" + "; ".join(incomplete) + ")"
            notes.append(_incomplete_note(incomplete))
        else:
            headline["SHR (%)"] = _arrow(rows[0]["SHR (%)"], rows[1]["SHR (%)"])
    try:
        records = training_records(cfg)
    except Unavailable as exc:
        _check_required(cfg, exc)
        notes.append(str(exc))
        out["training"] = None
    else:
        last = records[-1]
        out["training"] = {"steps": last["step"], "last": last, "throughput": throughput(records)}
        if last.get("rewards/accuracies") is not None:
            # In %, as every other headline number.
            accuracy = 100 * float(last["rewards/accuracies"])
            headline["final reward accuracy (%)"] = f"{accuracy:.1f} at step {last['step']}"
    comparisons, bench_notes = benchmark_comparisons(cfg)
    notes += bench_notes
    if cfg.rounds_file is not None:
        try:
            by_round = rounds_results(cfg)
        except Unavailable as exc:
            _check_required(cfg, exc)
            notes.append(str(exc))
            out["rounds"] = None
        else:
            out["rounds"] = by_round.to_dict()
            notes += [f"metrics by round: {line}" for line in by_round.notes()]
    out["benchmarks"] = [c.to_dict() for c in comparisons]
    for c in comparisons:
        if c.base.headline:
            f = c.base.factor
            headline[_measure_label(c.base.benchmark, c.base.name)] = _arrow(f * c.base_interval.estimate,
                                                                   f * c.adapted_interval.estimate)
    out["headline"] = headline
    out["notes"] = notes
    atomic_write_json(Path(cfg.report_dir) / SUMMARY_FILE, out)
    return out


def _measure_label(benchmark: str, measure: str) -> str:
    """``CHAIR_i (%)`` for CHAIR's, ``AMBER Hal (%)`` for AMBER's: the benchmark's name once."""
    return measure if measure.upper().startswith(benchmark.upper()) else f"{benchmark} {measure}"


def _none_if_nan(value: float) -> float | None:
    return None if isinstance(value, float) and math.isnan(value) else value


def _interval_cell(interval: Mapping[str, Any] | None, factor: float = 100.0) -> str:
    if not interval:
        return ""
    return f"[{factor * interval['low']:.2f}, {factor * interval['high']:.2f}]"


def _headline_rows(cfg: DashboardConfig, out: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Base vs HA-DPO rows of the headline table (rates in %) from :func:`summary`'s data."""
    base_label, adapted_label = cfg.model_name, f"{cfg.model_name} + HA-DPO"
    level = f"{round(100 * cfg.confidence)}% CI"
    f1 = out["pope_mean_f1"]
    rows = [{
        "Measure": f"POPE F1, mean of {len(out['pope'])} set(s) (%)", "Better": "higher",
        base_label: 100 * f1["base"]["estimate"], adapted_label: 100 * f1["hadpo"]["estimate"],
        "Δ": 100 * f1["delta"], f"{level} base": _interval_cell(f1["base"]), f"{level} HA-DPO": _interval_cell(
            f1["hadpo"]), "Note": "",
    }]
    shr = out.get("shr")
    if shr is not None:
        row: dict[str, Any] = {"Measure": "SHR (%)", "Better": "lower"}
        complete = shr["base"]["complete"] is not False and shr["hadpo"]["complete"] is not False
        base_value, adapted_value = shr["base"]["shr"], shr["hadpo"]["shr"]
        if complete and base_value is not None and adapted_value is not None:
            row.update({base_label: base_value, adapted_label: adapted_value, "Δ": adapted_value - base_value,
                        f"{level} base": _interval_cell(shr["base"]["interval"]),
                        f"{level} HA-DPO": _interval_cell(shr["hadpo"]["interval"]), "Note": ""})
        else:
            # An incomplete judgement is not a result: no number here, the SHR section shows why.
            row.update({base_label: math.nan, adapted_label: math.nan, "Δ": math.nan, f"{level} base": "",
                        f"{level} HA-DPO": "", "Note": "not reported: judgement incomplete"})
        rows.append(row)
    for c in out.get("benchmarks") or []:
        if c["headline"]:
            f = c["factor"]
            rows.append({"Measure": _measure_label(c["benchmark"], c["measure"]), "Better": c["better"],
                         base_label: f * c["base"]["estimate"], adapted_label: f * c["hadpo"]["estimate"],
                         "Δ": f * c["delta"]["estimate"], f"{level} base": _interval_cell(c["base"], f),
                         f"{level} HA-DPO": _interval_cell(c["hadpo"], f), "Note": ""})
    return rows


def headline(cfg: DashboardConfig, *, pope: PopeResults | None = None, shr: ShrResults | None = None) -> HtmlFragment:
    """The dashboard at a glance: mean POPE F1 and SHR, base vs HA-DPO (in %, with Δ and intervals), the last
    training step's reward accuracy and margin, and a note per missing part.

    Writes ``<report_dir>/summary.json`` (:func:`summary`, the index page's source) and shows it as tables,
    never as a dict.
    """
    out = summary(cfg, pope=pope, shr=shr)
    level = f"{round(100 * cfg.confidence)}% CI"
    frame = pd.DataFrame(_headline_rows(cfg, out))
    if not frame["Note"].astype(bool).any():
        frame = frame.drop(columns=["Note"])  # an empty column is only noise
    numbers = [c for c in frame.columns if c in (cfg.model_name, f"{cfg.model_name} + HA-DPO", "Δ")]
    # A measure with its own unit (MMHal-Bench's 0-6 score) says so in its name; the rest are rates in %.
    own_units = [_measure_label(c["benchmark"], c["measure"]) for c in out.get("benchmarks") or []
                 if c["headline"] and c["factor"] != 100]
    unit_note = f" ({', '.join(own_units)} on its own scale)" if own_units else ""
    shown = tables.shown(frame, formats=dict.fromkeys(numbers, tables.PERCENT), caption=(
        f"Rates in %{unit_note}; Δ = HA-DPO − base, in percentage points for rates; {level}: bootstrap intervals."))
    parts = [shown._repr_html_()]
    training = out.get("training")
    if training is not None:
        last = training["last"]
        facts = [f"{training['steps']} optimiser steps logged"]
        if isinstance(last.get("rewards/accuracies"), (int, float)):
            facts.append(f"reward accuracy at the last step {100 * last['rewards/accuracies']:.1f} %")
        if isinstance(last.get("rewards/margins"), (int, float)):
            facts.append(f"reward margin {last['rewards/margins']:.3f}")
        parts.append(f"<p><b>Training:</b> {html.escape('; '.join(facts))}.</p>")
    css = ""
    for message in out["notes"]:
        fragment = note(message)
        parts.append(fragment.body)
        css = fragment.css
    from hadpo.display import shown_value

    written = shown_value(str((Path(cfg.report_dir) / SUMMARY_FILE).absolute()))
    parts.append(f'<p class="hadpo-muted">Also written to <code>{html.escape(written)}</code>, whose headline the '
                 "reports index shows.</p>")
    return HtmlFragment("".join(parts), css=css)


def run(cfg: DashboardConfig) -> dict[str, Any]:
    """The whole dashboard without a notebook: every figure saved and ``summary.json`` written; returns the summary."""
    pope = pope_results(cfg)
    pope_figure(cfg, pope)
    try:
        shr: ShrResults | None = shr_results(cfg)
    except Unavailable as exc:
        _check_required(cfg, exc)
        shr = None
    if shr is not None:
        shr_figure(cfg, shr)
    training_curves(cfg)
    if cfg.rounds_file is not None:
        rounds_figure(cfg)
    return summary(cfg, pope=pope, shr=shr)
