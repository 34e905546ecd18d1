"""The training curves of one run folder (notebook 02's last figure), from its ``metrics.jsonl`` and the run's
resolved config only."""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.figure import Figure

from hadpo.errors import DataError
from hadpo.io import read_json
from hadpo.report import plots
from hadpo.train.metrics import read_metrics

#: The trainer's resolved config, beside ``metrics.jsonl`` (and the same config inside ``manifest.json``).
CONFIG_FILES = ("train_config.resolved.json", "manifest.json")


def run_gamma(run_dir: str | Path) -> float | None:
    """The SFT weight γ a training run used, from its resolved config; None when the folder records none.

    The trainer logs the total loss ``DPO + γ · SFT``; γ is what separates the DPO loss from it.
    """
    for name in CONFIG_FILES:
        path = Path(run_dir) / name
        if not path.is_file():
            continue
        try:
            data = read_json(path)
        except (DataError, OSError):  # a torn file: the curves are still worth drawing, without the split
            continue
        config = data.get("config", data) if isinstance(data, dict) else None
        gamma = config.get("gamma") if isinstance(config, dict) else None
        if isinstance(gamma, (int, float)) and not isinstance(gamma, bool) and math.isfinite(gamma):
            return float(gamma)
    return None


def curves(run_dir: str | Path, *, smooth: int = 1) -> Figure:
    """DPO loss, SFT term, total loss, rewards, margins, accuracy and log-probs of a training run folder, each
    panel titled with what it plots (:func:`hadpo.report.plots.training_curves`).

    SFT runs log only the loss; the preference panels say so.
    """
    run_dir = Path(run_dir)
    return plots.training_curves(read_metrics(run_dir / "metrics.jsonl"), smooth=smooth, title=run_dir.name,
                                 gamma=run_gamma(run_dir))
