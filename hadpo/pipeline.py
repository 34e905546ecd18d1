"""The whole paper in miniature: 00_world → 01_data → 02_train → 03_pope → 04_shr → 05_chair → 06_amber →
07_mmhal → 08_dashboard.

Each stage is its notebook executed by papermill with the stage's params file from ``params_dir`` (checked
against the stage's config first), written with its HTML under ``reports/<name>/``; then ``reports/index.html``
links every run. Every evaluation (POPE, SHR, CHAIR, AMBER, MMHal-Bench) runs twice, for the base model and for
base + the HA-DPO adapter: the stage params files describe the base run, and the HA-DPO run differs only in
``adapter`` (the training run's ``adapter/`` folder) and in its run folder (``hadpo`` beside ``base``); the
dashboard is pointed at both run folders of each. A rerun skips the notebooks already executed with the
same parameters, and every stage skips its own finished work (``-p force True`` on a notebook redoes it).

**The run name chooses the run.** The stage params files of a preset write into one run folder under ``runs_dir``
(``params/world``: ``runs/demo/``, ``params/world-ci``: ``runs/ci/``), their *params run*. A pipeline named
otherwise moves every path under it (a file or folder key of any stage: data, models, run folders, the
dashboard's inputs) to ``<runs_dir>/<name>/``, so two names never share results; the dashboard's ``run_name`` is
the name and its ``report_dir`` ``<reports_dir>/<name>/``. Paths outside ``runs_dir`` (a hub model, a released
data root) are inputs and stay. The params run's own name changes nothing: ``make demo`` writes ``runs/demo/``
and ``reports/demo/`` exactly as the params files say::

    hadpo demo -f params/demo.yaml                   # what `make demo` runs: runs/demo/, reports/demo/
    hadpo demo -f params/demo-ci.yaml -p name ci2    # params/world-ci moved to runs/ci2/, reports/ci2/

**Beyond one round.** ``rounds`` > 1 repeats mining, training and the evaluations of the trained model, each round
from the model the previous one trained, in ``<runs_dir>/<name>/round-<k>/`` (:func:`plan`); ``stage_params`` sets
any notebook's parameters (mDPO's terms: ``{02_train: {conditional_weight: 1.0, anchor_weight: 1.0}}``), and
``world_run`` shares one world and one evaluation of the base model between runs that differ only in training.
Every run writes ``<runs_dir>/<name>/rounds.json``, the folders of each round, which the dashboard and
``hadpo compare`` read.

``hadpo report`` is the last step alone: the dashboard notebook over given run folders, into its ``report_dir``,
and the reports index above it (:func:`run_report`).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hadpo.config import MODEL, PATH, Params, check, param
from hadpo.errors import ParamsError
from hadpo.notebooks import execute, resolve_parameters
from hadpo.overrides import add_params_arguments, config_from_args, overrides, run_reporting_errors
from hadpo.train.stage import POLICY_DIR

_FOLDER_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"


@dataclass
class PipelineConfig(Params):
    """Which params files drive the run, and where its reports go."""

    name: str = param("demo", "Run name: the stages write under <runs_dir>/<name>/, the reports go to "
                      "<reports_dir>/<name>/.")
    params_dir: str = param("params/world", "Folder with 00_world.yaml … 08_dashboard.yaml (a preset without "
                            "00_world.yaml starts at 01_data).", kind="path")
    runs_dir: str = param("runs", "Root of the run folders: the params files' paths under <runs_dir>/<their run>/ "
                          "move to <runs_dir>/<name>/ (paths elsewhere are kept).", kind="path")
    reports_dir: str = param("reports", "Root of the HTML reports (index.html is rebuilt there).", kind="path")
    hide_input: bool = param(True, "Hide code cells in the HTML (the executed .ipynb keeps them).")
    data_source: str = param("mine", "01_data's source: mine (the demo) or released.")
    rounds: int = param(1, "On-policy rounds: mine pairs from the current model, train, evaluate, and repeat from the "
                        "model trained (1: HA-DPO's single round; RLAIF-V mines in 4).", section="on-policy rounds")
    start_from: Literal["previous", "base"] = param(
        "previous", "Round k > 1 trains a new LoRA on the previous round's model (merged into a full model folder, "
        "the round's reference too), or on the base model again (the reference is the base).")
    round_pairs: Literal["new", "all"] = param(
        "new", "Round k trains on the pairs mined in round k, or on every round's pairs so far.")
    train_seed: int | None = param(
        None, "Training seed of every round (LoRA init, shuffle, image corruption); None: 02_train's seed.")
    world_run: str | None = param(
        None, "Take the world (stage 00: data and base model) and the base model's evaluations from "
        "<runs_dir>/<world_run>/, so runs that differ only in training share them; None: this run's own.")
    stage_params: dict[str, dict[str, Any]] = param(
        {}, "Parameters per notebook on top of its params file, e.g. {02_train: {conditional_weight: 1.0}}.")

    def validate(self) -> None:
        # The name is a folder under runs_dir and reports_dir: one plain component, never a path out of them.
        for key in ("name", "world_run"):
            value = getattr(self, key)
            check((value is None and key == "world_run") or re.fullmatch(_FOLDER_NAME, str(value)) is not None,
                  f"parameter '{key}' must be a folder name (letters, digits, '.', '_', '-'), got {value!r}")
        check(self.rounds >= 1, f"parameter 'rounds' must be at least 1, got {self.rounds}")
        check(self.rounds == 1 or self.data_source == "mine",
              f"parameter 'rounds' is {self.rounds}: on-policy rounds mine their pairs, so data_source must be mine, "
              f"got {self.data_source!r}")
        for notebook, values in self.stage_params.items():
            check(notebook in NOTEBOOKS and isinstance(values, dict),
                  f"parameter 'stage_params': {notebook!r} must be one of {list(NOTEBOOKS)}, mapped to its parameters")


#: The notebooks the pipeline runs, in order (each evaluation twice, see :func:`stages`).
NOTEBOOKS = ("00_world", "01_data", "02_train", "03_pope", "04_shr", "05_chair", "06_amber", "07_mmhal",
             "08_dashboard")
#: The evaluations, run for the base model and for the HA-DPO adapter; the dashboard key prefix of each.
EVALUATIONS = {"03_pope": "pope", "04_shr": "shr", "05_chair": "chair", "06_amber": "amber", "07_mmhal": "mmhal"}
#: The dashboard, the last of them (also run alone by ``hadpo report``).
DASHBOARD = NOTEBOOKS[-1]


#: The world's notebook: a preset for real data (``params/7b``) has none, and its pipeline starts at 01_data.
WORLD = NOTEBOOKS[0]


def _stage_file(cfg: PipelineConfig, notebook: str) -> Path:
    path = Path(cfg.params_dir) / f"{notebook}.yaml"
    if not path.is_file():
        raise ParamsError(f"the pipeline needs {path.absolute()}")
    return path


def _notebooks(cfg: PipelineConfig) -> tuple[str, ...]:
    """The notebooks this pipeline runs: every one, but the world's only where the preset has a params file."""
    return tuple(nb for nb in NOTEBOOKS if nb != WORLD or (Path(cfg.params_dir) / f"{nb}.yaml").is_file())


