"""``hadpo pope-build``, ``hadpo pope-run`` and ``hadpo pope-score``: the POPE stage on the command line.

``pope-build`` and ``pope-run`` take :class:`PopeBuildConfig` / :class:`PopeConfig` keys in papermill's syntax
(``-f params/world/03_pope.yaml -p set adv``). ``pope-run`` runs under ``torchrun`` as well::

    torchrun --nproc_per_node 8 -m hadpo.cli pope-run -f params/7b/03_pope.yaml -p set all
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from hadpo.overrides import add_params_arguments


def register(subparsers: Any) -> None:
    """Add ``pope-build``, ``pope-run`` and ``pope-score`` to the ``hadpo`` parser."""
    from hadpo.eval.pope.config import PopeBuildConfig, PopeConfig

    build = subparsers.add_parser(
        "pope-build",
        help="build the POPE random/popular/adversarial question files from COCO instances",
        description="Draw images with >= 3 annotated categories and write POPE's three question files "
        "(3 present + 3 absent objects per image) under <data_root>/POPE/output/coco/. Same seed, same files.",
    )
    add_params_arguments(build)
    build.set_defaults(func=_build)
    build.legacy = {"keys": PopeBuildConfig.field_names()}

    run = subparsers.add_parser(
        "pope-run",
        help="answer and score a POPE set with a LLaVA model (+ adapter); resumable; torchrun-aware",
        description="Answer the questions (batched greedy decoding, each image encoded once), write "
        "<run_dir>/<set>/answers.jsonl + protocol.json + metrics.json and the run's metrics tables, and "
        "print the metrics as one JSON object.",
    )
    add_params_arguments(run)
    run.set_defaults(func=_run)
    run.legacy = {"keys": PopeConfig.field_names()}

    score = subparsers.add_parser(
        "pope-score",
        help="score a POPE answer file against a POPE question file; prints one JSON object",
        description="Match answers to labels by question_id (a missing, extra or duplicate id is an error) and "
        "print TP, FP, TN, FN, accuracy, precision, recall, F1, yes_ratio, unparseable and n.",
    )
    score.add_argument("--answers", required=True, metavar="JSONL", help="answers: question_id, answer per line")
    score.add_argument("--labels", required=True, metavar="JSON", help="POPE question file with labels")
    score.add_argument("--rule", choices=("pope", "strict"), default="pope",
                       help="pope: POPE's parser (default); strict: the first word must be yes/no")
    score.add_argument("--limit", type=int, default=None, metavar="N",
                       help="score only the first N questions of the label file (as pope-run -p limit N answers)")
    score.set_defaults(func=_score)


def _build(args: argparse.Namespace) -> int:
    from hadpo.eval.pope.build import build_pope_files
    from hadpo.eval.pope.config import PopeBuildConfig
    from hadpo.overrides import config_from_args

    paths = build_pope_files(config_from_args(PopeBuildConfig, args))
    print(json.dumps({s: str(p) for s, p in paths.items()}))
    return 0


def _run(args: argparse.Namespace) -> int:
    from hadpo.eval.pope.config import PopeConfig
    from hadpo.eval.pope.stage import run_pope
    from hadpo.overrides import config_from_args

    metrics = run_pope(config_from_args(PopeConfig, args))
    if os.environ.get("RANK", "0") == "0":  # under torchrun every rank returns the same metrics
        print(json.dumps(metrics))
    return 0


def _score(args: argparse.Namespace) -> int:
    from hadpo.eval.pope.score import score_files

    metrics = score_files(args.answers, args.labels, rule=args.rule, limit=args.limit)
    print(json.dumps(metrics))
    return 0
