"""Metrics by round of a pipeline run: its rounds manifest read into one model per round, each model's measures with
their bootstrap intervals, as a table, a figure (``rounds.png``) and plain data for ``summary.json``.

A pipeline run writes ``<runs_dir>/<name>/rounds.json``::

    {"name": "demo-rounds", "rounds": 2, "start_from": "previous", "round_pairs": "new",
     "base": {"pope": "runs/x/pope/base", "shr": ..., "chair": ..., "amber": ..., "mmhal": ...},
     "per_round": [{"round": 1, "mining_dir": ..., "train_dir": "runs/x/round-1/train", "model": ..., "adapter": ...,
                    "evaluations": {"pope": "runs/x/round-1/pope/hadpo", "shr": ..., ...}}, ...]}

Round 0 is the base model (``base``), round ``r`` the model trained in round ``r``. A benchmark absent from
``base`` / ``evaluations`` is not in the run ("not run"); a folder named there that holds no results yet (a run
still going) is "missing", never a number. A relative path in the manifest is relative to the project root
(:func:`hadpo.paths.project_root`, seen from the manifest's folder).

The measures (:data:`COLUMNS`) and their intervals are the dashboard's own, computed by the same code with the
same seeds, so a single-round run's round 0 and round 1 show the numbers the dashboard's tables show for the base
and HA-DPO models: POPE adversarial precision and yes-ratio (:func:`hadpo.report.stats.pope_intervals`), the mean
F1 over the POPE sets present (:func:`~hadpo.report.stats.mean_f1_interval`), SHR
(:func:`~hadpo.report.stats.shr_interval`), CHAIR_i, CHAIR_s, AMBER CHAIR and Hal, MMHal-Bench score and
hallucination rate (:func:`hadpo.report.benchmarks.bootstrap`), and the round's last logged reward accuracy (a
training-batch number: no interval). A result whose judge left items unjudged (SHR, MMHal-Bench) or whose run is
marked incomplete is computed over the items it has and marked ``INCOMPLETE`` wherever it is shown.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from hadpo.errors import DataError
from hadpo.eval.shr.metrics import is_complete
from hadpo.io import read_json, read_jsonl_tolerant
from hadpo.paths import PARAMS_DIR, project_root, resolve_path
from hadpo.report import benchmarks, plots, stats, tables
from hadpo.report.qualitative import read_judgements

MANIFEST_FILE = "rounds.json"
#: The benchmark keys of a manifest's ``base`` and ``evaluations``, in the table's order.
BENCHMARK_KEYS = ("pope", "shr", "chair", "amber", "mmhal")
#: The readers of :data:`hadpo.report.benchmarks.MEASURES` by manifest key.
BENCHMARK_NAMES = {"chair": "CHAIR", "amber": "AMBER", "mmhal": "MMHal-Bench"}
#: What a source is called in notes.
SOURCE_TITLES = {"pope": "POPE", "shr": "SHR", "chair": "CHAIR", "amber": "AMBER", "mmhal": "MMHal-Bench",
                 "train": "training log"}

#: A cell's state: a value (``OK``, or ``INCOMPLETE``: over the items judged so far, not a result), or why none.
OK, INCOMPLETE, MISSING, NOT_RUN, NOT_APPLICABLE = "ok", "incomplete", "missing", "not run", "n/a"


@dataclass(frozen=True)
class Column:
    """One measure of the by-round table: ``source`` is the manifest's benchmark key (or ``train``), ``measure``
    the name of the :class:`~hadpo.report.benchmarks.Measure` it is for CHAIR, AMBER and MMHal-Bench, ``factor``
    the display scale (100 for a rate in %)."""

    key: str
    label: str
    better: str
    source: str
    factor: float = 100.0
    measure: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {"key": self.key, "label": self.label, "better": self.better, "factor": self.factor}


#: The measures by round, in column order.
COLUMNS: tuple[Column, ...] = (
    Column("pope_adv_precision", "POPE adv. precision (%)", "higher", "pope"),
    Column("pope_adv_yes_ratio", "POPE adv. yes-ratio (%)", "closer to 50", "pope"),
    Column("pope_mean_f1", "POPE mean F1 (%)", "higher", "pope"),
    Column("shr", "SHR (%)", "lower", "shr"),
    Column("chair_i", "CHAIR_i (%)", "lower", "chair", measure="CHAIR_i (%)"),
    Column("chair_s", "CHAIR_s (%)", "lower", "chair", measure="CHAIR_s (%)"),
    Column("amber_chair", "AMBER CHAIR (%)", "lower", "amber", measure="CHAIR (%)"),
    Column("amber_hal", "AMBER Hal (%)", "lower", "amber", measure="Hal (%)"),
    Column("mmhal_score", "MMHal-Bench score (0-6)", "higher", "mmhal", factor=1.0, measure="score (0-6)"),
    Column("mmhal_hal_rate", "MMHal-Bench hallucination rate (%)", "lower", "mmhal",
           measure="hallucination rate (%)"),
    Column("reward_accuracy", "Reward accuracy, last step (%)", "higher", "train"),
)
COLUMNS_BY_KEY = {c.key: c for c in COLUMNS}


# ---------------------------------------------------------------------------------------------------- cells
@dataclass(frozen=True)
class Cell:
    """One measure of one model: its value (fraction, or the measure's own scale) with its bootstrap interval,
    or the state saying why there is none. ``note`` says more (what is missing, how incomplete)."""

    state: str
    value: float | None = None
    interval: stats.Interval | None = None
    note: str = ""
    items: int | None = None

    @property
    def has_value(self) -> bool:
        return self.value is not None and self.state in (OK, INCOMPLETE)

    def text(self, factor: float = 100.0, digits: int = 2) -> str:
        """``value [low, high]`` in display units, marked when incomplete; the state when there is no value."""
        if not self.has_value:
            return {MISSING: "missing", NOT_RUN: "not run", NOT_APPLICABLE: "—"}.get(self.state, self.state)
        assert self.value is not None
        out = f"{factor * self.value:.{digits}f}"
        if self.interval is not None:
            out += f" [{factor * self.interval.low:.{digits}f}, {factor * self.interval.high:.{digits}f}]"
        if self.state == INCOMPLETE:
            out += f" ({self.note or 'INCOMPLETE'})"
        elif self.note:
            out += f" ({self.note})"
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON: ``value`` and ``interval`` as fractions (or the measure's own scale)."""
        return {"state": self.state, "value": self.value,
                "interval": self.interval.to_dict() if self.interval is not None else None,
                "note": self.note, "items": self.items}


def _from_interval(interval: stats.Interval, *, state: str = OK, note: str = "", items: int | None = None) -> Cell:
    return Cell(state, interval.estimate, interval, note, items)


# ---------------------------------------------------------------------------------------------------- manifest
@dataclass(frozen=True)
class ModelRun:
    """One model of a run: its evaluation folders (benchmark key → absolute folder; a benchmark not in the run is
    absent) and its training folder; ``fields`` names the manifest field behind each, for error messages."""

    label: str
    round: int
    folders: Mapping[str, str]
    train_dir: str | None
    manifest: Path
    fields: Mapping[str, str] = field(default_factory=dict)

    @property
    def source(self) -> str:
        """``<manifest>#<round>``, as the comparison tool names it."""
        return f"{self.manifest}#{self.round}"

    def where(self, key: str) -> str:
        """The manifest field that names ``key``'s folder, as an error message says it."""
        return f"{self.manifest}, field '{self.fields.get(key, key)}'"


@dataclass(frozen=True)
class Manifest:
    """A read ``rounds.json``: round 0 (the base model) first, then every round in order."""

    path: Path
    name: str
    models: tuple[ModelRun, ...]

    @property
    def rounds(self) -> list[int]:
        return [m.round for m in self.models]

    def model(self, round_: int) -> ModelRun | None:
        """The model of ``round_`` (0: the base model), or None when the run has no such round."""
        return next((m for m in self.models if m.round == round_), None)


def manifest_root(path: str | Path) -> Path:
    """The folder a manifest's relative paths are relative to: the project root seen from the manifest's folder
    (``$HADPO_ROOT``, or the nearest folder above it holding ``params/``), else the working directory's."""
    root = project_root(Path(path).absolute().parent)
    return root if (root / PARAMS_DIR).is_dir() else project_root()


def _folder_map(data: Any, path: Path, where: str, root: Path) -> tuple[dict[str, str], dict[str, str]]:
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise DataError(path, f"expected an object of benchmark → folder, got {type(data).__name__}", field=where)
    folders, fields = {}, {}
    for key, value in data.items():
        if not isinstance(value, str) or not value:
            raise DataError(path, f"expected a folder path, got {value!r}", field=f"{where}.{key}")
        folders[key] = resolve_path(value, root)
        fields[key] = f"{where}.{key}"
    return folders, fields


def read_manifest(path: str | Path) -> Manifest:
    """Read a pipeline run's ``rounds.json``; a missing file or a malformed field is a :class:`DataError` naming
    it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path.absolute(), "rounds manifest not found (written by a pipeline run as "
                                         f"<runs_dir>/<name>/{MANIFEST_FILE})")
    data = read_json(path)
    if not isinstance(data, dict):
        raise DataError(path, f"expected a JSON object, got {type(data).__name__}")
    root = manifest_root(path)
    name = data.get("name", path.parent.name)
    if not isinstance(name, str):
        raise DataError(path, f"expected a string, got {name!r}", field="name")
    base_folders, base_fields = _folder_map(data.get("base"), path, "base", root)
    models = [ModelRun("base", 0, base_folders, None, path, base_fields)]
    per_round = data.get("per_round")
    if not isinstance(per_round, list):
        raise DataError(path, f"expected a list of rounds, got {type(per_round).__name__}", field="per_round")
    for i, entry in enumerate(per_round):
        where = f"per_round[{i}]"
        if not isinstance(entry, dict):
            raise DataError(path, f"expected an object, got {type(entry).__name__}", field=where)
        number = entry.get("round")
        if not isinstance(number, int) or isinstance(number, bool) or number < 1:
            raise DataError(path, f"expected a round number >= 1, got {number!r}", field=f"{where}.round")
        if any(m.round == number for m in models):
            raise DataError(path, f"round {number} is listed twice", field=f"{where}.round")
        folders, fields = _folder_map(entry.get("evaluations"), path, f"{where}.evaluations", root)
        train_dir = entry.get("train_dir")
        if train_dir is not None and (not isinstance(train_dir, str) or not train_dir):
            raise DataError(path, f"expected a folder path, got {train_dir!r}", field=f"{where}.train_dir")
        fields["train"] = f"{where}.train_dir"
        models.append(ModelRun(f"round {number}", number, folders,
                               resolve_path(train_dir, root) if train_dir else None, path, fields))
    models[1:] = sorted(models[1:], key=lambda m: m.round)
    return Manifest(path=path, name=name, models=tuple(models))


# ---------------------------------------------------------------------------------------------------- one model
@dataclass(frozen=True)
class ModelResults:
    """One model's per-item results, read once: what its cells (and a comparison's paired differences) are
    computed from. ``states`` holds, per source not read as complete, ``(state, note)``."""

    model: ModelRun
    pope: dict[str, stats.PopeOutcomes]
    shr: stats.ShrCounts | None
    measures: dict[str, list[benchmarks.Measure]]
    reward_accuracy: tuple[float, int] | None
    states: dict[str, tuple[str, str]]

    def state(self, source: str) -> tuple[str, str]:
        return self.states.get(source, (OK, ""))


def _missing(model: ModelRun, key: str, message: str, path: str | Path, *, strict: bool) -> tuple[str, str]:
    if strict:
        raise DataError(Path(path).absolute(), f"{message} (named by {model.where(key)})")
    return MISSING, f"{message}: {path}"


def _read_pope(model: ModelRun, folder: str, pope_sets: Sequence[str], data_root: str | None, *,
               strict: bool) -> tuple[dict[str, stats.PopeOutcomes], tuple[str, str] | None]:
    present = [s for s in pope_sets if stats.has_pope_set(folder, s)]
    if not present:
        return {}, _missing(model, "pope", f"no finished POPE set ({', '.join(pope_sets)}) yet", folder,
                            strict=strict)
    return {s: stats.read_pope_set(folder, s, data_root=data_root) for s in present}, None


def _read_shr(model: ModelRun, folder: str, *, strict: bool) -> tuple[stats.ShrCounts | None, tuple[str, str] | None]:
    metrics_file, judgement_file = Path(folder) / "metrics.json", Path(folder) / "judgement.json"
    for path in (metrics_file, judgement_file):
        if not path.is_file():
            return None, _missing(model, "shr", f"no SHR results yet ({path.name} not found)", folder, strict=strict)
    metrics = read_json(metrics_file)
    if not isinstance(metrics, dict):
        raise DataError(metrics_file, f"expected a JSON object, got {type(metrics).__name__}")
    counts = stats.shr_counts(read_judgements(judgement_file), file=judgement_file)
    if is_complete(metrics) is False:
        return counts, (INCOMPLETE, tables.judgement_state(metrics))
    return counts, None


def _read_benchmark(model: ModelRun, key: str, folder: str, *,
                    strict: bool) -> tuple[list[benchmarks.Measure], tuple[str, str] | None]:
    metrics_file, scores_file = Path(folder) / benchmarks.METRICS_FILE, Path(folder) / benchmarks.SCORES_FILE
    for path in (metrics_file, scores_file):
        if not path.is_file():
            return [], _missing(model, key, f"no {SOURCE_TITLES[key]} results yet ({path.name} not found)", folder,
                                strict=strict)
    metrics = read_json(metrics_file)
    if not isinstance(metrics, dict):
        raise DataError(metrics_file, f"expected a JSON object, got {type(metrics).__name__}")
    measures = benchmarks.MEASURES[BENCHMARK_NAMES[key]](folder, incomplete_ok=True)
    if metrics.get("complete") is not False:
        return measures, None
    if key == "mmhal":
        unjudged = sum(1 for r in benchmarks.read_scores(folder, incomplete_ok=True) if r.get("rating") is None)
        return measures, (INCOMPLETE, f"INCOMPLETE: {unjudged} unjudged")
    return measures, (INCOMPLETE, "INCOMPLETE: run not finished")


def _read_training(model: ModelRun) -> tuple[tuple[float, int] | None, tuple[str, str] | None]:
    if model.round == 0:
        return None, (NOT_APPLICABLE, "the base model is not trained here")
    if model.train_dir is None:
        return None, (NOT_RUN, "no train_dir in the manifest")
    path = Path(model.train_dir) / "metrics.jsonl"
    records = [r for r in read_jsonl_tolerant(path) if isinstance(r, dict)]
    logged = [r for r in records if isinstance(r.get("rewards/accuracies"), (int, float))
              and not isinstance(r.get("rewards/accuracies"), bool)]
    if not logged:
        what = "not found" if not path.is_file() else "logs no reward accuracy yet"
        return None, (MISSING, f"training log {what}: {path}")
    last = logged[-1]
    return (float(last["rewards/accuracies"]), int(last.get("step", len(records)))), None


def read_model(model: ModelRun, *, pope_sets: Sequence[str] = ("random", "popular", "adversarial"),
               pope_data_root: str | None = None, strict: bool = False) -> ModelResults:
    """Every result of one model. A folder without results is marked missing, or with ``strict`` a
    :class:`DataError` naming the folder and the manifest field behind it; a malformed file is always one."""
    states: dict[str, tuple[str, str]] = {}
    pope: dict[str, stats.PopeOutcomes] = {}
    shr: stats.ShrCounts | None = None
    measures: dict[str, list[benchmarks.Measure]] = {}
    for key in BENCHMARK_KEYS:
        folder = model.folders.get(key)
        state: tuple[str, str] | None
        if folder is None:
            state = (NOT_RUN, f"{SOURCE_TITLES[key]} is not in this run")
        elif not Path(folder).is_dir():
            state = _missing(model, key, f"{SOURCE_TITLES[key]} evaluation folder not found", folder, strict=strict)
        elif key == "pope":
            pope, state = _read_pope(model, folder, pope_sets, pope_data_root, strict=strict)
        elif key == "shr":
            shr, state = _read_shr(model, folder, strict=strict)
        else:
            measures[key], state = _read_benchmark(model, key, folder, strict=strict)
        if state is not None:
            states[key] = state
    reward, state = _read_training(model)
    if state is not None:
        states["train"] = state
    return ModelResults(model, pope, shr, measures, reward, states)


#: Which of the two bootstrap streams of :func:`hadpo.report.benchmarks.compare` a model's interval uses: the
#: base model's (0) or the adapted one's (1), so the intervals equal the dashboard's benchmark table's.
BASE_STREAM, ADAPTED_STREAM = 0, 1


def benchmark_seed(seed: int, key: str, position: int) -> int:
    """The seed of the ``position``-th measure of benchmark ``key``, as :func:`~hadpo.report.benchmarks.compare_runs`
    derives it."""
    k = list(benchmarks.MEASURES).index(BENCHMARK_NAMES[key])
    return stats._sub_seed(seed, 100 * k + position)


def model_cells(results: ModelResults, *, n_resamples: int, seed: int, confidence: float,
                adapted: bool | None = None) -> dict[str, Cell]:
    """Every :data:`COLUMNS` measure of one model with its bootstrap interval (or its state).

    ``adapted`` picks the bootstrap stream of the benchmark measures (default: every round but round 0), so that
    a single-round run shows the intervals of the dashboard's tables.
    """
    adapted = results.model.round > 0 if adapted is None else adapted
    kwargs: dict[str, Any] = {"n_resamples": n_resamples, "confidence": confidence}
    out: dict[str, Cell] = {}
    for column in COLUMNS:
        state, note = results.state(column.source)
        if state not in (OK, INCOMPLETE):
            out[column.key] = Cell(state, note=note)
    if "pope_mean_f1" not in out:
        sets = list(results.pope)
        f1_note = "" if len(sets) == 3 else f"mean of {len(sets)} set(s): {', '.join(sets)}"
        out["pope_mean_f1"] = _from_interval(stats.mean_f1_interval(results.pope, seed=seed, **kwargs),
                                             note=f1_note, items=sum(len(o) for o in results.pope.values()))
        adversarial = results.pope.get("adversarial")
        if adversarial is None:
            for key in ("pope_adv_precision", "pope_adv_yes_ratio"):
                out[key] = Cell(MISSING, note="the adversarial POPE set has no results")
        else:
            intervals = stats.pope_intervals(adversarial, seed=seed, **kwargs)
            out["pope_adv_precision"] = _from_interval(intervals["precision"], items=len(adversarial))
            out["pope_adv_yes_ratio"] = _from_interval(intervals["yes_ratio"], items=len(adversarial))
    if "shr" not in out:
        state, note = results.state("shr")
        counts = results.shr
        if counts is None or not counts.image_ids:
            out["shr"] = Cell(INCOMPLETE if state == INCOMPLETE else MISSING, note=note or "no judged image")
        else:
            out["shr"] = _from_interval(stats.shr_interval(counts, seed=seed, **kwargs), state=state, note=note,
                                        items=len(counts.image_ids))
    stream = ADAPTED_STREAM if adapted else BASE_STREAM
    for column in COLUMNS:
        if column.measure is None or column.key in out:
            continue
        state, note = results.state(column.source)
        found = [(j, m) for j, m in enumerate(results.measures.get(column.source, [])) if m.name == column.measure]
        if not found:
            out[column.key] = Cell(NOT_RUN, note=f"{SOURCE_TITLES[column.source]} run without this measure")
            continue
        j, measure = found[0]
        if not measure.values:
            out[column.key] = Cell(INCOMPLETE if state == INCOMPLETE else MISSING, note=note or "no scored item")
            continue
        interval = benchmarks.bootstrap(measure, seed=stats._sub_seed(benchmark_seed(seed, column.source, j), stream),
                                        **kwargs)
        out[column.key] = _from_interval(interval, state=state, note=note, items=len(measure.values))
    if "reward_accuracy" not in out and results.reward_accuracy is not None:
        value, step = results.reward_accuracy
        out["reward_accuracy"] = Cell(OK, value, None, f"step {step}")
    return {c.key: out[c.key] for c in COLUMNS}


# ---------------------------------------------------------------------------------------------------- by round
@dataclass(frozen=True)
class RoundsResults:
    """Every model of a run (round 0 first) with its cells."""

    manifest: Manifest
    rows: tuple[tuple[ModelRun, dict[str, Cell]], ...]
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``summary.json``'s ``rounds``: values and intervals as fractions (MMHal-Bench's score on
        its 0-6 scale), each cell's state and note."""
        return {
            "manifest": str(self.manifest.path), "name": self.manifest.name, "confidence": self.confidence,
            "columns": [c.to_dict() for c in COLUMNS],
            "rows": [{"round": m.round, "label": m.label, "folders": dict(m.folders), "train_dir": m.train_dir,
                      "cells": {k: c.to_dict() for k, c in cells.items()}} for m, cells in self.rows],
        }

    def notes(self) -> list[str]:
        """One line per model and source that is missing or incomplete."""
        out = []
        for model, cells in self.rows:
            seen = set()
            for column in COLUMNS:
                cell = cells[column.key]
                if cell.state in (MISSING, INCOMPLETE) and (column.source, cell.note) not in seen:
                    seen.add((column.source, cell.note))
                    out.append(f"{model.label}, {SOURCE_TITLES[column.source]}: {cell.note or cell.state}")
        return out