def _path_values(stage_cfg: Params) -> dict[str, Path]:
    """The file and folder keys of a stage config that are set, as absolute paths (a hub model id is none)."""
    values = stage_cfg.to_dict()
    out = {}
    for key in stage_cfg.keys().values():
        value = values[key.name]
        if key.kind in (PATH, MODEL) and isinstance(value, str) and os.path.isabs(value):
            out[key.name] = Path(value)
    return out


def params_run(cfg: PipelineConfig, configs: dict[str, Params]) -> str | None:
    """The run folder under ``runs_dir`` that the stage params files write into (None when no path is under it).

    Every path under ``runs_dir`` must lie in the same ``<runs_dir>/<run>/``; a preset spread over several runs is
    a :class:`ParamsError` (renaming it would move some of its paths and not others).
    """
    root = Path(cfg.runs_dir)
    runs: dict[str, str] = {}
    for notebook, stage_cfg in configs.items():
        for key, path in _path_values(stage_cfg).items():
            if path.is_relative_to(root) and path != root:
                runs.setdefault(path.relative_to(root).parts[0], f"{notebook}'s {key}")
    if len(runs) > 1:
        where = ", ".join(f"{root / run} ({first})" for run, first in runs.items())
        raise ParamsError(f"{cfg.params_dir}: the params files write into several runs under {root}: {where}; "
                          "a pipeline run needs them in one")
    return next(iter(runs), None)


#: The key of each per-round stage that names its run folder (mining, training, an evaluation of the trained model).
RUN_FOLDER_KEYS = {"01_data": "run_dir", "02_train": "output_dir", **{nb: "run_dir" for nb in EVALUATIONS}}
#: The manifest of a pipeline run, in its run folder: every round's folders (the dashboard's by-round section).
ROUNDS_FILE = "rounds.json"


