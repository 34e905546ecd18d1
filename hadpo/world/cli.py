"""``hadpo world`` (generate the shapes world) and ``hadpo base-check`` (notebook 00 on several seeds)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from hadpo.overrides import add_params_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``world`` and ``base-check`` subcommands."""
    from hadpo.world.config import BaseModelConfig, WorldConfig

    parser = subparsers.add_parser(
        "world",
        help="generate the seeded shapes world (images + VG/COCO/SHR/LLaVA files)",
        description="Generate the shapes world into OUT: small images of coloured shapes with co-occurrence bias, "
        "written as Visual Genome, COCO val2014, SHR and LLaVA instruction files (the HA-DPO data layout). "
        "Parameters are WorldConfig keys (-p seed 3 -p train_images 500, or -f a params file). Same seed and "
        "settings give byte-identical files; rerunning on a finished folder with the same settings does nothing, "
        "different settings are refused.",
    )
    parser.add_argument("out", type=Path, metavar="OUT", help="data folder to write (empty or new)")
    add_params_arguments(parser)
    parser.set_defaults(func=_world)
    parser.legacy = {"keys": WorldConfig.field_names(), "flags": {"--images": "train_images", "--out": ""}}  # type: ignore[attr-defined]

    check = subparsers.add_parser(
        "base-check",
        help="build and check the shapes world's base model on several seeds",
        description="Run notebook 00 (world, tiny LLaVA SFT, behaviour check) once per seed under OUT/seed-N/ "
        "and write OUT/seeds.md and OUT/seeds.json: POPE random accuracy, adversarial - random yes-ratio, the "
        "share of description sentences naming an absent object and how many of those are partners. Parameters "
        "are notebook 00's (-f params/world/00_world.yaml -p description_weight 3). Finished steps are skipped "
        "on a rerun. Exit status 0: every seed meets every target; 3: some target is missed.",
    )
    check.add_argument("out", type=Path, metavar="OUT", help="folder for the per-seed runs")
    add_params_arguments(check)
    check.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], metavar="N", help="seeds (default 0 1 2)")
    check.add_argument("--jobs", type=int, default=1, metavar="N", help="seeds run at once (default 1)")
    check.add_argument("--threads", type=int, default=None, metavar="N",
                       help="CPU threads per seed (default: cores / jobs)")
    check.set_defaults(func=_base_check)
    check.legacy = {"keys": BaseModelConfig.field_names(), "flags": {"--out": ""}}  # type: ignore[attr-defined]


def _world(args: argparse.Namespace) -> int:
    """Generate (or find) the world and print a one-line summary."""
    from hadpo.io import read_json
    from hadpo.overrides import config_from_args
    from hadpo.world.config import WorldConfig
    from hadpo.world.generate import generate_world

    cfg = config_from_args(WorldConfig, args)
    existed = (args.out / "world.json").is_file()
    start = time.perf_counter()
    root = generate_world(args.out, cfg)
    meta = read_json(root / "world.json")
    images, sft = meta["counts"]["images"], meta["counts"]["sft"]
    status = "already there, unchanged" if existed else f"generated in {time.perf_counter() - start:.1f} s"
    print(
        f"shapes world in {root} ({status}): seed {meta['seed']}, {len(meta['categories'])} categories in "
        f"{len(meta['pairs'])} pairs; images train {images['train']} / pope {images['pope']} / shr {images['shr']}; "
        f"SFT records {sum(sft.values())} ({', '.join(f'{k} {v}' for k, v in sft.items())})"
    )
    return 0


def _base_check(args: argparse.Namespace) -> int:
    from hadpo.overrides import config_from_args
    from hadpo.world.basecheck import all_targets_met, check_seeds, seeds_table
    from hadpo.world.config import BaseModelConfig

    cfg = config_from_args(BaseModelConfig, args)
    reports = check_seeds(cfg, args.seeds, args.out, jobs=args.jobs, threads=args.threads)
    print(seeds_table(reports))
    return 0 if all(all_targets_met(r) for r in reports) else 3