def by_round(path: str | Path, *, pope_sets: Sequence[str] = ("random", "popular", "adversarial"),
             pope_data_root: str | None = None, n_resamples: int = 1000, seed: int = 0,
             confidence: float = 0.95) -> RoundsResults:
    """Read a run's ``rounds.json`` and every model in it; each model's cells (:func:`model_cells`)."""
    manifest = read_manifest(path)
    rows = []
    for model in manifest.models:
        results = read_model(model, pope_sets=pope_sets, pope_data_root=pope_data_root)
        rows.append((model, model_cells(results, n_resamples=n_resamples, seed=seed, confidence=confidence)))
    return RoundsResults(manifest, tuple(rows), confidence)


def table_frame(results: RoundsResults) -> pd.DataFrame:
    """One row per round (round 0 = the base model), one text cell per measure: ``value [low, high]``."""
    rows = []
    for model, cells in results.rows:
        row: dict[str, Any] = {"Round": model.round, "Model": model.label}
        row.update({c.label: cells[c.key].text(c.factor) for c in COLUMNS})
        rows.append(row)
    return pd.DataFrame(rows)


def caption(confidence: float) -> str:
    """What the by-round table's cells mean."""
    return (f"Round 0 is the base model. Each cell: value [{round(100 * confidence)}% bootstrap interval over the "
            "items: questions, images, descriptions]; rates in %, MMHal-Bench's score on its 0-6 scale; reward "
            "accuracy is the round's last logged training step (a batch mean, no interval). missing: the folder has "
            "no results yet; not run: not in this run; INCOMPLETE: the judge left items unjudged (or the run is "
            "unfinished): the value covers the items so far and is not a result.")


