"""The ``hadpo`` command line: one subcommand per stage, each defined next to the code it runs.

Every subcommand module exposes ``register(subparsers)`` and must stay light to import (no torch at module
level), so ``hadpo --help`` is quick. Parameters come in papermill's syntax everywhere (``-f FILE``,
``-p KEY VALUE``; :mod:`hadpo.overrides`); a subcommand parser may carry ``legacy`` (keyword arguments of
:func:`hadpo.overrides.legacy_form`) so the forms the kit used before are answered with the new one.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys
from collections.abc import Sequence

from hadpo.overrides import VERBOSE_HELP, refuse_legacy, run_reporting_errors

#: module paths whose ``register(subparsers)`` adds subcommands, in the order ``--help`` lists them.
COMMAND_MODULES = (
    "hadpo.world.cli",
    "hadpo.data.cli",
    "hadpo.mining.cli",
    "hadpo.eval.pope.cli",
    "hadpo.eval.shr.cli",
    "hadpo.eval.chair.cli",
    "hadpo.eval.amber.cli",
    "hadpo.eval.mmhal.cli",
    "hadpo.train.cli",
    "hadpo.pipeline",
    "hadpo.report.compare",
    "hadpo.sync",
)


def package_version() -> str:
    """The installed ``hadpo`` distribution's version (``unknown`` when the package is not installed)."""
    try:
        return importlib.metadata.version("hadpo")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never pip-installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="hadpo",
        description="Hallucination-aware preference optimisation for LLaVA: build the shapes world, validate "
        "data, train LoRA-DPO, score POPE and SHR. Each subcommand has its own --help; parameters are given as "
        "papermill gives them: -f params.yaml -p key value.",
    )
    parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    parser.add_argument("--version", action="version", version=f"hadpo {package_version()}",
                        help="print the installed kit's version and exit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            # A stage not installed in this build of the kit (its module or its package is missing).
            if exc.name is not None and (name == exc.name or name.startswith(f"{exc.name}.")):
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hadpo`` console script; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    command = next((a for a in argv if not a.startswith("-")), None)
    sub = subparsers.choices.get(command) if command else None
    legacy = getattr(sub, "legacy", None)
    if legacy is not None:
        rest = argv[argv.index(command) + 1 :]
        refuse_legacy(f"hadpo {command}", rest, **legacy)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return run_reporting_errors(f"hadpo {args.command}", lambda: int(args.func(args) or 0), verbose=args.verbose)


if __name__ == "__main__":
    sys.exit(main())
