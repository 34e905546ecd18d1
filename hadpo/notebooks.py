"""Run the kit's notebooks headlessly with papermill, with strict parameters, and render them to HTML.

papermill only *warns* about a parameter the notebook does not declare, so a typo silently runs the defaults;
here every notebook is tied to its config dataclass and an unknown or ill-typed parameter is an error before
any kernel starts. The same notebooks also run alone, in JupyterLab or with ``papermill -f params/...``.

``python -m hadpo.notebooks demo`` (``make demo``) runs the whole pipeline on the shapes world.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from hadpo.config import Params
from hadpo.errors import ParamsError
from hadpo.io import atomic_write_json, atomic_write_text, read_json, sha256_json

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"

#: notebook stem → "module:ConfigClass" holding its parameters.
NOTEBOOK_CONFIGS: dict[str, str] = {
    "00_world": "hadpo.basemodel:BaseModelConfig",
    "01_data": "hadpo.mining.config:DataConfig",
    "02_train": "hadpo.train.config:TrainConfig",
    "03_pope": "hadpo.eval.pope.config:PopeConfig",
    "04_shr": "hadpo.eval.shr.config:ShrConfig",
    "05_dashboard": "hadpo.report.dashboard:DashboardConfig",
}


def config_class(notebook: str) -> type[Params]:
    """The config dataclass of a notebook (by stem, e.g. ``03_pope``)."""
    try:
        module, name = NOTEBOOK_CONFIGS[notebook].split(":")
    except KeyError:
        raise ParamsError(f"unknown notebook {notebook!r}; known: {', '.join(NOTEBOOK_CONFIGS)}") from None
    return getattr(importlib.import_module(module), name)


def resolve_parameters(notebook: str, params_file: str | Path | None = None,
                       parameters: Mapping[str, Any] | None = None) -> Params:
    """Merge a params file and explicit parameters, and check them against the notebook's config class.

    Unknown keys and wrong types raise :class:`ParamsError` naming the key (papermill would only warn).
    """
    cls = config_class(notebook)
    data: dict[str, Any] = {}
    source = notebook
    if params_file is not None:
        loaded = yaml.safe_load(Path(params_file).read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise ParamsError(f"{params_file}: expected a mapping of parameters")
        data.update(loaded)
        source = str(params_file)
    data.update(parameters or {})
    return cls.from_dict(data, source=source)


def parameters_help(notebook: str) -> str:
    """Every parameter of a notebook: name, type, default and help, one per line."""
    import dataclasses
    import typing

    cls = config_class(notebook)
    hints = typing.get_type_hints(cls)
    defaults = cls().to_dict()
    lines = [f"{notebook} ({cls.__module__}.{cls.__name__})"]
    for f in dataclasses.fields(cls):
        kind = getattr(hints[f.name], "__name__", str(hints[f.name]).replace("typing.", ""))
        lines.append(f"  {f.name} [{kind}] = {defaults[f.name]!r}\n      {f.metadata.get('help', '')}")
    return "\n".join(lines)


def render_html(ipynb: str | Path, html_path: str | Path, *, hide_input: bool = False) -> Path:
    """Convert an executed notebook to standalone HTML (inputs hidden when ``hide_input``)."""
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter()
    exporter.exclude_input = hide_input
    exporter.exclude_input_prompt = hide_input
    exporter.exclude_output_prompt = hide_input
    body, _ = exporter.from_notebook_node(nbformat.read(str(ipynb), as_version=4))
    return atomic_write_text(html_path, body)


def execute(notebook: str, out_dir: str | Path, *, params_file: str | Path | None = None,
            parameters: Mapping[str, Any] | None = None, name: str | None = None, html: bool = True,
            hide_input: bool = False, skip_finished: bool = True, log: Callable[[str], Any] = print,
            progress: bool = True, stream_output: bool = False) -> Path:
    """Execute ``notebooks/<notebook>.ipynb`` into ``out_dir/<name>.ipynb`` (+ ``.html``); returns the ipynb path.

    The notebook receives the *resolved* parameters (every field of its config), so the executed copy records
    exactly what ran. With ``skip_finished``, an output already executed with the same parameters is kept.
    ``progress`` shows papermill's bar over the cells; ``stream_output`` also forwards what the cells print
    (training bars, for instance) to the ``papermill`` logger as they run.
    """
    import papermill

    cfg = resolve_parameters(notebook, params_file, parameters)
    values = cfg.to_dict()
    out_dir = Path(out_dir)
    name = name or notebook
    out_nb, out_html, stamp = out_dir / f"{name}.ipynb", out_dir / f"{name}.html", out_dir / f".{name}.done.json"
    key = sha256_json({"notebook": notebook, "parameters": values})
    if skip_finished and stamp.is_file() and read_json(stamp).get("key") == key and out_nb.is_file():
        log(f"[hadpo] {name}: finished earlier with the same parameters, skipped")
        return out_nb
    out_dir.mkdir(parents=True, exist_ok=True)
    log(f"[hadpo] {name}: running notebooks/{notebook}.ipynb")
    t0 = time.time()
    papermill.execute_notebook(
        str(NOTEBOOK_DIR / f"{notebook}.ipynb"), str(out_nb), parameters=values, kernel_name="python3",
        progress_bar=progress, log_output=stream_output, cwd=str(Path.cwd()),
    )
    if html:
        render_html(out_nb, out_html, hide_input=hide_input)
    seconds = round(time.time() - t0, 1)
    atomic_write_json(stamp, {"key": key, "notebook": notebook, "seconds": seconds})
    log(f"[hadpo] {name}: done in {seconds} s")
    return out_nb


def main(argv: list[str] | None = None) -> int:
    """``python -m hadpo.notebooks run NOTEBOOK OUT_DIR [-f params.yaml] [-p key value]...`` or ``demo``."""
    parser = argparse.ArgumentParser(prog="python -m hadpo.notebooks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute one notebook with checked parameters")
    run.add_argument("notebook", choices=sorted(NOTEBOOK_CONFIGS))
    run.add_argument("out_dir")
    run.add_argument("-f", "--params-file")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"))
    run.add_argument("--name")
    run.add_argument("--no-skip", action="store_true", help="execute even if finished with the same parameters")
    show = sub.add_parser("params", help="list a notebook's parameters with their defaults and help")
    show.add_argument("notebook", choices=sorted(NOTEBOOK_CONFIGS))
    demo = sub.add_parser("demo", help="run the whole pipeline (00 → 05) and write reports/")
    demo.add_argument("--params", default="params/demo.yaml", help="pipeline params file")
    demo.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"))
    args = parser.parse_args(argv)
    if args.command == "params":
        print(parameters_help(args.notebook))
        return 0
    overrides = {k: yaml.safe_load(v) for k, v in args.parameter}
    if args.command == "run":
        execute(args.notebook, args.out_dir, params_file=args.params_file, parameters=overrides, name=args.name,
                skip_finished=not args.no_skip)
        return 0
    import logging

    from hadpo.pipeline import PipelineConfig, run_pipeline

    # papermill logs each cell's output at INFO: the demo's live progress (training bars included).
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("papermill").setLevel(logging.INFO)
    run_pipeline(PipelineConfig.from_yaml(args.params, **overrides), stream_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
