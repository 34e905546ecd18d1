"""``hadpo train``: launch training from a params file, exactly as notebook 02 does."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand."""
    p = subparsers.add_parser(
        "train",
        help="train LoRA-DPO (or SFT) in a child process via deepspeed/torchrun/python",
        description="Launch training from a params file (e.g. params/world/02_train.yaml). The child process is "
        "started with the launcher named in the params; a finished run with the same params is skipped, a "
        "killed one resumes from its last checkpoint.",
    )
    p.add_argument("params", help="params YAML file with TrainConfig keys")
    p.add_argument("--set", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                   help="override one parameter (YAML value syntax), repeatable")
    p.add_argument("--force", action="store_true", help="train again even if a finished run exists")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import yaml

    from hadpo.train.config import TrainConfig
    from hadpo.train.run import launch_training

    overrides = {key: yaml.safe_load(value) for key, value in args.set}
    cfg = TrainConfig.from_yaml(args.params, **overrides)
    launch_training(cfg, force=args.force)
    return 0
