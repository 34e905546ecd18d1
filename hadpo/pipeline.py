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
from typing import Any

from hadpo.config import MODEL, PATH, Params, check, param
from hadpo.errors import ParamsError
from hadpo.notebooks import execute, resolve_parameters
from hadpo.overrides import add_params_arguments, config_from_args, overrides, run_reporting_errors


@dataclass
class PipelineConfig(Params):
    """Which params files drive the run, and where its reports go."""

    name: str = param("demo", "Run name: the stages write under <runs_dir>/<name>/, the reports go to "
                      "<reports_dir>/<name>/.")
    params_dir: str = param("params/world", "Folder with 00_world.yaml … 08_dashboard.yaml.", kind="path")
    runs_dir: str = param("runs", "Root of the run folders: the params files' paths under <runs_dir>/<their run>/ "
                          "move to <runs_dir>/<name>/ (paths elsewhere are kept).", kind="path")
    reports_dir: str = param("reports", "Root of the HTML reports (index.html is rebuilt there).", kind="path")
    hide_input: bool = param(True, "Hide code cells in the HTML (the executed .ipynb keeps them).")
    data_source: str = param("mine", "01_data's source: mine (the demo) or released.")

    def validate(self) -> None:
        # The name is a folder under runs_dir and reports_dir: one plain component, never a path out of them.
        check(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", self.name) is not None,
              f"parameter 'name' must be a folder name (letters, digits, '.', '_', '-'), got {self.name!r}")


#: The notebooks the pipeline runs, in order (each evaluation twice, see :func:`stages`).
NOTEBOOKS = ("00_world", "01_data", "02_train", "03_pope", "04_shr", "05_chair", "06_amber", "07_mmhal",
             "08_dashboard")
#: The evaluations, run for the base model and for the HA-DPO adapter; the dashboard key prefix of each.
EVALUATIONS = {"03_pope": "pope", "04_shr": "shr", "05_chair": "chair", "06_amber": "amber", "07_mmhal": "mmhal"}
#: The dashboard, the last of them (also run alone by ``hadpo report``).
DASHBOARD = NOTEBOOKS[-1]


def _stage_file(cfg: PipelineConfig, notebook: str) -> Path:
    path = Path(cfg.params_dir) / f"{notebook}.yaml"
    if not path.is_file():
        raise ParamsError(f"the pipeline needs {path.absolute()}")
    return path


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


def run_folder(cfg: PipelineConfig) -> Path | None:
    """``<runs_dir>/<name>``, where the stages write, or None when the params files write nothing under runs_dir."""
    configs = {nb: resolve_parameters(nb, _stage_file(cfg, nb)) for nb in NOTEBOOKS}
    return None if params_run(cfg, configs) is None else Path(cfg.runs_dir) / cfg.name


def stages(cfg: PipelineConfig) -> list[tuple[str, str, dict[str, Any]]]:
    """``(notebook, output name, parameter overrides)`` of every execution, in order.

    The overrides move the params files' run folder to ``<runs_dir>/<name>/`` (none when it is already there).
    """
    configs = {nb: resolve_parameters(nb, _stage_file(cfg, nb)) for nb in NOTEBOOKS}
    run = params_run(cfg, configs)
    moved: dict[str, dict[str, Any]] = {nb: {} for nb in NOTEBOOKS}
    if run is not None and run != cfg.name:
        old, new = Path(cfg.runs_dir) / run, Path(cfg.runs_dir) / cfg.name
        for nb, stage_cfg in configs.items():
            moved[nb] = {key: str(new / path.relative_to(old)) for key, path in _path_values(stage_cfg).items()
                         if path.is_relative_to(old)}

    def value(notebook: str, key: str) -> Any:
        return moved[notebook].get(key, getattr(configs[notebook], key))

    adapter = str(Path(value("02_train", "output_dir")) / "adapter")
    plan: list[tuple[str, str, dict[str, Any]]] = [
        ("00_world", "00_world", moved["00_world"]),
        ("01_data", "01_data", {**moved["01_data"], "source": cfg.data_source}),
        ("02_train", "02_train", moved["02_train"]),
    ]
    dashboard: dict[str, Any] = {"run_name": cfg.name, "report_dir": str(Path(cfg.reports_dir) / cfg.name)}
    for notebook, key in EVALUATIONS.items():
        base_dir = str(value(notebook, "run_dir"))
        hadpo_dir = str(Path(base_dir).parent / "hadpo")
        plan.append((notebook, f"{notebook}_base", moved[notebook]))
        plan.append((notebook, f"{notebook}_hadpo", {**moved[notebook], "adapter": adapter, "run_dir": hadpo_dir}))
        dashboard.update({f"base_{key}_dir": base_dir, f"hadpo_{key}_dir": hadpo_dir})
    plan.append((DASHBOARD, DASHBOARD, {**moved[DASHBOARD], **dashboard}))
    return plan


def run_pipeline(cfg: PipelineConfig, log: Callable[[str], Any] = print, *, stream_output: bool = False) -> Path:
    """Execute every stage (skipping finished ones) and rebuild the reports index; returns its path.

    ``stream_output`` forwards what each notebook prints to the ``papermill`` logger while it runs.
    """
    from hadpo.report.html import INDEX_FILE, write_index

    out = Path(cfg.reports_dir) / cfg.name
    plan = stages(cfg)
    runs = run_folder(cfg)
    log(f"[hadpo] run {cfg.name}: {'' if runs is None else f'results in {runs}, '}reports in {out}")
    t0 = time.time()
    try:
        for i, (notebook, name, overrides) in enumerate(plan, start=1):
            log(f"[hadpo] stage {i}/{len(plan)}: {name}  ({time.time() - t0:.0f} s elapsed)")
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
