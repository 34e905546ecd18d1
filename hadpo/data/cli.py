"""``hadpo validate``: check one input file against its format and print what it holds."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from hadpo.errors import DataError


def register(subparsers: Any) -> None:
    """Add the ``validate`` subcommand to the ``hadpo`` parser."""
    # imported here so `hadpo --help` does not read the readers' modules for every subcommand
    from hadpo.data.validate import KINDS

    kinds = "\n".join(f"  {kind:<13} {desc}" for kind, desc in KINDS.items())
    parser = subparsers.add_parser(
        "validate",
        help="check an input file (VG, COCO, POPE, SHR, HA-DPO, LLaVA) and print its counts",
        description="Read PATH as a file of the given kind, checking every record. A valid file prints one "
        "JSON object of counts and exits 0; an invalid one prints a single line naming the file, the record "
        "(index, id or line) and the field, and exits 1.",
        epilog=f"kinds:\n{kinds}\n\nimages root:\n"
        "  vg-images, desc, pope-data, shr-images: the data root; images are <root>/VG/<folder>/<file>, found\n"
        "      by url (desc, pope-data and shr-images look ids up in <root>/VG/image_data.json)\n"
        "  pope, llava: the folder holding each record's 'image'; coco: the folder holding 'file_name'\n\n"
        "example:\n"
        "  hadpo validate --kind pope data/POPE/output/coco/coco_pope_random.json --images-root "
        "data/coco2014/val2014",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--kind", required=True, choices=list(KINDS), metavar="KIND",
                        help="file format; one of: " + ", ".join(KINDS))
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="the file to check (shr-factual takes both parts, to catch ids repeated across them)")
    parser.add_argument("--images-root", metavar="DIR", default=None,
                        help="also open and decode every referenced image (see 'images root' below)")
    parser.add_argument("--allow-missing-images", action="store_true",
                        help="list missing and unreadable images in the output instead of failing")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from hadpo.data.validate import validate

    try:
        report = validate(args.kind, args.paths, args.images_root, allow_missing=args.allow_missing_images)
    except (DataError, ValueError) as exc:
        # one line, so the message can be grepped from logs and read in a notebook cell
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    print(json.dumps(report.to_dict(), ensure_ascii=False))
    return 0