@dataclass(frozen=True)
class Plan:
    """Every notebook execution of a pipeline run, in order, and the manifest of its rounds (:data:`ROUNDS_FILE`)."""

    executions: list[tuple[str, str, dict[str, Any]]]
    """``(notebook, output name, parameter overrides)``."""
    manifest: dict[str, Any]
    run_folder: Path | None
    """``<runs_dir>/<name>``, or None when the params files write nothing under ``runs_dir``."""


def _round_name(name: str, k: int, rounds: int) -> str:
    return name if rounds == 1 else f"{name}_round{k}"


def plan(cfg: PipelineConfig) -> Plan:
    """Plan a pipeline run: what each notebook runs with, where each round writes, and the run's manifest.

    With one round this is HA-DPO's chain. With ``rounds`` R > 1, round k (1..R) mines pairs from the current model
    (the base for k = 1), trains on them, and evaluates the result, each round in its own folder
    ``<runs_dir>/<name>/round-<k>/`` with the layout of a single run (``mining/``, ``train/``, ``pope/hadpo/`` ...);
    the base model's evaluations, like the world, are done once. The current model after round k is, with
    ``start_from: previous``, the full model folder round k's training writes (``train/policy/``, its model merged
    with its adapter), on which round k + 1 trains a new LoRA; with ``start_from: base``, the base model with round
    k's adapter, and every round trains a new LoRA on the base. Round k draws its mining images with the mining seed
    + k − 1, so each round mines fresh images where the world has them, and its pairs go to their own data folder
    (``<data name>[-<name>]-round-<k>`` under the data root); ``round_pairs: all`` trains on every folder so far.
    Every round's mining applies 01_data's leak check (``exclude_leaks``).
    """
    configs = {nb: resolve_parameters(nb, _stage_file(cfg, nb), cfg.stage_params.get(nb)) for nb in _notebooks(cfg)}
    run = params_run(cfg, configs)
    root = Path(cfg.runs_dir)
    new = root / cfg.name
    world = root / (cfg.world_run or cfg.name)
    old = None if run is None else root / run
    world_paths = list(_path_values(configs[WORLD]).values()) if WORLD in configs else []
    rounds = cfg.rounds

    def folder(k: int) -> Path:
        return new if rounds == 1 else new / f"round-{k}"

    def moved(notebook: str, where: Path | None = None) -> dict[str, Any]:
        """The notebook's paths under the params run, moved: the world's to the world run, its run folder to
        ``where``, the rest to this run."""
        out: dict[str, Any] = dict(cfg.stage_params.get(notebook, {}))
        if old is None:
            return out
        for key, path in _path_values(configs[notebook]).items():
            if not path.is_relative_to(old):
                continue
            if any(path == w or path.is_relative_to(w) for w in world_paths):
                target = world
            elif where is not None and key == RUN_FOLDER_KEYS.get(notebook):
                target = where
            else:
                target = new
            if (value := str(target / path.relative_to(old))) != str(path):
                out[key] = value
        return out

    flat = {nb: stage_cfg.to_dict() for nb, stage_cfg in configs.items()}
    # The params files as written (stage_params not applied): an override equal to its file's value is dropped.
    written = {nb: resolve_parameters(nb, _stage_file(cfg, nb)).to_dict() for nb in configs}

    def changed(notebook: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """The overrides that differ from the params file's values (so `make demo` runs each file as written)."""
        values = written[notebook]
        return {key: v for key, v in overrides.items() if key not in values or values[key] != v}

    def value(notebook: str, key: str, overrides: Mapping[str, Any]) -> Any:
        return overrides.get(key, flat[notebook][key])

    executions: list[tuple[str, str, dict[str, Any]]] = [(WORLD, WORLD, moved(WORLD))] if WORLD in configs else []
    base_params = {nb: moved(nb, world) for nb in EVALUATIONS}  # the world run is this run without world_run
    base_model = value("02_train", "model", moved("02_train"))
    data_name = str(flat["01_data"]["name"])
    suffix = ("" if world == new else f"-{cfg.name}")
    manifest: dict[str, Any] = {
        "name": cfg.name, "rounds": rounds, "start_from": cfg.start_from, "round_pairs": cfg.round_pairs,
        "base": {key: str(value(nb, "run_dir", base_params[nb])) for nb, key in EVALUATIONS.items()},
        "per_round": [],
    }
    data_names: list[str] = []
    model, adapter = base_model, None  # the current model: a model folder, and the adapter on top of it
    for k in range(1, rounds + 1):
        here = folder(k)
        data_names.append(data_name + suffix + ("" if rounds == 1 else f"-round-{k}"))
        mining = {**moved("01_data", here), "source": cfg.data_source, "model": model, "adapter": adapter}
        if k > 1:
            mining["seed"] = int(flat["01_data"]["seed"]) + k - 1
        train = {**moved("02_train", here), "model": model if cfg.start_from == "previous" else base_model,
                 "adapter": None}
        if cfg.data_source == "mine":
            # Train on the folder this round mined (a preset may name the released files' training copies).
            train["desc_data"] = train["pope_data"] = None
        if cfg.train_seed is not None:
            train["seed"] = cfg.train_seed
        if data_names[-1] != data_name:
            mining["name"] = train["data_name"] = data_names[-1]
        if cfg.round_pairs == "all" and k > 1:
            train["extra_data"] = data_names[:-1]
        if cfg.start_from == "previous" and k < rounds:
            train["save_merged"] = True
        train_dir = Path(value("02_train", "output_dir", train))
        trained = str(train_dir / "adapter")
        executions.append(("01_data", _round_name("01_data", k, rounds), changed("01_data", mining)))
        executions.append(("02_train", _round_name("02_train", k, rounds), changed("02_train", train)))
        evaluations: dict[str, str] = {}
        for notebook, key in EVALUATIONS.items():
            params = moved(notebook, here)
            params.update({"model": train["model"], "adapter": trained,
                           "run_dir": str(Path(value(notebook, "run_dir", params)).parent / "hadpo")})
            if k == 1:
                executions.append((notebook, f"{notebook}_base", base_params[notebook]))
            executions.append((notebook, _round_name(f"{notebook}_hadpo", k, rounds),
                               changed(notebook, params)))
            evaluations[key] = params["run_dir"]
        manifest["per_round"].append({
            "round": k, "mining_dir": str(value("01_data", "run_dir", mining)), "data_name": data_names[-1],
            "train_dir": str(train_dir), "model": train["model"], "adapter": trained, "evaluations": evaluations})
        # The model the next round mines from and trains on.
        if cfg.start_from == "previous":
            model, adapter = str(train_dir / POLICY_DIR), None
        else:
            model, adapter = base_model, trained
    last = manifest["per_round"][-1]
    dashboard: dict[str, Any] = {**moved(DASHBOARD), "run_name": cfg.name,
                                 "report_dir": str(Path(cfg.reports_dir) / cfg.name), "train_dir": last["train_dir"]}
    for key, base_dir in manifest["base"].items():
        dashboard.update({f"base_{key}_dir": base_dir, f"hadpo_{key}_dir": last["evaluations"][key]})
    if rounds > 1:
        dashboard["rounds_file"] = str(new / ROUNDS_FILE)
    executions.append((DASHBOARD, DASHBOARD, dashboard))
    return Plan(executions, manifest, None if run is None else new)


def stages(cfg: PipelineConfig) -> list[tuple[str, str, dict[str, Any]]]:
    """``(notebook, output name, parameter overrides)`` of every execution, in order (:func:`plan`)."""
    return plan(cfg).executions


def run_folder(cfg: PipelineConfig) -> Path | None:
    """``<runs_dir>/<name>``, where the stages write, or None when the params files write nothing under runs_dir."""
    return plan(cfg).run_folder


def run_pipeline(cfg: PipelineConfig, log: Callable[[str], Any] = print, *, stream_output: bool = False) -> Path:
    """Execute every stage (skipping finished ones) and rebuild the reports index; returns its path.

    ``stream_output`` forwards what each notebook prints to the ``papermill`` logger while it runs.
    """
    from hadpo.io import atomic_write_json
    from hadpo.report.html import INDEX_FILE, write_index

    out = Path(cfg.reports_dir) / cfg.name
    planned = plan(cfg)
    runs = planned.run_folder
    log(f"[hadpo] run {cfg.name}: {'' if runs is None else f'results in {runs}, '}reports in {out}")
    if runs is not None:
        atomic_write_json(runs / ROUNDS_FILE, planned.manifest)
    t0 = time.time()
    executions = planned.executions
    try:
        for i, (notebook, name, overrides) in enumerate(executions, start=1):
            log(f"[hadpo] stage {i}/{len(executions)}: {name}  ({time.time() - t0:.0f} s elapsed)")
            execute(notebook, out, params_file=_stage_file(cfg, notebook), parameters=overrides, name=name,
                    hide_input=cfg.hide_input, log=log, progress=stream_output, stream_output=stream_output)
    finally:
        # Also after a failure: the index then links the failed stage's page, not a result from an earlier run.
        if Path(cfg.reports_dir).is_dir():
            write_index(cfg.reports_dir)
    index = Path(cfg.reports_dir) / INDEX_FILE
    log(f"[hadpo] pipeline finished in {time.time() - t0:.0f} s; open {index}")
    return index


def run_report(files: list[str | Path], parameters: Mapping[str, Any], *, log: Callable[[str], Any] = print,
               hide_input: bool = True) -> Path:
    """Execute the dashboard (notebook 08) with these params files and parameters into its ``report_dir``
    (``08_dashboard.ipynb`` and ``.html`` beside the figures and ``summary.json``); returns the HTML page.

    The index above the report folder is rebuilt when that folder is a reports root: it holds an ``index.html``
    already, or it is the project's ``reports/`` (a report written anywhere else leaves its parent alone). A finished
    dashboard with the same parameters is kept, unless ``force``.
    """
    from hadpo.paths import project_root
    from hadpo.report.html import INDEX_FILE, write_index

    out = Path(resolve_parameters(DASHBOARD, None, parameters, files=files).report_dir)
    executed = execute(DASHBOARD, out, files=files, parameters=parameters, hide_input=hide_input, log=log,
                       progress=False)
    root = out.parent
    if (root / INDEX_FILE).is_file() or root == project_root() / "reports":
        log(f"[hadpo] index: {write_index(root)}")
    return executed.with_suffix(".html")


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_params_arguments(parser)
    parser.set_defaults(func=_demo)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` (the whole pipeline) and ``report`` (the dashboard alone) subcommands."""
    demo = subparsers.add_parser(
        "demo", help="run the whole pipeline (00 → 08) and write reports/",
        description="Run every notebook in order with the params files of params_dir, writing the results under "
        "runs/<name>/, the executed notebooks and their HTML under reports/<name>/ and reports/index.html (e.g. -f "
        "params/demo.yaml; -p name X makes a separate run X).")
    _add_arguments(demo)
    demo.legacy = {"keys": PipelineConfig.field_names()}  # type: ignore[attr-defined]

    from hadpo.report.config import DashboardConfig

    report = subparsers.add_parser(
        "report", help="the dashboard (notebook 08) over given run folders, as HTML in report_dir",
        description="Execute the dashboard notebook (08) over the run folders its parameters name (POPE required; SHR "
        "and training optional) into report_dir: 08_dashboard.html and .ipynb, the figures and summary.json; then "
        "rebuild the reports index above it (reports/index.html for reports/<name>). E.g. hadpo report -f "
        "params/world/08_dashboard.yaml -p base_pope_dir runs/x/pope/base -p hadpo_pope_dir runs/x/pope/hadpo "
        "-p report_dir reports/x -p run_name x. Rerun with the same parameters: kept (-p force True runs it again).")
    add_params_arguments(report)
    report.add_argument("--show-input", action="store_true", help="keep the code cells in the HTML page")
    report.set_defaults(func=_report)
    report.legacy = {"keys": DashboardConfig.field_names()}  # type: ignore[attr-defined]


def _report(args: argparse.Namespace) -> int:
    from hadpo.io import read_json
    from hadpo.notebooks import config_class
    from hadpo.report.html import SUMMARY_FILE

    page = run_report(args.params_files, overrides(args, config_class(DASHBOARD)), hide_input=not args.show_input)
    summary = read_json(page.parent / SUMMARY_FILE)
    for label, value in (summary.get("headline") or {}).items():
        print(f"{label}: {value}")
    print(f"report: {page}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    import logging

    # papermill logs each cell's output at INFO: the demo's live progress (training bars included).
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("papermill").setLevel(logging.INFO)
    if not args.params_files:
        from hadpo.paths import project_root

        args.params_files = [str(project_root() / "params" / "demo.yaml")]
    run_pipeline(config_from_args(PipelineConfig, args), stream_output=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m hadpo.pipeline [-f params/demo.yaml] [-p key value]...``"""
    parser = argparse.ArgumentParser(prog="python -m hadpo.pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--verbose", action="store_true", help="print the traceback of an error too")
    _add_arguments(parser)
    args = parser.parse_args(argv)
    return run_reporting_errors("python -m hadpo.pipeline", lambda: _demo(args), verbose=args.verbose)


if __name__ == "__main__":
    sys.exit(main())
