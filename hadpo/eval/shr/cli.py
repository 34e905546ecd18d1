"""``hadpo shr`` (describe + judge + score) and ``hadpo shr-judge`` (judge a precomputed description file).

Both read an optional params YAML (ShrConfig keys) and apply ``--set key=value`` overrides on top, values read
as YAML (``--set num_runs=3 --set judge=oracle``). Heavy imports happen inside the commands.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from hadpo.errors import HadpoError, ParamsError


def _overrides(pairs: list[str]) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ParamsError(f"--set expects key=value, got {pair!r}")
        out[key.strip()] = yaml.safe_load(value) if value.strip() else None
    return out


def _config(args: argparse.Namespace, extra: dict[str, Any]) -> Any:
    from hadpo.eval.shr.config import ShrConfig

    values = {**_overrides(args.set), **{k: v for k, v in extra.items() if v is not None}}
    if args.params:
        return ShrConfig.from_yaml(args.params, **values)
    return ShrConfig.from_dict(values, source="command line")


def _summary(metrics: dict[str, Any], run_dir: str) -> str:
    from hadpo.eval.shr.metrics import shr_markdown

    return f"{shr_markdown({'result': metrics})}\n\nwritten to {run_dir}/metrics.json"


def _run(args: argparse.Namespace, extra: dict[str, Any]) -> int:
    from hadpo.eval.shr.run import run_shr

    try:
        cfg = _config(args, extra)
        metrics = run_shr(cfg)
    except HadpoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({k: v for k, v in metrics.items() if k != "protocol"}, indent=2))
    else:
        print(_summary(metrics, cfg.run_dir))
    return 0


def _shr(args: argparse.Namespace) -> int:
    return _run(args, {})


def _shr_judge(args: argparse.Namespace) -> int:
    return _run(args, {"responses": args.responses, "data_root": args.data_root, "run_dir": args.run_dir,
                       "judge": args.judge})


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", help="params YAML with ShrConfig keys")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override one parameter (repeatable), value read as YAML")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``shr`` and ``shr-judge`` to the ``hadpo`` command line."""
    shr = subparsers.add_parser("shr", help="SHR: describe the SHR images, judge every sentence, score",
                                description="Describe the SHR images with a model, judge each sentence with an "
                                "LLM (or the shapes-world oracle), write judgement.json and metrics.json.")
    _common(shr)
    shr.set_defaults(func=_shr)

    judge = subparsers.add_parser("shr-judge", help="SHR: judge a precomputed {image_id: description} JSON",
                                  description="Judge descriptions made elsewhere (one JSON object mapping SHR "
                                  "image ids to descriptions) and write judgement.json and metrics.json.")
    judge.add_argument("responses", help="JSON file {image_id: description}")
    judge.add_argument("--data-root", help="data root with the shr/ and VG/ files")
    judge.add_argument("--run-dir", help="output folder")
    judge.add_argument("--judge", choices=("openai", "oracle"), help="judge backend")
    _common(judge)
    judge.set_defaults(func=_shr_judge)
