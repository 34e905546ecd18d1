"""``hadpo compare``: methods compared across runs on the same evaluation items, seed by seed.

A *method* is a list of models, one per seed, each named ``<path to rounds.json>#<round>`` (a pipeline run's
rounds manifest, :mod:`hadpo.report.rounds`; round 0 is that run's base model)::

    hadpo compare -y '{methods: {HA-DPO: [runs/rounds-s0/rounds.json#1, runs/rounds-s1/rounds.json#1],
                                 2 rounds: [runs/rounds-s0/rounds.json#2, runs/rounds-s1/rounds.json#2]}}' \\
                  -p reference HA-DPO -p out reports/compare

For every method, seed and measure (the by-round measures, :data:`hadpo.report.rounds.COLUMNS`) it reports the
value with its bootstrap interval, computed as the dashboard computes it; for every other method, the difference to
the reference at the same seed index (the n-th entry of each list): a paired bootstrap interval over the items both
models have (the same resampled items for both), and the paired test :mod:`hadpo.report.benchmarks` uses for that
kind of measure (exact McNemar on 0/1 items: POPE "yes" answers, CHAIR_s, AMBER Hal, MMHal-Bench hallucination;
exact sign test on MMHal-Bench ratings; none on a ratio of sums, whose paired interval says it). The base model of
the first manifest is a row too, compared with the reference's first seed. Written to ``<out>/compare.json`` and
``<out>/compare.md`` (Markdown tables ready for a README), and printed.

A missing manifest, a round the manifest does not have, or an evaluation folder without results is an error naming
it; a benchmark a run does not have is "not run"; an SHR or MMHal-Bench judgement that left items unjudged is
compared over the judged items and marked INCOMPLETE wherever it appears.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hadpo.config import Params, check, param
from hadpo.errors import ParamsError
from hadpo.overrides import add_params_arguments
from hadpo.paths import resolve_path
from hadpo.report.config import check_statistics

if TYPE_CHECKING:
    from hadpo.report.rounds import Cell, ModelResults, ModelRun
    from hadpo.report.stats import Interval

JSON_FILE, MARKDOWN_FILE = "compare.json", "compare.md"
#: The label of the base model's row.
BASE_LABEL = "base model"
_ENTRY = re.compile(r"^(?P<path>.+)#(?P<round>[^#]*)$")


@dataclass
class CompareConfig(Params):
    """Which runs' models make up each method (one per seed), which method is the reference, where the tables go."""

    methods: dict[str, list[str]] = param(
        {}, "Method label → one '<path to rounds.json>#<round>' per seed (round 0: that run's base model); a "
        "relative path is relative to the project root.", section="methods")
    reference: str = param("", "The method every other one is compared with, seed by seed (a label of methods).")
    pope_sets: list[str] = param(["random", "popular", "adversarial"],
                                 "POPE sets of the mean F1 (those a run folder holds; adv = adversarial).",
                                 section="data")
    pope_data_root: str | None = param(
        None, "Data root whose POPE question files hold the labels; None: the file named in each protocol.json.",
        kind="path")
    out: str = param("reports/compare", "Folder for compare.json and compare.md.", kind="path",
                     section="output and statistics")
    bootstrap_resamples: int = param(1000, "Bootstrap resamples per interval.")
    confidence: float = param(0.95, "Confidence level of the bootstrap intervals.")
    seed: int = param(0, "Seed of the bootstrap draws (same seed, same intervals).")

    def validate(self) -> None:
        check(bool(self.methods), "parameter 'methods' must name at least one method, e.g. "
                                  "{HA-DPO: [runs/x/rounds.json#1]}")
        normalised: dict[str, list[str]] = {}
        for label, entries in self.methods.items():
            check(bool(entries), f"parameter 'methods'[{label!r}] must list at least one '<rounds.json>#<round>'")
            normalised[label] = []
            for i, entry in enumerate(entries):
                path, round_ = parse_entry(entry, f"parameter 'methods'[{label!r}][{i}]")
                normalised[label].append(f"{resolve_path(path)}#{round_}")
        self.methods = normalised
        check(self.reference in self.methods, f"parameter 'reference' must be one of the methods "
                                              f"{list(self.methods)}, got {self.reference!r}")
        check_statistics(self)


def parse_entry(entry: str, where: str) -> tuple[str, int]:
    """``(manifest path, round)`` of a ``<path to rounds.json>#<round>`` entry; a bad one is a :class:`ParamsError`
    saying ``where``."""
    match = _ENTRY.match(entry.strip())
    if match is None:
        raise ParamsError(f"{where}: {entry!r} must be '<path to rounds.json>#<round>' (e.g. runs/x/rounds.json#1)")
    text = match["round"].strip()
    if not text.isdigit():
        raise ParamsError(f"{where}: {entry!r}: the round after '#' must be a whole number >= 0 (0: the base "
                          f"model), got {text!r}")
    return match["path"], int(text)


