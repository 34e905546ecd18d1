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

The kernel of such a run prints every progress bar as one summary line (:mod:`hadpo.progress`), and its HTML
page says what ran even with the code hidden: a compact table of the parameters that matter, the notebook, the
run and the commit (:func:`run_parameters_html`), under a title naming the notebook and the run.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import datetime as dt
import functools
import html
import importlib
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from hadpo.config import Params
from hadpo.display import Table, shown_value, table  # noqa: F401 (the notebooks' display helpers)
from hadpo.errors import HadpoError, ParamsError
from hadpo.io import atomic_write_json, atomic_write_text, read_json, sha256_json
from hadpo.overrides import VERBOSE_HELP, add_params_arguments, overrides, run_reporting_errors
from hadpo.progress import PROGRESS_ENV, format_duration
from hadpo.specs import RerunSpec

PACKAGE_DIR = Path(__file__).resolve().parent
#: The kit's checkout: the notebooks/ and params/ folders beside the package.
REPO_ROOT = PACKAGE_DIR.parent
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
PARAMS_DIR = REPO_ROOT / "params"
#: The params preset whose values a notebook's parameters cell holds (a bare run is the embedded default).
DEFAULT_PRESET = "world"
#: What the kernel of a headless run gets in its environment (its child processes, the training run, inherit it):
#: an executed notebook keeps every redraw of a progress bar as a line, so each bar prints one summary line instead.
KERNEL_ENV: dict[str, str] = {PROGRESS_ENV: "summary"}

#: The parameters a report page shows at its top, by group, those the notebook has: what ran, on what, how. The
#: executed notebook's parameters cell keeps every value.
REPORT_PARAMETERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Model", ("model", "adapter", "merge_adapter", "objective", "dtype", "device", "model_name")),
    ("Data", ("source", "data_root", "data_name", "name", "set", "pope_sets", "questions", "responses", "limit",
              "eval_limit", "n_images", "num_images", "max_pairs", "sampling", "train_images", "pope_images",
              "shr_images", "bench_images", "synonyms", "evaluation")),
    ("Decoding", ("template", "instruction", "prompt_variant", "image_mode", "num_beams", "eval_num_beams", "do_sample",
                  "sample_temperature", "sample_top_p", "max_new_tokens", "rule")),
    ("Training", ("launcher", "lora_r", "lora_alpha", "beta", "gamma", "loss_type", "learning_rate", "num_epochs",
                  "max_steps", "per_device_batch_size", "gradient_accumulation_steps", "sft_epochs", "sft_max_steps",
                  "sft_batch_size", "sft_learning_rate")),
    ("Judge", ("judge", "judge_model", "base_url", "num_runs", "counting", "judge_prompt", "judge_format")),
    ("Compared", ("base_pope_dir", "hadpo_pope_dir", "base_shr_dir", "hadpo_shr_dir", "base_chair_dir",
                  "hadpo_chair_dir", "base_amber_dir", "hadpo_amber_dir", "base_mmhal_dir", "hadpo_mmhal_dir",
                  "train_dir", "bootstrap_resamples", "confidence")),
    ("Seeds", ("seed", "data_seed", "image_seed", "sample_seed", "judge_seed")),
    ("Output", ("model_dir", "output_dir", "run_dir", "report_dir")),
)
#: What an unset (None) parameter means, for those whose absence is part of what ran; other None values are left out.
_NONE_MEANS = {"adapter": "none (base model)", "limit": "all", "eval_limit": "all", "max_pairs": "all"}
#: Parameters shown only where they take effect.
_SHOWN_WHEN: dict[str, Callable[[Mapping[str, Any]], bool]] = {
    "merge_adapter": lambda p: p.get("adapter") is not None,
    **dict.fromkeys(("judge_model", "base_url", "judge_seed"), lambda p: p.get("judge") != "oracle"),
    **dict.fromkeys(("sample_temperature", "sample_top_p", "sample_seed"), lambda p: bool(p.get("do_sample"))),
}


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


def _when(stamp: Any) -> str | None:
    """papermill's ISO time stamp as ``YYYY-MM-DD HH:MM UTC``."""
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        parsed = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.timezone.utc)
    return parsed.strftime("%Y-%m-%d %H:%M UTC")


def page_title(name: str, run: str) -> str:
    """A report page's title: the executed notebook's name and the run, e.g. ``03_pope_hadpo — demo``."""
    return f"{name} — {run}"


