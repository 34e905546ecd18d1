"""``hadpo amber``: describe AMBER's images, answer its yes/no questions and score both; ``hadpo amber-score
RESPONSES``: score answers made elsewhere, in the reference's input format ``[{"id", "response"}]``, as its
``inference.py`` does. Parameters are AmberConfig keys in papermill's syntax (``-f params/world/06_amber.yaml``);
``torchrun --nproc_per_node N -m hadpo.cli amber ...`` splits the work over N processes.
"""

from __future__ import annotations

import argparse

from hadpo.overrides import add_params_arguments


def _run(args: argparse.Namespace) -> int:
    from hadpo.eval.amber.config import AmberConfig
    from hadpo.eval.amber.metrics import table_row
    from hadpo.eval.amber.stage import run_amber
    from hadpo.overrides import config_from_args, print_results

    extra = {"responses": args.responses} if getattr(args, "responses", None) else {}
    cfg = config_from_args(AmberConfig, args, extra)
    metrics = run_amber(cfg)
    print_results(metrics, table_row(metrics), cfg.run_dir, as_json=args.json, digits=1)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``amber`` and ``amber-score`` to the ``hadpo`` command line."""
    from hadpo.eval.amber.config import AmberConfig

    parser = subparsers.add_parser(
        "amber", help="AMBER: descriptions and yes/no questions scored without an LLM",
        description="Describe AMBER's images and answer its discriminative questions with a model (or read -p "
        "responses FILE), then score CHAIR, Cover, Hal, Cog, accuracy / precision / recall / F1 (\"no\" positive) "
        "over all questions, per dimension and per attribute kind, and the AMBER score; writes scores.jsonl and "
        "metrics.json in run_dir.")
    add_params_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.set_defaults(func=_run)
    parser.legacy = {"keys": AmberConfig.field_names()}  # type: ignore[attr-defined]

    score = subparsers.add_parser(
        "amber-score", help="AMBER: score a responses file in the reference's input format",
        description="Score RESPONSES, a JSON list of {\"id\": <query id>, \"response\": <text>} as AMBER's "
        "inference.py reads it, against the release's annotations under data_root (no model is loaded); choose "
        "the part with -p evaluation all|generative|discriminative and the reading of yes/no answers with -p rule "
        "exact|pope. Writes scores.jsonl and metrics.json in run_dir.")
    score.add_argument("responses", help="the responses file")
    add_params_arguments(score)
    score.add_argument("--json", action="store_true", help="print the metrics as JSON")
    score.set_defaults(func=_run)