# ---------------------------------------------------------------------------------------------------- paired cells
@dataclass(frozen=True)
class DeltaCell:
    """One measure, a method minus the reference at the same seed: Δ with its paired bootstrap interval (fractions,
    or the measure's own scale), the items paired, and the paired test where the measure kind has one."""

    state: str
    delta: Interval | None = None
    items: int | None = None
    test: str | None = None
    p_value: float | None = None
    note: str = ""

    def text(self, factor: float = 100.0, digits: int = 2) -> str:
        """``Δ [low, high], p = …`` in display units, marked when incomplete; the state when there is none."""
        from hadpo.report import rounds

        if self.delta is None:
            return {rounds.MISSING: "missing", rounds.NOT_RUN: "not run"}.get(self.state, "—")
        d = self.delta
        out = f"{factor * d.estimate:+.{digits}f} [{factor * d.low:+.{digits}f}, {factor * d.high:+.{digits}f}]"
        if self.p_value is not None:
            out += f", p {'< 1e-4' if self.p_value < 1e-4 else f'= {self.p_value:.3g}'}"
        if self.state == rounds.INCOMPLETE:
            out += f" ({self.note})"
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {"state": self.state, "delta": self.delta.to_dict() if self.delta is not None else None,
                "paired_items": self.items, "test": self.test, "p_value": self.p_value, "note": self.note}


def _joint_state(reference: ModelResults, other: ModelResults, source: str) -> tuple[str, str]:
    from hadpo.report import rounds

    states = [reference.state(source), other.state(source)]
    for state in (rounds.MISSING, rounds.NOT_RUN, rounds.NOT_APPLICABLE):
        if any(s == state for s, _ in states):
            return state, next(n for s, n in states if s == state)
    incomplete = [who for who, (s, _) in zip(("reference", "method"), states, strict=True) if s == rounds.INCOMPLETE]
    if incomplete:
        return rounds.INCOMPLETE, f"INCOMPLETE: {' and '.join(incomplete)} judgement"
    return rounds.OK, ""


def _shr_parts(results: ModelResults) -> list[Any]:
    """An SHR judgement as one ratio measure per judge run: per image, (hallucinated, labelled) sentences."""
    from hadpo.report.benchmarks import Measure

    counts = results.shr
    assert counts is not None
    return [Measure("SHR", "SHR (%)", "lower", "ratio",
                    {image: (float(counts.hallucinated[i, r]), float(counts.labelled[i, r]))
                     for i, image in enumerate(counts.image_ids)}) for r in range(len(counts.runs))]


def paired_cells(reference: ModelResults, other: ModelResults, *, n_resamples: int, seed: int,
                 confidence: float) -> dict[str, DeltaCell]:
    """Every measure of ``other`` minus ``reference``: the paired Δ interval over their shared items and the paired
    test (:func:`hadpo.report.benchmarks.paired` and :func:`~hadpo.report.benchmarks.paired_mean`, with the
    dashboard's seeds, so base vs HA-DPO gives the dashboard's Δ intervals)."""
    from hadpo.report import benchmarks, rounds

    kwargs: dict[str, Any] = {"n_resamples": n_resamples, "confidence": confidence}
    out: dict[str, DeltaCell] = {}
    for column in rounds.COLUMNS:
        if column.source == "train":
            out[column.key] = DeltaCell(rounds.NOT_APPLICABLE, note="a training-batch number, not compared")
            continue
        state, note = _joint_state(reference, other, column.source)
        if state not in (rounds.OK, rounds.INCOMPLETE):
            out[column.key] = DeltaCell(state, note=note)
            continue
        if column.key in ("pope_adv_precision", "pope_adv_yes_ratio"):
            if "adversarial" not in reference.pope or "adversarial" not in other.pope:
                out[column.key] = DeltaCell(rounds.MISSING, note="the adversarial POPE set has no results")
                continue
            measure = "precision" if column.key == "pope_adv_precision" else "yes_ratio"
            ref_m = benchmarks.pope_measures(reference.pope["adversarial"], "adversarial")[measure]
            other_m = benchmarks.pope_measures(other.pope["adversarial"], "adversarial")[measure]
            delta, items, test, p = benchmarks.paired(ref_m, other_m, seed=seed, **kwargs)
            out[column.key] = DeltaCell(state, delta, items, test, p, note)
        elif column.key == "pope_mean_f1":
            sets = [s for s in reference.pope if s in other.pope]
            if not sets:
                out[column.key] = DeltaCell(rounds.MISSING, note="no POPE set evaluated for both")
                continue
            parts = [[benchmarks.pope_measures(r.pope[s], s)["f1"] for s in sets] for r in (reference, other)]
            delta, items = benchmarks.paired_mean(parts[0], parts[1], shared_draws=False, seed=seed, **kwargs)
            sets_note = "" if len(sets) == 3 else f"mean of {len(sets)} set(s): {', '.join(sets)}"
            out[column.key] = DeltaCell(state, delta, items, "paired bootstrap Δ", None, note or sets_note)
        elif column.key == "shr":
            if reference.shr is None or other.shr is None or not reference.shr.image_ids or not other.shr.image_ids:
                out[column.key] = DeltaCell(rounds.MISSING, note=note or "no judged image")
                continue
            delta, items = benchmarks.paired_mean(_shr_parts(reference), _shr_parts(other), shared_draws=True,
                                                  seed=seed, **kwargs)
            out[column.key] = DeltaCell(state, delta, items, "paired bootstrap Δ", None, note)
        else:
            found = []
            for results in (reference, other):
                found.append(next(((j, m) for j, m in enumerate(results.measures.get(column.source, []))
                                   if m.name == column.measure and m.values), None))
            if found[0] is None or found[1] is None:
                out[column.key] = DeltaCell(rounds.NOT_RUN, note="not measured for both")
                continue
            (j, ref_m), (_, other_m) = found
            measure_seed = rounds.benchmark_seed(seed, column.source, j)
            delta, items, test, p = benchmarks.paired(ref_m, other_m, seed=measure_seed, **kwargs)
            out[column.key] = DeltaCell(state, delta, items, test, p, note)
    return {c.key: out[c.key] for c in rounds.COLUMNS}


