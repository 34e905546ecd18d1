"""Run the kit's notebooks headlessly with papermill, with strict parameters, and render them to HTML.

Every notebook is backed by one *stage* module, ``hadpo/<stage>/stage.py``, that declares ``NOTEBOOK`` (the
notebook's name), ``Config`` (its parameters) and ``run(cfg)`` (the stage's entry point); the notebook ↔ config map
follows from that rule (:func:`stage_modules`), with no list to keep in step.

papermill only *warns* about a parameter the notebook does not declare, so a typo silently runs the defaults;
here every parameter is checked against the stage's config before any kernel starts, and the notebook receives
the *resolved* values (every key, paths absolute), so the executed copy records exactly what ran and runs the
same from any folder. The same notebooks also run alone, in JupyterLab or with ``papermill -f params/...``::

    python -m hadpo.notebooks run 03_pope reports/x -f params/world/03_pope.yaml -p set adv
    python -m hadpo.notebooks params 03_pope
"""

from __future__ import annotations

import argparse
import ast
import functools
import importlib
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from hadpo.config import Params
from hadpo.errors import HadpoError, ParamsError
from hadpo.io import atomic_write_json, atomic_write_text, read_json, sha256_json
from hadpo.overrides import VERBOSE_HELP, add_params_arguments, overrides, run_reporting_errors

PACKAGE_DIR = Path(__file__).resolve().parent
#: The kit's checkout: the notebooks/ and params/ folders beside the package.
REPO_ROOT = PACKAGE_DIR.parent
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
PARAMS_DIR = REPO_ROOT / "params"
#: The params preset whose values a notebook's parameters cell holds (a bare run is the embedded default).
DEFAULT_PRESET = "world"


@functools.cache
def stage_modules() -> dict[str, str]:
    """``{notebook: stage module}`` for every ``hadpo/**/stage.py`` (read without importing it)."""
    out: dict[str, str] = {}
    for path in sorted(PACKAGE_DIR.rglob("stage.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        name = next((node.value.value for node in tree.body if isinstance(node, ast.Assign)
                     and any(isinstance(t, ast.Name) and t.id == "NOTEBOOK" for t in node.targets)
                     and isinstance(node.value, ast.Constant)), None)
        if name is None:
            raise RuntimeError(f"{path} declares no NOTEBOOK = '<name>'")
        module = ".".join(("hadpo", *path.relative_to(PACKAGE_DIR).with_suffix("").parts))
        if name in out:
            raise RuntimeError(f"notebook {name!r} is claimed by {out[name]} and {module}")
        out[name] = module
    return dict(sorted(out.items()))


def notebooks() -> list[str]:
    """Every notebook of the kit, in pipeline order."""
    return list(stage_modules())


def stage(notebook: str) -> ModuleType:
    """The stage module behind a notebook (by name, e.g. ``03_pope``)."""
    try:
        module = stage_modules()[notebook]
    except KeyError:
        raise ParamsError(f"unknown notebook {notebook!r}; known: {', '.join(stage_modules())}") from None
    return importlib.import_module(module)


def config_class(notebook: str) -> type[Params]:
    """The config class of a notebook (by name, e.g. ``03_pope``)."""
    return stage(notebook).Config


def resolve_parameters(notebook: str, params_file: str | Path | None = None,
                       parameters: Mapping[str, Any] | None = None, *, files: list[str | Path] | None = None) -> Params:
    """Merge params files and explicit parameters, and check them against the notebook's config class.

    Unknown keys and wrong types raise :class:`ParamsError` naming the key (papermill would only warn).
    """
    sources = list(files or []) + ([params_file] if params_file is not None else [])
    return config_class(notebook).from_sources(sources, parameters or {},
                                               source=", ".join(map(str, sources)) or notebook)


def parameters_help(notebook: str) -> str:
    """Every parameter of a notebook: name, type, default and help, one per line."""
    from hadpo.config import type_name

    cls = config_class(notebook)
    lines = [f"{notebook} ({cls.__module__}.{cls.__name__})"]
    for key in cls.keys().values():
        lines.append(f"  {key.name} [{type_name(key.hint)}] = {key.default!r}\n      {key.help}")
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


class NotebookFailed(HadpoError):
    """A cell of an executed notebook raised; the message names the notebook, the cell and the error."""

    def __init__(self, name: str, exc: Any, executed: Path) -> None:
        self.ename, self.evalue, self.executed = exc.ename, exc.evalue, executed
        evalue = " ".join(str(exc.evalue).split())
        super().__init__(f"{name} failed at cell In [{exc.exec_count}]: {exc.ename}: {evalue} "
                         f"(traceback in {executed})")


