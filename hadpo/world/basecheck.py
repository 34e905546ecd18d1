"""``hadpo base-check``: notebook 00 on several seeds, side by side.

A tiny model's behaviour varies with its seed (when the existence-QA lookup forms during SFT, above all), so
the world's settings are only as good as their worst seed. This runs notebook 00's package calls (world, SFT,
behaviour check) once per seed, each in its own folder, and tabulates the targets of
:data:`hadpo.world.stage.TARGETS`. Every step skips what is already finished, so a rerun only fills in what is
missing. Seeds can run concurrently (``--jobs``), each with its share of the CPU threads: two processes that
each try to use every core are many times slower than one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from hadpo.io import atomic_write_json, atomic_write_text
from hadpo.world.config import BaseModelConfig
from hadpo.world.stage import TARGETS

SUMMARY_JSON = "seeds.json"
SUMMARY_MD = "seeds.md"

# (column title, report key, format): the README's per-seed table.
_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("POPE random acc.", "pope_random_accuracy", "pct"),
    ("adversarial − random yes-ratio", "adversarial_minus_random_yes_ratio", "pts"),
    ("sentences naming an absent object", "absent_object_sentence_share", "pct"),
    ("of those, partners", "partner_share", "pct"),
    ("wrong-column sentences", "wrong_column_share", "pct"),
)


def seed_config(cfg: BaseModelConfig, seed: int, out: str | Path) -> BaseModelConfig:
    """``cfg`` for one seed, writing its world and model under ``out/seed-<seed>/``."""
    root = Path(out) / f"seed-{seed}"
    return cfg.replace(seed=seed, data_root=str(root / "data"), model_dir=str(root / "base"))


def run_seed(cfg: BaseModelConfig, threads: int | None = None, echo: Callable[[str], Any] | None = None
             ) -> dict[str, Any]:
    """World, SFT and behaviour check for one configuration; the behaviour report without the raw POPE metrics.

    ``threads`` limits the CPU threads of the SFT child (through ``OMP_NUM_THREADS``) and of the evaluation here;
    both are restored afterwards.
    """
    import torch

    from hadpo.world.stage import build_world, measure_base_model, train_base_model

    saved_env, saved_threads = os.environ.get("OMP_NUM_THREADS"), torch.get_num_threads()
    if threads is not None:
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)
    try:
        build_world(cfg)
        train_base_model(cfg, echo=echo)
        report = measure_base_model(cfg)
    finally:
        if saved_env is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = saved_env
        torch.set_num_threads(saved_threads)
    return {k: v for k, v in report.items() if k != "pope"}


def check_seeds(cfg: BaseModelConfig, seeds: Sequence[int], out: str | Path, *, jobs: int = 1,
                threads: int | None = None, echo: Callable[[str], Any] | None = print) -> list[dict[str, Any]]:
    """Run every seed (``jobs`` at a time), then write ``seeds.json`` and ``seeds.md`` under ``out``.

    ``threads`` is each seed's share of CPU threads; by default the machine's cores divided by ``jobs``.
    """
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and at least one, got {list(seeds)}")
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    configs = [seed_config(cfg, s, out) for s in seeds]
    if jobs == 1:
        reports = [run_seed(c, threads, echo) for c in configs]
    else:
        per_job = threads or max(1, (os.cpu_count() or 1) // jobs)
        # spawn: a forked child would inherit this process's torch thread pools.
        import multiprocessing

        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            reports = list(pool.map(run_seed, configs, [per_job] * len(configs)))
    out = Path(out)
    atomic_write_json(out / SUMMARY_JSON, reports)
    atomic_write_text(out / SUMMARY_MD, seeds_table(reports) + "\n")
    return reports


def all_targets_met(report: dict[str, Any]) -> bool:
    """Whether a behaviour report meets every target of :data:`~hadpo.world.stage.TARGETS`."""
    return all(report["targets"][key]["met"] for key in TARGETS)


def _cell(value: float, kind: str) -> str:
    return f"{value * 100:+.1f} pts" if kind == "pts" else f"{value * 100:.1f}%"


def seeds_table(reports: Sequence[dict[str, Any]]) -> str:
    """A markdown table, one row per seed: the measures of :data:`~hadpo.world.stage.TARGETS` and whether all hold."""
    header = ["seed", *(title for title, _, _ in _COLUMNS), "all targets met"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for report in reports:
        met = "yes" if all_targets_met(report) else "no"
        cells = [str(report["seed"]), *(_cell(report[key], kind) for _, key, kind in _COLUMNS), met]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
