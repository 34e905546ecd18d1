"""``python -m hadpo.train --config RUN/train_config.json``: the process every launcher starts."""

from __future__ import annotations

import argparse
import os
import sys

from hadpo.train.launch import CHILD_PROG, start_parent_watchdog

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments a launcher passes and run :func:`hadpo.train.trainer.train`."""
    # First, before the slow imports: if the hadpo process that launched us dies (even by SIGKILL), this rank and
    # its process group must not train on unseen.
    start_parent_watchdog()
    parser = argparse.ArgumentParser(prog=CHILD_PROG, description=__doc__)
    parser.add_argument("--config", required=True, help="train_config.json (or a YAML params file)")
    # deepspeed's launcher appends --local_rank=N; the rank also arrives in LOCAL_RANK.
    parser.add_argument("--local_rank", "--local-rank", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    from hadpo.io import read_json
    from hadpo.overrides import run_reporting_errors
    from hadpo.train.config import TrainConfig
    from hadpo.train.stage import LOG_FILE
    from hadpo.train.trainer import train

    if args.config.endswith((".yaml", ".yml")):
        cfg = TrainConfig.from_yaml(args.config)
    else:
        cfg = TrainConfig.from_dict(read_json(args.config), source=args.config)
    # A kit error (bad data, say) is one line on stderr, which the parent quotes; its traceback goes to the
    # run's log only (the parent copies this process's output there too, so the console stays readable).
    def run() -> int:
        train(cfg)
        return 0

    rank = os.environ.get("RANK", "0")
    return run_reporting_errors(f"{CHILD_PROG} (rank {rank})", run, log=os.path.join(cfg.output_dir, LOG_FILE))


if __name__ == "__main__":
    sys.exit(main())
