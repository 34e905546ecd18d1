"""``hadpo train``: launch training from a params file, exactly as notebook 02 does."""

from __future__ import annotations

import argparse

from hadpo.config import add_set_argument, set_overrides


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
    add_set_argument(p)
    p.add_argument("--force", action="store_true", help="train again even if a finished run exists")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from hadpo.train.config import TrainConfig
    from hadpo.train.run import launch_training

    overrides = set_overrides(args.set)
    cfg = TrainConfig.from_yaml(args.params, **overrides)
    launch_training(cfg, force=args.force)
    return 0
