"""``hadpo shr`` (describe + judge + score) and ``hadpo shr-judge`` (judge a precomputed description file).

Parameters are ShrConfig keys in papermill's syntax: ``-f params/world/04_shr.yaml -p num_runs 3``. Heavy imports
happen inside the commands.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from hadpo.overrides import add_params_arguments


def _summary(metrics: dict[str, Any], run_dir: str) -> str:
    from hadpo.eval.shr.metrics import shr_markdown

    return f"{shr_markdown({'result': metrics})}\n\nwritten to {run_dir}/metrics.json"


def _run(args: argparse.Namespace, extra: dict[str, Any]) -> int:
    from hadpo.eval.shr.config import ShrConfig
    from hadpo.eval.shr.stage import run_shr
    from hadpo.overrides import config_from_args

    cfg = config_from_args(ShrConfig, args, extra)
    metrics = run_shr(cfg)
    if args.json:
        print(json.dumps({k: v for k, v in metrics.items() if k != "protocol"}, indent=2))
    else:
        print(_summary(metrics, cfg.run_dir))
    return 0


def _shr(args: argparse.Namespace) -> int:
    return _run(args, {})


def _shr_judge(args: argparse.Namespace) -> int:
    from pathlib import Path

    # A file named on the command line is relative to where the command runs.
    return _run(args, {"responses": str(Path(args.responses).absolute())})


def _common(parser: argparse.ArgumentParser) -> None:
    add_params_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    from hadpo.eval.shr.config import ShrConfig

    parser.legacy = {"keys": ShrConfig.field_names(), "flags": {"--run-dir": "run_dir", "--data-root": "data_root"}}  # type: ignore[attr-defined]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``shr`` and ``shr-judge`` to the ``hadpo`` command line."""
    shr = subparsers.add_parser("shr", help="SHR: describe the SHR images, judge every sentence, score",
                                description="Describe the SHR images with a model, judge each sentence with an "
                                "LLM (or the shapes-world oracle), write judgement.json and metrics.json.")
    _common(shr)
    shr.set_defaults(func=_shr)

    judge = subparsers.add_parser("shr-judge", help="SHR: judge a precomputed {image_id: description} JSON",
                                  description="Judge descriptions made elsewhere (one JSON object mapping SHR "
                                  "image ids to descriptions) and write judgement.json and metrics.json, e.g. "
                                  "hadpo shr-judge responses.json -p data_root data -p run_dir runs/shr/x.")
    judge.add_argument("responses", help="JSON file {image_id: description}")
    _common(judge)
    judge.set_defaults(func=_shr_judge)
