"""The kit's one override syntax, papermill's: ``-f FILE`` and ``-p KEY VALUE``, for every command.

``papermill nb.ipynb out.ipynb -f params/x.yaml -p key value``, ``hadpo <command> -f params/x.yaml -p key value``,
``python -m hadpo.notebooks run NB OUT -f ... -p ...`` and ``hadpo demo -f ... -p ...`` read their parameters
the same way: the files in order (later wins), then ``-y`` YAML strings, then ``-p`` values parsed as papermill
parses them (``True``/``False``/``None``, integers, floats, else the text), then ``-r`` raw strings.

The forms the kit used before (``--params FILE``, ``--set KEY VALUE``, ``--set KEY=VALUE``, one ``--<key>``
option per field, a positional params file) are answered with one line showing the new command.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from hadpo.config import Params

P = TypeVar("P", bound=Params)


def parse_value(text: str) -> Any:
    """A ``-p`` value as papermill reads it: ``True``, ``False``, ``None``, an int, a float, else the text."""
    if text == "True":
        return True
    if text == "False":
        return False
    if text == "None":
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            continue
    return text


def add_params_arguments(parser: argparse.ArgumentParser) -> None:
    """Add papermill's ``-f``, ``-p``, ``-r`` and ``-y`` options to a command's parser."""
    group = parser.add_argument_group("parameters (papermill's syntax)")
    group.add_argument("-f", "--parameters_file", dest="params_files", action="append", default=[],
                       metavar="FILE", help="params YAML file (repeatable; later files win)")
    group.add_argument("-p", "--parameters", dest="params", nargs=2, action="append", default=[],
                       metavar=("KEY", "VALUE"), help="one parameter, value parsed as papermill does (repeatable)")
    group.add_argument("-r", "--parameters_raw", dest="params_raw", nargs=2, action="append", default=[],
                       metavar=("KEY", "VALUE"), help="one parameter, value kept as a string (repeatable)")
    group.add_argument("-y", "--parameters_yaml", dest="params_yaml", action="append", default=[],
                       metavar="YAML", help="parameters as a YAML mapping string (repeatable)")


def overrides(args: argparse.Namespace, cls: type[Params] | None = None) -> dict[str, Any]:
    """The ``-y``, ``-p`` and ``-r`` values of ``args``, in papermill's order.

    With ``cls``, a ``-p`` value that papermill would turn into a number but whose key only takes text (a model
    folder named ``7``) keeps its text.
    """
    out: dict[str, Any] = {}
    for text in getattr(args, "params_yaml", []):
        loaded = yaml.safe_load(text) or {}
        if not isinstance(loaded, dict):
            from hadpo.errors import ParamsError

            raise ParamsError(f"-y expects a YAML mapping, got {text!r}")
        out.update(loaded)
    keys = cls.keys() if cls is not None else {}
    for name, text in getattr(args, "params", []):
        value = parse_value(text)
        key = keys.get(name)
        if key is not None and isinstance(value, (int, float)) and not isinstance(value, bool) \
                and _takes_text_only(key.hint):
            value = text
        out[name] = value
    for name, text in getattr(args, "params_raw", []):
        out[name] = text
    return out


def _takes_text_only(hint: Any) -> bool:
    args = typing.get_args(hint) if typing.get_origin(hint) is not None else (hint,)
    return str in args and not ({int, float} & set(args))


def config_from_args(cls: type[P], args: argparse.Namespace, extra: Mapping[str, Any] | None = None) -> P:
    """Build ``cls`` from ``-f`` files, then ``extra`` (a command's own arguments), then ``-y``/``-p``/``-r``."""
    values = {**(extra or {}), **overrides(args, cls)}
    files = list(getattr(args, "params_files", []))
    source = ", ".join(files) if files else "command line"
    return cls.from_sources(files, values, source=source)


# ---- the old forms ----------------------------------------------------------------------------------------------


def print_results(metrics: Mapping[str, Any], row: Mapping[str, Any], run_dir: str | Path, *, as_json: bool,
                  digits: int = 2) -> None:
    """What a stage command prints: ``metrics`` as JSON (without its protocol) or its table ``row`` on one line,
    then where the metrics were written. Under ``torchrun`` only rank 0 prints: every rank returns the same
    metrics."""
    import json

    if os.environ.get("RANK", "0") != "0":
        return
    if as_json:
        print(json.dumps({k: v for k, v in metrics.items() if k != "protocol"}, indent=2))
        return
    print("  ".join(f"{k}: {v:.{digits}f}" if isinstance(v, float) else f"{k}: {v}" for k, v in row.items()))
    print(f"written to {run_dir}/metrics.json")


def legacy_form(argv: Sequence[str], *, keys: Sequence[str] = (), positional_file: bool = False,
                flags: Mapping[str, str] | None = None) -> list[str] | None:
    """The new-syntax equivalent of ``argv`` when it uses an old form, else None.

    ``keys`` are the command's parameter names (an old ``--<key> VALUE`` becomes ``-p key VALUE``);
    ``positional_file`` turns a leading ``*.yaml`` argument into ``-f``; ``flags`` maps other retired options to
    the key they now set, or to ``""`` when their value is now a positional argument.
    """
    names = set(keys)
    flags = dict(flags or {})
    out: list[str] = []
    changed = False
    i = 0
    tokens = list(argv)
    while i < len(tokens):
        token = tokens[i]
        flag, eq, inline = token.partition("=")
        if token in ("-p", "-r", "--parameters", "--parameters_raw"):
            out += tokens[i : i + 3]
            i += 3
            continue
        if flag == "--params":
            value = inline if eq else (tokens[i + 1] if i + 1 < len(tokens) else "FILE")
            out += ["-f", value]
            i += 1 if eq else 2
            changed = True
            continue
        if flag == "--set" and "set" not in names:  # POPE's ``--set adv`` was a key; elsewhere --set KEY VALUE
            if eq:  # --set=KEY=VALUE
                key, _, value = inline.partition("=")
                out += ["-p", key, value]
                i += 1
            elif i + 1 < len(tokens) and "=" in tokens[i + 1]:  # --set KEY=VALUE
                key, _, value = tokens[i + 1].partition("=")
                out += ["-p", key, value]
                i += 2
            else:  # --set KEY VALUE
                out += ["-p", *tokens[i + 1 : i + 3]]
                i += 3
            changed = True
            continue
        if flag.startswith("--"):
            name = flag[2:].replace("-", "_")
            if flag in flags or name in names:
                value = inline if eq else (tokens[i + 1] if i + 1 < len(tokens) else "VALUE")
                key = flags.get(flag, name)
                out += ["-p", key, value] if key else [value]
                i += 1 if eq else 2
                changed = True
                continue
        if positional_file and not token.startswith("-") and token.endswith((".yaml", ".yml")) \
                and "-f" not in tokens[:i]:
            out += ["-f", token]
            i += 1
            changed = True
            continue
        out.append(token)
        i += 1
    return out if changed else None


def refuse_legacy(prog: str, argv: Sequence[str], **kwargs: Any) -> None:
    """Exit with one line showing the new form when ``argv`` uses an old one (see :func:`legacy_form`)."""
    new = legacy_form(argv, **kwargs)
    if new is not None:
        print(f"{prog}: that form is gone; use papermill's -f FILE / -p KEY VALUE: {prog} {shlex.join(new)}",
              file=sys.stderr)
        raise SystemExit(2)


def run_reporting_errors(prog: str, func: Callable[[], int], *, verbose: bool = False,
                         log: str | Path | None = None) -> int:
    """Run ``func``; a kit error (bad data, parameters, launch, judge) becomes one line on stderr and exit 1.

    The traceback goes to ``log`` (default: :func:`error_log_path`), and to stderr with ``verbose``.
    """
    from hadpo.errors import HadpoError

    try:
        return func()
    except HadpoError as exc:
        import traceback

        detail = traceback.format_exc()
        path = Path(log) if log is not None else error_log_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as fh:
                fh.write(f"### {time.strftime('%Y-%m-%d %H:%M:%S')} {prog}\n{detail}")
        except OSError:  # an unwritable log must not hide the error itself
            pass
        if verbose:
            print(detail, file=sys.stderr, end="")
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        return 1


#: The ``--verbose`` option's help, shared by every command line of the kit.
VERBOSE_HELP = ("print the traceback of an error too (it always goes to the error log: $HADPO_ERROR_LOG, else "
                "~/.cache/hadpo/errors.log)")


def error_log_path() -> Path:
    """Where the ``hadpo`` commands append the traceback of a kit error: ``$HADPO_ERROR_LOG``, else
    ``$XDG_CACHE_HOME/hadpo/errors.log`` (``~/.cache/hadpo/errors.log``)."""
    if os.environ.get("HADPO_ERROR_LOG"):
        return Path(os.environ["HADPO_ERROR_LOG"])
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "hadpo" / "errors.log"


def one_line(exc: BaseException) -> str:
    """An error message on one line (the first line of a multi-line message, whitespace folded)."""
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.splitlines()[0].split())
