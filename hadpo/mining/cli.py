"""``hadpo mine``: stage 01 (preference data) on the command line, exactly as notebook 01 runs it.

Parameters are :class:`~hadpo.mining.config.DataConfig` keys in papermill's syntax
(``-f params/world/01_data.yaml -p n_images 200``); ``source: mine`` mines pairs from the model's own descriptions,
``source: released`` checks and prepares the released HA-DPO files. Heavy imports happen inside the command.
"""

from __future__ import annotations

import argparse
import json

from hadpo.overrides import add_params_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``mine`` subcommand."""
    from hadpo.mining.config import DataConfig

    p = subparsers.add_parser(
        "mine",
        help="stage 01: mine preference pairs from a model's own descriptions (or prepare the released data)",
        description="Run stage 01 as notebook 01 does (e.g. -f params/world/01_data.yaml): with source mine, select "
        "annotated images, have the model describe them, let the judge mark and correct hallucinated sentences, "
        "rewrite both sides and turn them into existence questions, writing desc_data.json and pope_data.json under "
        "<data_root>/hadpo/<name>/; with source released, check the released files and write the training copies. "
        "Every step resumes; -p force True redoes them (the earlier output is moved aside, never deleted). Prints "
        "the counts (also in <run_dir>/data_stats.json).",
    )
    add_params_arguments(p)
    p.add_argument("--json", action="store_true", help="print the counts as one JSON object")
    p.set_defaults(func=_run)
    p.legacy = {"keys": DataConfig.field_names()}  # type: ignore[attr-defined]


def _run(args: argparse.Namespace) -> int:
    from hadpo.mining import stage
    from hadpo.overrides import config_from_args

    cfg = config_from_args(stage.Config, args)
    stats = stage.run(cfg)
    if args.json:
        print(json.dumps(stats, indent=2, default=str))
        return 0
    desc, pope = stage.training_files(cfg)
    print(stage.stats_table(stats).to_string())
    print(f"\ntraining files: {desc} and {pope}; counts in {cfg.run_dir}/data_stats.json")
    return 0
