"""``hadpo train``: launch training from params, exactly as notebook 02 does."""

from __future__ import annotations

import argparse

from hadpo.overrides import add_params_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand."""
    p = subparsers.add_parser(
        "train",
        help="train LoRA-DPO (or SFT) in a child process via deepspeed/torchrun/python",
        description="Launch training (e.g. -f params/world/02_train.yaml -p learning_rate 1e-4). The child process "
        "is started with the launcher the parameters name; a finished run with the same parameters is skipped, a "
        "killed one resumes from its last checkpoint.",
    )
    add_params_arguments(p)
    p.add_argument("--force", action="store_true",
                   help="train again from step 0 even if a finished run exists (the same as -p force True)")
    p.set_defaults(func=_run)
    from hadpo.train.config import TrainConfig

    p.legacy = {"keys": TrainConfig.field_names(), "positional_file": True}  # type: ignore[attr-defined]


def _run(args: argparse.Namespace) -> int:
    from hadpo.overrides import config_from_args
    from hadpo.train.config import TrainConfig
    from hadpo.train.stage import launch_training

    launch_training(config_from_args(TrainConfig, args, {"force": True} if args.force else None))
    return 0
