"""The whole paper in miniature: 00_world → 01_data → 02_train → 03_pope → 04_shr → 05_dashboard.

Each stage is its notebook executed by papermill with the stage's params file from ``params_dir`` (checked
against the stage's config first), written with its HTML under ``reports/<name>/``; then ``reports/index.html``
links every run. POPE and SHR run twice, for the base model and for base + the HA-DPO adapter: the stage params
files describe the base run, and the HA-DPO run differs only in ``adapter`` (the training run's ``adapter/``
folder) and in its run folder (``hadpo`` beside ``base``). A rerun skips the notebooks already executed with the
same parameters, and every stage skips its own finished work::

    hadpo demo -f params/demo.yaml            # what `make demo` runs
    python -m hadpo.pipeline -f params/demo-ci.yaml -p name ci2
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hadpo.config import Params, param
from hadpo.errors import ParamsError
from hadpo.notebooks import execute, resolve_parameters
from hadpo.overrides import add_params_arguments, config_from_args, run_reporting_errors


@dataclass
class PipelineConfig(Params):
    """Which params files drive the run, and where its reports go."""

    name: str = param("demo", "Run name: the reports go to <reports_dir>/<name>/.")
    params_dir: str = param("params/world", "Folder with 00_world.yaml … 05_dashboard.yaml.", kind="path")
    reports_dir: str = param("reports", "Root of the HTML reports (index.html is rebuilt there).", kind="path")
    hide_input: bool = param(True, "Hide code cells in the HTML (the executed .ipynb keeps them).")
    data_source: str = param("mine", "01_data's source: mine (the demo) or released.")


def _stage_file(cfg: PipelineConfig, notebook: str) -> Path:
    path = Path(cfg.params_dir) / f"{notebook}.yaml"
    if not path.is_file():
        raise ParamsError(f"the pipeline needs {path.absolute()}")
    return path


def stages(cfg: PipelineConfig) -> list[tuple[str, str, dict[str, Any]]]:
    """``(notebook, output name, parameter overrides)`` of every execution, in order."""
    train = resolve_parameters("02_train", _stage_file(cfg, "02_train"))
    pope = resolve_parameters("03_pope", _stage_file(cfg, "03_pope"))
    shr = resolve_parameters("04_shr", _stage_file(cfg, "04_shr"))
    adapter = str(Path(train.output_dir) / "adapter")
    hadpo = {
        "03_pope": {"adapter": adapter, "run_dir": str(Path(pope.run_dir).parent / "hadpo")},
        "04_shr": {"adapter": adapter, "run_dir": str(Path(shr.run_dir).parent / "hadpo")},
    }
    return [
        ("00_world", "00_world", {}),
        ("01_data", "01_data", {"source": cfg.data_source}),
        ("02_train", "02_train", {}),
        ("03_pope", "03_pope_base", {}),
        ("03_pope", "03_pope_hadpo", hadpo["03_pope"]),
        ("04_shr", "04_shr_base", {}),
        ("04_shr", "04_shr_hadpo", hadpo["04_shr"]),
        ("05_dashboard", "05_dashboard", {"report_dir": str(Path(cfg.reports_dir) / cfg.name)}),
    ]


def run_pipeline(cfg: PipelineConfig, log: Callable[[str], Any] = print, *, stream_output: bool = False) -> Path:
    """Execute every stage (skipping finished ones) and rebuild the reports index; returns its path.

    ``stream_output`` forwards what each notebook prints to the ``papermill`` logger while it runs.
    """
    from hadpo.report.html import INDEX_FILE, write_index

    out = Path(cfg.reports_dir) / cfg.name
    plan = stages(cfg)
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


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    add_params_arguments(parser)
    parser.set_defaults(func=_demo)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` subcommand (the whole pipeline)."""
    demo = subparsers.add_parser(
        "demo", help="run the whole pipeline (00 → 05) and write reports/",
        description="Run every notebook in order with the params files of params_dir, writing the executed "
        "notebooks and their HTML under reports/<name>/ and reports/index.html (e.g. -f params/demo.yaml).")
    _add_arguments(demo)
    demo.legacy = {"keys": PipelineConfig.field_names()}  # type: ignore[attr-defined]


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
