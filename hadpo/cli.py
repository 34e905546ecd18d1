"""The ``hadpo`` command line: one subcommand per stage, each defined next to the code it runs.

Every subcommand module exposes ``register(subparsers)`` and must stay light to import (no torch at module
level), so ``hadpo --help`` is quick.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: module paths whose ``register(subparsers)`` adds subcommands, in the order ``--help`` lists them.
COMMAND_MODULES = (
    "hadpo.world.cli",
    "hadpo.data.cli",
    "hadpo.eval.pope.cli",
    "hadpo.eval.shr.cli",
    "hadpo.train.cli",
    "hadpo.basecheck",
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="hadpo",
        description="Hallucination-aware preference optimisation for LLaVA: build the shapes world, validate "
        "data, train LoRA-DPO, score POPE and SHR. Each subcommand has its own --help.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # a stage not installed in this build of the kit
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hadpo`` console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