# ---------------------------------------------------------------------------------------------------- the comparison
@dataclass(frozen=True)
class Row:
    """One model of the comparison: its method, seed index and where it was named."""

    method: str
    seed: int | None
    model: ModelRun
    cells: dict[str, Cell]


@dataclass(frozen=True)
class DeltaRow:
    """One method at one seed index, minus the reference at the same index."""

    method: str
    seed: int
    source: str
    reference_source: str
    cells: dict[str, DeltaCell]


def _models(cfg: CompareConfig) -> dict[str, list[ModelRun]]:
    """Each method's models, read from their manifests (a missing manifest or round is an error naming it)."""
    from hadpo.report import rounds

    manifests: dict[str, rounds.Manifest] = {}
    out: dict[str, list[ModelRun]] = {}
    for label, entries in cfg.methods.items():
        out[label] = []
        for i, entry in enumerate(entries):
            path, round_ = parse_entry(entry, f"parameter 'methods'[{label!r}][{i}]")
            if path not in manifests:
                manifests[path] = rounds.read_manifest(path)
            manifest = manifests[path]
            model = manifest.model(round_)
            if model is None:
                raise ParamsError(f"parameter 'methods'[{label!r}][{i}]: {path} has no round {round_} (its rounds: "
                                  f"{', '.join(map(str, manifest.rounds))}; 0 is the base model)")
            out[label].append(model)
    return out


