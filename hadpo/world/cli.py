"""``hadpo world``: generate the shapes world into a data folder."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``world`` subcommand."""
    parser = subparsers.add_parser(
        "world",
        help="generate the seeded shapes world (images + VG/COCO/SHR/LLaVA files)",
        description="Generate the shapes world: small images of coloured shapes with co-occurrence bias, written "
        "as Visual Genome, COCO val2014, SHR and LLaVA instruction files under one data folder (the HA-DPO data "
        "layout). Same seed and settings give byte-identical files; rerunning on a finished folder with the same "
        "settings does nothing, different settings are refused.",
    )
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="data folder to write (empty or new)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: the params file's, else 0)")
    parser.add_argument(
        "--images", type=int, default=None, metavar="N", help="number of training images (default 5000)"
    )
    parser.add_argument(
        "--params",
        type=Path,
        default=None,
        metavar="YAML",
        help="params file with WorldConfig fields (seed, num_pairs, pope_images, p_hal, ...); flags override it",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Generate (or find) the world and print a one-line summary."""
    from hadpo.errors import HadpoError
    from hadpo.io import read_json
    from hadpo.world.config import WorldConfig
    from hadpo.world.generate import generate_world

    overrides = {}
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.images is not None:
        overrides["train_images"] = args.images
    try:
        cfg = WorldConfig.from_yaml(args.params, **overrides) if args.params else WorldConfig.from_dict(overrides)
        existed = (args.out / "world.json").is_file()
        start = time.perf_counter()
        root = generate_world(args.out, cfg)
    except HadpoError as exc:
        print(f"hadpo world: error: {exc}", file=sys.stderr)
        return 1
    meta = read_json(root / "world.json")
    images, sft = meta["counts"]["images"], meta["counts"]["sft"]
    status = "already there, unchanged" if existed else f"generated in {time.perf_counter() - start:.1f} s"
    print(
        f"shapes world in {root} ({status}): seed {meta['seed']}, {len(meta['categories'])} categories in "
        f"{len(meta['pairs'])} pairs; images train {images['train']} / pope {images['pope']} / shr {images['shr']}; "
        f"SFT records {sum(sft.values())} ({', '.join(f'{k} {v}' for k, v in sft.items())})"
    )
    return 0
