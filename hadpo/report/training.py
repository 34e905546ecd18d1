"""The training curves of one run folder (notebook 02's last figure), from its ``metrics.jsonl`` only."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from hadpo.report import plots
from hadpo.train.metrics import read_metrics


def curves(run_dir: str | Path, *, smooth: int = 1) -> Figure:
    """Loss, reward margins/accuracies and chosen/rejected log-probs of a training run folder.

    SFT runs log only the loss; the other panels say so.
    """
    run_dir = Path(run_dir)
    return plots.training_curves(read_metrics(run_dir / "metrics.jsonl"), smooth=smooth, title=run_dir.name)