def run_parameters_html(nb: Any, *, run: str, commit: str | None) -> str:
    """What ran, as a compact HTML table: notebook, run, commit and execution, then the parameters that matter
    (:data:`REPORT_PARAMETERS`) from papermill's record of what it injected (``nb.metadata.papermill``)."""
    record = nb.metadata.get("papermill", {}) or {}
    params: Mapping[str, Any] = record.get("parameters") or {}

    def item(label: str, value: str) -> str:
        return f"{html.escape(label)} <code>{html.escape(value)}</code>"

    run_items = []
    if record.get("input_path"):
        run_items.append(item("notebook", Path(record["input_path"]).stem))
    run_items.append(item("run", run))
    dirty = "-dirty" if commit and commit.endswith("-dirty") else ""
    run_items.append(item("commit", commit[:12] + dirty if commit else "unknown"))
    executed = _when(record.get("start_time"))
    if executed:
        duration = record.get("duration")
        took = f", {format_duration(float(duration))}" if isinstance(duration, (int, float)) else ""
        status = ", <b>failed</b>" if record.get("exception") else ""
        run_items.append(f"executed {html.escape(executed)}{took}{status}")
    rows = [("Run", run_items)]
    for group, keys in REPORT_PARAMETERS:
        items = []
        for key in keys:
            if key not in params or not _SHOWN_WHEN.get(key, lambda _: True)(params):
                continue
            value = params[key]
            if value is None and key not in _NONE_MEANS:
                continue
            items.append(item(key, _NONE_MEANS[key] if value is None else shown_value(value)))
        if items:
            rows.append((group, items))
    body = "".join(f'<tr><th>{html.escape(group)}</th><td style="text-align: left">{" · ".join(items)}</td></tr>'
                   for group, items in rows)
    # Left-aligned: the notebook styles centre a markdown cell's tables.
    return f'<table class="hadpo-run-parameters" style="margin-left: 0"><tbody>{body}</tbody></table>'


def _with_run_parameters(nb: Any, fragment: str) -> Any:
    """``nb`` with the HTML ``fragment`` in a markdown cell under the first heading after the parameters cell(s)
    ("1. Parameters"), where hidden inputs would leave nothing. (Markdown passes HTML through; nbconvert strips
    tables from raw cells.)"""
    import nbformat

    cells = nb.cells
    tagged = [i for i, c in enumerate(cells) if {"parameters", "injected-parameters"} & set(c.metadata.get("tags", []))]
    after = tagged[-1] if tagged else 0
    heading = next((i for i in range(after + 1, len(cells)) if cells[i].cell_type == "markdown"), after)
    cell = nbformat.v4.new_markdown_cell(fragment)
    if nb.get("nbformat_minor", 0) >= 5:
        cell["id"] = "hadpo-run-parameters"  # a fixed id: the same notebook renders to the same page
    else:
        cell.pop("id", None)  # cell ids came with format 4.5
    nb.cells = [*cells[: heading + 1], cell, *cells[heading + 1 :]]
    return nb


def render_html(ipynb: str | Path, html_path: str | Path, *, hide_input: bool = False, title: str | None = None,
                commit: str | None = None) -> Path:
    """Convert an executed notebook to standalone HTML (inputs hidden when ``hide_input``) that says what ran.

    The page is titled ``title`` (default :func:`page_title` of the HTML file's name and its folder, the run),
    and a table of what ran (:func:`run_parameters_html`) sits under the notebook's parameters heading;
    ``commit`` defaults to the checkout's commit now (:func:`execute` passes the one it ran).
    """
    import nbformat
    from nbconvert import HTMLExporter

    from hadpo.manifest import git_commit

    html_path = Path(html_path)
    run = html_path.absolute().parent.name
    title = title or page_title(html_path.stem, run)
    nb = nbformat.read(str(ipynb), as_version=4)
    nb = _with_run_parameters(nb, run_parameters_html(nb, run=run, commit=commit or git_commit(REPO_ROOT)))
    nb.metadata["title"] = title  # nbconvert's <title>; without it every page is "Notebook"
    # The kit's template: nbconvert's lab page minus the CDN scripts (hadpo/templates/report.html.j2).
    exporter = HTMLExporter(template_name="lab", extra_template_paths=[str(PACKAGE_DIR / "templates")],
                            template_file="report.html.j2")
    exporter.exclude_input = hide_input
    exporter.exclude_input_prompt = hide_input
    exporter.exclude_output_prompt = hide_input
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    return atomic_write_text(html_path, body)


