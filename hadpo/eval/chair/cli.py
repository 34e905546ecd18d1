"""``hadpo chair``: describe sampled COCO images and score CHAIR (or score a description file with
``-p responses FILE``). Parameters are ChairConfig keys in papermill's syntax (``-f params/world/05_chair.yaml``);
``torchrun --nproc_per_node N -m hadpo.cli chair ...`` splits the images over N processes.
"""

from __future__ import annotations

import argparse

from hadpo.overrides import add_params_arguments


def _run(args: argparse.Namespace) -> int:
    from hadpo.eval.chair.config import ChairConfig
    from hadpo.eval.chair.metrics import table_row
    from hadpo.eval.chair.stage import run_chair
    from hadpo.overrides import config_from_args, print_results

    cfg = config_from_args(ChairConfig, args, {})
    metrics = run_chair(cfg)
    print_results(metrics, table_row(metrics), cfg.run_dir, as_json=args.json)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``chair`` to the ``hadpo`` command line."""
    from hadpo.eval.chair.config import ChairConfig

    parser = subparsers.add_parser(
        "chair", help="CHAIR: describe sampled COCO images, count the named objects that are not there",
        description="Sample num_images COCO images (image_seed), describe each with a model (or read -p responses "
        "FILE), and score CHAIR_i, CHAIR_s, recall and lengths against the instances and captions; writes "
        "descriptions.jsonl, scores.jsonl and metrics.json in run_dir.")
    add_params_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.set_defaults(func=_run)
    parser.legacy = {"keys": ChairConfig.field_names()}  # type: ignore[attr-defined]
