"""Figures: returned (not shown), saved as PNG atomically, panels for every training metric."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from hadpo.report import plots
from hadpo.report.stats import Interval

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

RECORDS = [
    {"step": s, "loss": 0.7 - 0.1 * s, "rewards/margins": 0.1 * s, "rewards/accuracies": 0.5 + 0.1 * s,
     "logps/chosen": -10.0 + s, "logps/rejected": -10.0 - s}
    for s in range(1, 5)
]


def test_training_curves_has_the_four_panels_and_saves_png(tmp_path: Path) -> None:
    fig = plots.training_curves(RECORDS, title="run")
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [t for t, _ in plots.TRAINING_PANELS]
    logps = fig.axes[3]
    assert [line.get_label() for line in logps.get_lines()] == ["chosen", "rejected"]
    assert list(logps.get_lines()[1].get_ydata()) == [-11.0, -12.0, -13.0, -14.0]
    path = plots.save_figure(fig, tmp_path / "sub" / "curves.png")
    assert path.read_bytes().startswith(PNG_MAGIC)
    assert not list(path.parent.glob(".*.tmp"))


def test_training_curves_marks_metrics_never_logged() -> None:
    fig = plots.training_curves([{"step": 1, "loss": 0.7}, {"step": 2, "loss": 0.6}])
    texts = [t.get_text() for ax in fig.axes[1:] for t in ax.texts]
    assert texts == ["not logged"] * 3


def test_training_curves_smoothing_draws_the_trailing_mean() -> None:
    fig = plots.training_curves(RECORDS, smooth=2)
    smoothed = fig.axes[0].get_lines()[1].get_ydata()
    assert [round(v, 6) for v in smoothed] == [0.6, 0.55, 0.45, 0.35]


def test_pope_bars_error_bars_follow_the_intervals(tmp_path: Path) -> None:
    base = {"random": {"accuracy": 0.8, "f1": 0.8, "yes_ratio": 0.6}}
    adapted = {"random": {"accuracy": 0.85, "f1": 0.84, "yes_ratio": 0.5}}
    intervals = {"random": {"accuracy": Interval(0.8, 0.75, 0.86, 0.95)}}
    fig = plots.pope_bars(base, adapted, base_intervals=intervals)
    assert len(fig.axes) == 3
    heights = sorted(round(p.get_height(), 6) for p in fig.axes[0].patches)
    assert heights == [80.0, 85.0]
    assert plots.save_figure(fig, tmp_path / "pope.png").read_bytes().startswith(PNG_MAGIC)


def test_shr_bars_saves_png(tmp_path: Path) -> None:
    row = {"SHR (%)": 40.0, "Words / image": 50.0, "Sentences / image": 5.0, "Hal. sentences / image": 2.0}
    other = {"SHR (%)": 30.0, "Words / image": 45.0, "Sentences / image": 4.0, "Hal. sentences / image": 0.0}
    fig = plots.shr_bars(row, other, base_interval=Interval(0.4, 0.35, 0.45, 0.95))
    assert [round(p.get_height(), 6) for p in fig.axes[0].patches] == [40.0, 30.0]
    assert plots.save_figure(fig, tmp_path / "shr.png").read_bytes().startswith(PNG_MAGIC)
