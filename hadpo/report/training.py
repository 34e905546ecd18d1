"""The training curves of one run folder (notebook 02's last figure), from its ``metrics.jsonl`` and the run's
resolved config only."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from hadpo.errors import DataError
from hadpo.io import read_json
from hadpo.report import plots
from hadpo.train.metrics import read_metrics

#: The trainer's resolved config, beside ``metrics.jsonl`` (and the same config inside ``manifest.json``).
CONFIG_FILES = ("train_config.resolved.json", "manifest.json")
#: The config keys of the loss terms' weights (:data:`hadpo.report.plots.LOSS_TERMS`).
WEIGHT_KEYS = tuple(name for _, name, _ in plots.LOSS_TERMS)


def _configs(run_dir: str | Path) -> list[dict[str, Any]]:
    """The run's recorded configs, the resolved one first (a torn or missing file is skipped)."""
    out = []
    for name in CONFIG_FILES:
        path = Path(run_dir) / name
        if not path.is_file():
            continue
        try:
            data = read_json(path)
        except (DataError, OSError):  # a torn file: the curves are still worth drawing, without the split
            continue
        config = data.get("config", data) if isinstance(data, dict) else None
        if isinstance(config, dict):
            out.append(config)
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def run_weights(run_dir: str | Path) -> dict[str, float | None]:
    """The weights of the loss terms a training run used (``gamma``, ``conditional_weight``, ``anchor_weight``),
    from its resolved config; None for a weight the folder does not record.

    The trainer logs the total loss ``DPO + Σ weight · term``; the weights name the terms' panels and, for a log
    that does not record ``dpo_loss``, separate the DPO loss from the total. A config written before a term
    existed records no weight for it: the term was not there, weight 0.
    """
    out: dict[str, float | None] = dict.fromkeys(WEIGHT_KEYS)
    for config in _configs(run_dir):
        for key in WEIGHT_KEYS:
            if out[key] is None:
                out[key] = _number(config.get(key))
        if out["gamma"] is not None:  # a config of this kit: a term it does not name did not exist (weight 0)
            out = {k: 0.0 if v is None else v for k, v in out.items()}
            break
    return out


def run_gamma(run_dir: str | Path) -> float | None:
    """The SFT weight γ a training run used, from its resolved config; None when the folder records none.

    The trainer logs the total loss ``DPO + γ · SFT`` (plus any other weighted term, :func:`run_weights`).
    """
    return run_weights(run_dir)["gamma"]


def curves(run_dir: str | Path, *, smooth: int = 1) -> Figure:
    """DPO loss, each extra loss term (conditional, anchor, SFT) on its own panel with its weight, total loss,
    rewards, margins, accuracy and log-probs of a training run folder, each panel titled with what it plots
    (:func:`hadpo.report.plots.training_curves`).

    SFT runs log only the loss; the preference panels say so.
    """
    run_dir = Path(run_dir)
    return plots.training_curves(read_metrics(run_dir / "metrics.jsonl"), smooth=smooth, title=run_dir.name,
                                 weights=run_weights(run_dir))