def _render_failed(out_nb: Path, out_html: Path, *, hide_input: bool) -> Path | None:
    """Render the executed copy of a failed run over the old HTML; remove the HTML when that is impossible."""
    try:
        if out_nb.is_file():
            return render_html(out_nb, out_html, hide_input=hide_input)
    except Exception:  # a torn notebook from a killed kernel: better no HTML than a stale one
        pass
    out_html.unlink(missing_ok=True)
    return None


def execute(notebook: str, out_dir: str | Path, *, params_file: str | Path | None = None,
            parameters: Mapping[str, Any] | None = None, files: list[str | Path] | None = None,
            name: str | None = None, html: bool = True, hide_input: bool = False, skip_finished: bool = True,
            log: Callable[[str], Any] = print, progress: bool = True, stream_output: bool = False) -> Path:
    """Execute ``notebooks/<notebook>.ipynb`` into ``out_dir/<name>.ipynb`` (+ ``.html``); returns the ipynb path.

    The notebook receives the *resolved* parameters (every key of its config), so the executed copy records
    exactly what ran. With ``skip_finished``, an output already executed with the same parameters is kept.
    ``progress`` shows papermill's bar over the cells; ``stream_output`` also forwards what the cells print
    (training bars, for instance) to the ``papermill`` logger as they run.
    """
    import papermill

    cfg = resolve_parameters(notebook, params_file, parameters, files=files)
    values = cfg.to_dict()
    out_dir = Path(out_dir).absolute()
    name = name or notebook
    out_nb, out_html, stamp = out_dir / f"{name}.ipynb", out_dir / f"{name}.html", out_dir / f".{name}.done.json"
    key = sha256_json({"notebook": notebook, "parameters": values})
    if skip_finished and stamp.is_file() and read_json(stamp).get("key") == key and out_nb.is_file():
        log(f"[hadpo] {name}: finished earlier with the same parameters, skipped")
        return out_nb
    out_dir.mkdir(parents=True, exist_ok=True)
    # From here until success the folder holds no finished run: a failed or killed run is never "skipped" later.
    stamp.unlink(missing_ok=True)
    log(f"[hadpo] {name}: running notebooks/{notebook}.ipynb")
    t0 = time.time()
    try:
        # The kernel starts in the output folder, as JupyterLab would open the executed copy: every path it gets
        # is absolute, and a relative one resolves against the project root, so the folder does not matter.
        papermill.execute_notebook(
            str(NOTEBOOK_DIR / f"{notebook}.ipynb"), str(out_nb), parameters=values, kernel_name="python3",
            progress_bar=progress, log_output=stream_output, cwd=str(out_dir),
        )
    except BaseException as exc:
        # The HTML must show this run, not an earlier good one: the failed notebook's (with its traceback), or
        # none when there is no executed copy to render.
        shown = _render_failed(out_nb, out_html, hide_input=hide_input) if html else None
        if isinstance(exc, papermill.PapermillExecutionError):
            raise NotebookFailed(name, exc, shown or out_nb) from None
        raise
    if html:
        render_html(out_nb, out_html, hide_input=hide_input)
    seconds = round(time.time() - t0, 1)
    atomic_write_json(stamp, {"key": key, "notebook": notebook, "seconds": seconds})
    log(f"[hadpo] {name}: done in {seconds} s")
    return out_nb


def main(argv: list[str] | None = None) -> int:
    """``python -m hadpo.notebooks run NOTEBOOK OUT_DIR [-f params.yaml] [-p key value]...`` or ``params``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = "python -m hadpo.notebooks"
    if argv[:1] == ["demo"]:
        rest = [("-f" if a == "--params" else a) for a in argv[1:]]
        new = " ".join(rest or ["-f", "params/demo.yaml"])
        print(f"{prog}: the demo is a hadpo command now; use: hadpo demo {new}", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute one notebook with checked parameters")
    run.add_argument("notebook", choices=notebooks())
    run.add_argument("out_dir")
    add_params_arguments(run)
    run.add_argument("--name")
    run.add_argument("--no-skip", action="store_true", help="execute even if finished with the same parameters")
    show = sub.add_parser("params", help="list a notebook's parameters with their defaults and help")
    show.add_argument("notebook", choices=notebooks())
    args = parser.parse_args(argv)
    if args.command == "params":
        print(parameters_help(args.notebook))
        return 0

    def _run() -> int:
        execute(args.notebook, args.out_dir, files=args.params_files,
                parameters=overrides(args, config_class(args.notebook)), name=args.name,
                skip_finished=not args.no_skip)
        return 0

    return run_reporting_errors(f"{prog} run", _run, verbose=args.verbose)


if __name__ == "__main__":
    sys.exit(main())