def compare(cfg: CompareConfig) -> dict[str, Any]:
    """Every method's values and the paired differences to the reference; writes ``compare.json`` and
    ``compare.md`` in ``cfg.out`` and returns what ``compare.json`` holds (its Markdown under ``markdown``)."""
    from hadpo.io import atomic_write_json, atomic_write_text
    from hadpo.report import rounds

    models = _models(cfg)
    first = next(iter(models.values()))[0]
    base = rounds.read_manifest(first.manifest).models[0]
    loaded: dict[str, ModelResults] = {}

    def results(model: ModelRun) -> ModelResults:
        if model.source not in loaded:
            loaded[model.source] = rounds.read_model(model, pope_sets=cfg.pope_sets,
                                                     pope_data_root=cfg.pope_data_root, strict=True)
        return loaded[model.source]

    kwargs: dict[str, Any] = {"n_resamples": cfg.bootstrap_resamples, "seed": cfg.seed,
                              "confidence": cfg.confidence}
    rows = [Row(BASE_LABEL, None, base, rounds.model_cells(results(base), **kwargs))]
    rows += [Row(label, i, model, rounds.model_cells(results(model), **kwargs))
             for label, seeds in models.items() for i, model in enumerate(seeds)]
    reference = models[cfg.reference]
    notes: list[str] = []
    pairs = [(BASE_LABEL, 0, base)]
    for label, seeds in models.items():
        if label == cfg.reference:
            continue
        pairs += [(label, i, model) for i, model in enumerate(seeds)]
    deltas = []
    for label, i, model in pairs:
        if i >= len(reference):
            notes.append(f"{label}, seed {i}: the reference {cfg.reference!r} has no seed {i}; not compared")
            continue
        cells = paired_cells(results(reference[i]), results(model), **kwargs)
        deltas.append(DeltaRow(label, i, model.source, reference[i].source, cells))
    for row in rows:
        for column in rounds.COLUMNS:
            cell = row.cells[column.key]
            if cell.state == rounds.INCOMPLETE:
                notes.append(f"{row.method}{'' if row.seed is None else f', seed {row.seed}'}: {column.label} "
                             f"{cell.note}: over the judged items only, not a result")
    out: dict[str, Any] = {
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "config": cfg.to_dict(), "reference": cfg.reference, "confidence": cfg.confidence,
        "columns": [c.to_dict() for c in rounds.COLUMNS],
        "rows": [{"method": r.method, "seed": r.seed, "source": r.model.source,
                  "cells": {k: c.to_dict() for k, c in r.cells.items()}} for r in rows],
        "deltas": [{"method": d.method, "seed": d.seed, "source": d.source, "reference_source": d.reference_source,
                    "cells": {k: c.to_dict() for k, c in d.cells.items()}} for d in deltas],
        "notes": list(dict.fromkeys(notes)),
    }
    text = markdown(rows, deltas, reference=cfg.reference, confidence=cfg.confidence, notes=out["notes"])
    atomic_write_json(Path(cfg.out) / JSON_FILE, out)
    atomic_write_text(Path(cfg.out) / MARKDOWN_FILE, text)
    return {**out, "markdown": text}


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return [line(header), line(["---"] * len(header)), *(line(r) for r in rows)]


def markdown(rows: list[Row], deltas: list[DeltaRow], *, reference: str, confidence: float,
             notes: list[str]) -> str:
    """Two Markdown tables: every method × seed with ``value [low, high]``, then Δ vs the reference with p."""
    from hadpo.report import rounds

    level = f"{round(100 * confidence)}%"
    header = ["Method", "Seed", *(c.label for c in rounds.COLUMNS)]
    values = [[r.method, "—" if r.seed is None else str(r.seed),
               *(r.cells[c.key].text(c.factor) for c in rounds.COLUMNS)] for r in rows]
    columns = [c for c in rounds.COLUMNS if c.source != "train"]
    delta_rows = [[d.method, str(d.seed), *(d.cells[c.key].text(c.factor) for c in columns)] for d in deltas]
    lines = [
        f"Each cell: value [{level} bootstrap interval over the items]; rates in %, MMHal-Bench's score on its 0-6 "
        "scale; reward accuracy: the last logged training step (no interval). Seed: the position in the method's "
        "list; the base model is the first run's round 0.", "",
        *_table(header, values), "",
        f"Δ = method − {reference} at the same seed (the base model: against {reference}'s seed 0), in percentage "
        f"points for rates; [{level} paired bootstrap interval over the items both have]; p: exact McNemar on "
        "0/1 items (POPE yes answers, CHAIR_s, AMBER Hal, MMHal-Bench hallucination), exact sign test on "
        "MMHal-Bench ratings, none for a ratio of sums (its interval instead).", "",
        *_table(["Method", "Seed", *(f"Δ {c.label}" for c in columns)], delta_rows),
    ]
    if notes:
        lines += ["", *(f"- {n}" for n in notes)]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------- command line
def _run(args: argparse.Namespace) -> int:
    from hadpo.overrides import config_from_args

    result = compare(config_from_args(CompareConfig, args))
    print(result["markdown"], end="")
    print(f"written to {Path(result['config']['out']) / MARKDOWN_FILE} and {JSON_FILE}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``compare`` to the ``hadpo`` command line."""
    parser = subparsers.add_parser(
        "compare", help="compare methods across runs on the same evaluation items: values, paired Δ, tests",
        description="Compare methods, each a list of '<rounds.json>#<round>' (one per seed), with a reference "
        "method: every measure's value and bootstrap interval, and the paired Δ to the reference at the same seed "
        "with its paired interval and test. Parameters are CompareConfig keys: -p reference HA-DPO -p out DIR, and "
        "the methods as YAML: -y '{methods: {HA-DPO: [runs/a/rounds.json#1], 2 rounds: [runs/a/rounds.json#2]}}' "
        "or in a -f file. Writes compare.json and compare.md (Markdown tables) in out and prints the Markdown.")
    add_params_arguments(parser)
    parser.set_defaults(func=_run)
    parser.legacy = {"keys": CompareConfig.field_names()}  # type: ignore[attr-defined]
