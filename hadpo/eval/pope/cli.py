"""``hadpo pope-build``, ``hadpo pope-run`` and ``hadpo pope-score``: the POPE stage on the command line.

``pope-build`` and ``pope-run`` take their parameters from an optional ``--params`` YAML file and then from
``--<name> VALUE`` options, one per field of :class:`PopeBuildConfig` / :class:`PopeConfig` (values are read
as YAML, so ``null``, ``true`` and numbers work). ``pope-run`` runs under ``torchrun`` as well::

    torchrun --nproc_per_node 8 -m hadpo.cli pope-run --params params/pope.yaml --set all
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import typing
from typing import Any, TypeVar

from hadpo.config import Params
from hadpo.errors import HadpoError
from hadpo.eval.pope.config import PopeBuildConfig, PopeConfig

P = TypeVar("P", bound=Params)


def _add_params_options(parser: argparse.ArgumentParser, cls: type[Params]) -> None:
    """``--params FILE`` plus one ``--<field>`` option per parameter of ``cls`` (help from the dataclass)."""
    parser.add_argument("--params", metavar="YAML", default=None, help="params file; options below override it")
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else None
        parser.add_argument(
            f"--{f.name.replace('_', '-')}",
            dest=f.name,
            metavar="VALUE",
            default=argparse.SUPPRESS,
            help=f"{f.metadata.get('help', '')} [{_type_label(hints[f.name])}; default: {default!r}]",
        )


def _type_label(tp: Any) -> str:
    args = typing.get_args(tp)
    if typing.get_origin(tp) is typing.Literal:
        return "|".join(map(str, args))
    return " | ".join(getattr(a, "__name__", str(a)) for a in args) if args else getattr(tp, "__name__", str(tp))


def _params_from_args(cls: type[P], args: argparse.Namespace) -> P:
    """Build ``cls`` from ``--params`` and the given options (each value parsed as YAML, strings kept as typed)."""
    import yaml

    overrides: dict[str, Any] = {}
    for name in cls.field_names():
        if name in vars(args):
            raw = getattr(args, name)
            value = yaml.safe_load(raw) if raw.strip() else raw
            # "--model 7" or "--set 2023" should stay strings; YAML would turn them into numbers.
            overrides[name] = raw if isinstance(value, (int, float)) and _is_str_field(cls, name) else value
    if args.params:
        return cls.from_yaml(args.params, **overrides)
    return cls.from_dict(overrides, source="command line")


def _is_str_field(cls: type[Params], name: str) -> bool:
    tp = typing.get_type_hints(cls)[name]
    return tp is str or str in typing.get_args(tp)


def register(subparsers: Any) -> None:
    """Add ``pope-build``, ``pope-run`` and ``pope-score`` to the ``hadpo`` parser."""
    build = subparsers.add_parser(
        "pope-build",
        help="build the POPE random/popular/adversarial question files from COCO instances",
        description="Draw images with >= 3 annotated categories and write POPE's three question files "
        "(3 present + 3 absent objects per image) under <data_root>/POPE/output/coco/. Same seed, same files.",
    )
    _add_params_options(build, PopeBuildConfig)
    build.set_defaults(func=_build)

    run = subparsers.add_parser(
        "pope-run",
        help="answer and score a POPE set with a LLaVA model (+ adapter); resumable; torchrun-aware",
        description="Answer the questions (batched greedy decoding, each image encoded once), write "
        "<run_dir>/<set>/answers.jsonl + protocol.json + metrics.json and the run's metrics tables, and "
        "print the metrics as one JSON object.",
    )
    _add_params_options(run, PopeConfig)
    run.set_defaults(func=_run)

    score = subparsers.add_parser(
        "pope-score",
        help="score a POPE answer file against a POPE question file; prints one JSON object",
        description="Match answers to labels by question_id (a missing, extra or duplicate id is an error) and "
        "print TP, FP, TN, FN, accuracy, precision, recall, F1, yes_ratio, unparseable and n.",
    )
    score.add_argument("--answers", required=True, metavar="JSONL", help="answers: question_id, answer per line")
    score.add_argument("--labels", required=True, metavar="JSON", help="POPE question file with labels")
    score.add_argument("--rule", choices=("pope", "strict"), default="pope",
                       help="pope: POPE's parser (default); strict: the first word must be yes/no")
    score.set_defaults(func=_score)


def _fail(exc: Exception) -> int:
    print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
    return 1


def _build(args: argparse.Namespace) -> int:
    from hadpo.eval.pope.build import build_pope_files

    try:
        cfg = _params_from_args(PopeBuildConfig, args)
        paths = build_pope_files(cfg)
    except (HadpoError, ValueError) as exc:
        return _fail(exc)
    print(json.dumps({s: str(p) for s, p in paths.items()}))
    return 0


def _run(args: argparse.Namespace) -> int:
    from hadpo.eval.pope.run import run_pope

    try:
        cfg = _params_from_args(PopeConfig, args)
        metrics = run_pope(cfg)
    except (HadpoError, ValueError) as exc:
        return _fail(exc)
    if os.environ.get("RANK", "0") == "0":  # under torchrun every rank returns the same metrics
        print(json.dumps(metrics))
    return 0


def _score(args: argparse.Namespace) -> int:
    from hadpo.eval.pope.score import score_files

    try:
        metrics = score_files(args.answers, args.labels, rule=args.rule)
    except (HadpoError, ValueError) as exc:
        return _fail(exc)
    print(json.dumps(metrics))
    return 0
