"""Params files and notebook parameters cells, written from the config classes: ``hadpo sync``.

A params file's keys, order, section headers and help comments come from its config class; its values are the
preset's own data (``params/world`` is the embedded default, ``params/world-ci`` the tests' sizes, ``params/7b``
the original recipe), so sync keeps them, fills a key the file lacks with the class default, and refuses an
unknown one. The first comment lines of a file (the command that runs it, what it is for) are kept as written.
Each notebook's parameters cell is written from ``params/world/<notebook>.yaml``.

``hadpo sync --check`` changes nothing and exits 1 naming every file that is out of date (the tests run it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from hadpo.config import Params, read_params_file
from hadpo.errors import ParamsError
from hadpo.notebooks import DEFAULT_PRESET, NOTEBOOK_DIR, PARAMS_DIR, config_class, notebooks
from hadpo.pipeline import PipelineConfig

#: Width of the generated files' lines (section rules).
WIDTH = 118
#: Values shorter than this are padded so the help comments line up.
VALUE_COLUMN = 28
#: Folders under params/ that hold no stage presets.
NOT_PRESETS = frozenset({"deepspeed"})


def yaml_value(value: Any) -> str:
    """One value as flow-style YAML on one line (reads back equal)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9, allow_unicode=True, sort_keys=False)
    text = text.strip()
    if text.endswith("\n..."):
        text = text[: -len("\n...")]
    text = text.removesuffix("...").strip()
    if yaml.safe_load(text) != value:
        raise ValueError(f"cannot write {value!r} as one YAML line")
    return text


def _rule(title: str) -> str:
    head = f"# --- {title} "
    return head + "-" * max(3, WIDTH - len(head))


def _lines(cls: type[Params], values: dict[str, Any], render: Any, assign: str) -> list[str]:
    keys = cls.keys()
    rendered = {name: render(values[name]) for name in keys}
    key_width = max(len(name) for name in keys) + len(assign)
    value_width = min(VALUE_COLUMN, max(len(v) for v in rendered.values()))
    out: list[str] = []
    for name, key in keys.items():
        if key.section:
            out.append(_rule(key.section))
        left = f"{(name + assign):<{key_width}} {rendered[name]:<{value_width}}"
        out.append(f"{left} # {key.help}".rstrip())
    return out


def header_of(text: str) -> list[str]:
    """The leading comment block of a params file (kept by sync), without the generated section rules."""
    out = []
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            break
        if line.startswith("# --- "):
            break
        out.append(line.rstrip())
    while out and not out[-1]:
        out.pop()
    return out


def params_file_text(cls: type[Params], values: dict[str, Any], header: list[str]) -> str:
    """A complete params file: the header, then every key of ``cls`` with its value and help."""
    keys = cls.keys()
    unknown = [k for k in values if k not in keys]
    if unknown:
        raise ParamsError(f"unknown parameter(s) {unknown} for {cls.__name__}")
    full = {**cls.defaults(), **values}
    body = _lines(cls, full, yaml_value, ":")
    return "\n".join([*header, "", *body]) + "\n"


def parameters_cell_text(cls: type[Params], values: dict[str, Any], preset_file: str) -> str:
    """A notebook's parameters cell: every key as a Python assignment, with its help, from the preset's values."""
    full = {**cls.defaults(), **values}
    head = [f"# Parameters (papermill injects overrides below this cell). Values: {preset_file}, written by "
            "`hadpo sync`."]
    return "\n".join(head + _lines(cls, full, repr, " ="))


def params_targets() -> list[tuple[Path, type[Params]]]:
    """Every params file of the kit with the class that reads it."""
    out: list[tuple[Path, type[Params]]] = []
    stage_names = set(notebooks())
    for folder in sorted(p for p in PARAMS_DIR.iterdir() if p.is_dir() and p.name not in NOT_PRESETS):
        for path in sorted(folder.glob("*.yaml")):
            if path.stem not in stage_names:
                raise ParamsError(f"{path}: no notebook {path.stem!r} (known: {', '.join(sorted(stage_names))})")
            out.append((path, config_class(path.stem)))
    out += [(path, PipelineConfig) for path in sorted(PARAMS_DIR.glob("*.yaml"))]
    return out


def sync(*, check: bool = False) -> list[Path]:
    """Rewrite every params file and parameters cell that differs from what the classes give; returns them.

    With ``check`` nothing is written. Every file is first loaded against its class, so a bad value stops sync.
    """
    import nbformat

    changed: list[Path] = []
    for path, cls in params_targets():
        cls.from_sources([path])  # a value the class refuses is an error here, not a silently rewritten file
        text = path.read_text(encoding="utf-8")
        new = params_file_text(cls, read_params_file(path), header_of(text))
        if new != text:
            changed.append(path)
            if not check:
                path.write_text(new, encoding="utf-8")
    for notebook in notebooks():
        preset = PARAMS_DIR / DEFAULT_PRESET / f"{notebook}.yaml"
        cls = config_class(notebook)
        cell_text = parameters_cell_text(cls, read_params_file(preset), f"params/{DEFAULT_PRESET}/{notebook}.yaml")
        nb_path = NOTEBOOK_DIR / f"{notebook}.ipynb"
        nb = nbformat.read(str(nb_path), as_version=4)
        cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        if cell.source != cell_text:
            changed.append(nb_path)
            if not check:
                cell.source = cell_text
                nbformat.write(nb, str(nb_path))
    return changed


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``sync`` subcommand."""
    p = subparsers.add_parser(
        "sync", help="write the params files and notebook parameters cells from the config classes",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 when a file is out of date")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    changed = sync(check=args.check)
    root = PARAMS_DIR.parent
    for path in changed:
        verb = "out of date" if args.check else "written"
        print(f"{path.relative_to(root)}: {verb}", file=sys.stderr if args.check else sys.stdout)
    if args.check and changed:
        print("hadpo sync: run `hadpo sync` (or `make sync`) to update them", file=sys.stderr)
        return 1
    return 0
