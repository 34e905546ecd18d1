"""``hadpo mmhal`` (answer + judge + score) and ``hadpo mmhal-judge`` (judge a filled question file).

Parameters are MmhalConfig keys in papermill's syntax: ``-f params/world/07_mmhal.yaml -p limit 8``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hadpo.overrides import add_params_arguments


def _run(args: argparse.Namespace, extra: dict[str, Any]) -> int:
    from hadpo.eval.mmhal.config import MmhalConfig
    from hadpo.eval.mmhal.stage import run_mmhal, table_row
    from hadpo.overrides import config_from_args, print_results

    cfg = config_from_args(MmhalConfig, args, extra)
    metrics = run_mmhal(cfg)
    print_results(metrics, table_row(metrics), cfg.run_dir, as_json=args.json)
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    from hadpo.eval.mmhal.config import MmhalConfig

    add_params_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.legacy = {"keys": MmhalConfig.field_names()}  # type: ignore[attr-defined]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``mmhal`` and ``mmhal-judge`` to the ``hadpo`` command line."""
    run = subparsers.add_parser("mmhal", help="MMHal-Bench: answer its questions, have a judge rate each answer 0-6",
                                description="Answer MMHal-Bench's questions with a model, rate every answer 0-6 with "
                                "an LLM judge (or the shapes-world oracle), write judgement.json, scores.jsonl and "
                                "metrics.json (score overall and per type, hallucination rate).")
    _common(run)
    run.set_defaults(func=lambda args: _run(args, {}))

    judge = subparsers.add_parser("mmhal-judge", help="MMHal-Bench: judge a question file filled with model_answer",
                                  description="Judge answers made elsewhere: the question file with every "
                                  "model_answer filled in (as MMHal-Bench's own evaluation reads it), e.g. hadpo "
                                  "mmhal-judge answers.json -p data_root data -p run_dir runs/mmhal/x.")
    judge.add_argument("responses", help="the question file with model_answer filled in")
    _common(judge)
    # A file named on the command line is relative to where the command runs.
    judge.set_defaults(func=lambda args: _run(args, {"responses": str(Path(args.responses).absolute())}))