def notes_html(lines: Sequence[str]) -> str:
    """The missing and incomplete parts under the table, escaped."""
    if not lines:
        return ""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    return f'<div class="hadpo-note">Missing or incomplete:<ul>{items}</ul></div>'


def figure(results: RoundsResults, *, title: str | None = None) -> Figure:
    """One small panel per measure against the round, the bootstrap interval as error bars. An incomplete value is
    a hollow marker labelled so; a missing one is marked "missing" at its round; a measure not in the run says so."""
    ncols = 4
    nrows = math.ceil(len(COLUMNS) / ncols)
    fig, axes = plots._new_figure(ncols, nrows, size=(15, 3.1 * nrows))
    for ax in axes[len(COLUMNS):]:
        fig.delaxes(ax)
    rounds = [m.round for m, _ in results.rows]
    for ax, column in zip(axes, COLUMNS, strict=False):
        points = [(m.round, cells[column.key]) for m, cells in results.rows]
        valued = [(r, c) for r, c in points if c.has_value]
        f = column.factor
        if valued:
            xs = [r for r, _ in valued]
            ys = [f * (c.value or 0.0) for _, c in valued]
            ax.plot(xs, ys, color=plots.ADAPTED_COLOUR, linewidth=1, alpha=0.6)
        for r, c in valued:
            y = f * (c.value or 0.0)
            err = None
            if c.interval is not None:
                err = [[max(0.0, y - f * c.interval.low)], [max(0.0, f * c.interval.high - y)]]
            hollow = c.state == INCOMPLETE
            ax.errorbar([r], [y], yerr=err, fmt="o", capsize=3, color=plots.ADAPTED_COLOUR,
                        markerfacecolor="white" if hollow else plots.ADAPTED_COLOUR)
            if hollow:
                ax.annotate("incomplete", (r, y), textcoords="offset points", xytext=(4, 4), fontsize="x-small",
                            color="#b35900")
        for r, c in points:
            if c.state == MISSING:
                ax.text(r, 0.04, "missing", transform=ax.get_xaxis_transform(), ha="center", fontsize="x-small",
                        color="#b00000", bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
        if not valued and not any(c.state == MISSING for _, c in points):
            reason = next((c.note for _, c in points if c.note), "not in this run")
            ax.text(0.5, 0.5, reason if len(reason) < 40 else "not in this run", ha="center", va="center",
                    transform=ax.transAxes, color="grey", fontsize="small")
        if column.key == "pope_adv_yes_ratio" and valued:
            ax.axhline(50, color="black", linestyle="--", linewidth=0.8)
        ax.set_title(f"{column.label}\n{column.better} is better", fontsize="small")
        ax.set_xticks(rounds)
        ax.set_xlim(min(rounds) - 0.5, max(rounds) + 0.5)
        ax.set_xlabel("round (0 = base)", fontsize="small")
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