class NotebookFailed(HadpoError):
    """A cell of an executed notebook raised; the message names the notebook, the cell and the error."""

    def __init__(self, name: str, exc: Any, executed: Path) -> None:
        self.ename, self.evalue, self.executed = exc.ename, exc.evalue, executed
        evalue = " ".join(str(exc.evalue).split())
        super().__init__(f"{name} failed at cell In [{exc.exec_count}]: {exc.ename}: {evalue} "
                         f"(traceback in {executed})")


def _render_failed(out_nb: Path, out_html: Path, *, hide_input: bool, commit: str | None = None) -> Path | None:
    """Render the executed copy of a failed run over the old HTML; remove the HTML when that is impossible."""
    try:
        if out_nb.is_file():
            return render_html(out_nb, out_html, hide_input=hide_input, commit=commit)
    except Exception:  # a torn notebook from a killed kernel: better no HTML than a stale one
        pass
    out_html.unlink(missing_ok=True)
    return None


@contextlib.contextmanager
def kernel_environment() -> Iterator[None]:
    """This process's environment with :data:`KERNEL_ENV` inside the block (a kernel started in it inherits it);
    a value the user set already stands, unless it is ``auto``."""
    saved = {key: os.environ.get(key) for key in KERNEL_ENV}
    for key, value in KERNEL_ENV.items():
        if (saved[key] or "auto").strip().lower() == "auto":
            os.environ[key] = value
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def execute(notebook: str, out_dir: str | Path, *, params_file: str | Path | None = None,
            parameters: Mapping[str, Any] | None = None, files: list[str | Path] | None = None,
            name: str | None = None, html: bool = True, hide_input: bool = False, skip_finished: bool = True,
            log: Callable[[str], Any] = print, progress: bool = True, stream_output: bool = False) -> Path:
    """Execute ``notebooks/<notebook>.ipynb`` into ``out_dir/<name>.ipynb`` (+ ``.html``); returns the ipynb path.

    The notebook receives the *resolved* parameters (every key of its config), so the executed copy records
    exactly what ran. With ``skip_finished``, an output already executed with the same parameters is kept, unless
    the parameters say ``force`` (the stage redoes its work, so the notebook runs again).
    ``progress`` shows papermill's bar over the cells; ``stream_output`` also forwards what the cells print
    (training bars, for instance) to the ``papermill`` logger as they run. The kernel runs in
    :func:`kernel_environment`: every bar of the kit leaves one summary line.
    """
    import papermill

    from hadpo.manifest import git_commit

    cfg = resolve_parameters(notebook, params_file, parameters, files=files)
    values = cfg.to_dict()
    out_dir = Path(out_dir).absolute()
    name = name or notebook
    out_nb, out_html, stamp = out_dir / f"{name}.ipynb", out_dir / f"{name}.html", out_dir / f".{name}.done.json"
    # ``force`` says how this run starts, not what it computes: a forced run counts as finished for a later one.
    key = sha256_json({"notebook": notebook, "parameters": RerunSpec.unrecorded(values)})
    if values.get("force"):
        skip_finished = False
    if skip_finished and stamp.is_file() and read_json(stamp).get("key") == key and out_nb.is_file():
        log(f"[hadpo] {name}: finished earlier with the same parameters, skipped")
        return out_nb
    out_dir.mkdir(parents=True, exist_ok=True)
    # From here until success the folder holds no finished run: a failed or killed run is never "skipped" later.
    stamp.unlink(missing_ok=True)
    log(f"[hadpo] {name}: running notebooks/{notebook}.ipynb")
    t0 = time.time()
    commit = git_commit(REPO_ROOT)  # the code that runs, whatever changes while it does
    try:
        # The kernel starts in the output folder, as JupyterLab would open the executed copy: every path it gets
        # is absolute, and a relative one resolves against the project root, so the folder does not matter.
        with kernel_environment():
            papermill.execute_notebook(
                str(NOTEBOOK_DIR / f"{notebook}.ipynb"), str(out_nb), parameters=values, kernel_name="python3",
                progress_bar=progress, log_output=stream_output, cwd=str(out_dir),
            )
    except BaseException as exc:
        # The HTML must show this run, not an earlier good one: the failed notebook's (with its traceback), or
        # none when there is no executed copy to render.
        shown = _render_failed(out_nb, out_html, hide_input=hide_input, commit=commit) if html else None
        if isinstance(exc, papermill.PapermillExecutionError):
            raise NotebookFailed(name, exc, shown or out_nb) from None
        raise
    if html:
        render_html(out_nb, out_html, hide_input=hide_input, title=page_title(name, out_dir.name), commit=commit)
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
