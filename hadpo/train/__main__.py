"""``python -m hadpo.train --config RUN/train_config.json``: the process every launcher starts."""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments a launcher passes and run :func:`hadpo.train.trainer.train`."""
    parser = argparse.ArgumentParser(prog="python -m hadpo.train", description=__doc__)
    parser.add_argument("--config", required=True, help="train_config.json (or a YAML params file)")
    # deepspeed's launcher appends --local_rank=N; the rank also arrives in LOCAL_RANK.
    parser.add_argument("--local_rank", "--local-rank", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    from hadpo.io import read_json
    from hadpo.train.config import TrainConfig
    from hadpo.train.trainer import train

    if args.config.endswith((".yaml", ".yml")):
        cfg = TrainConfig.from_yaml(args.config)
    else:
        cfg = TrainConfig.from_dict(read_json(args.config), source=args.config)
    train(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
