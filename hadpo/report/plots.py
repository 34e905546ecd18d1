"""Dashboard figures (matplotlib): DPO training curves, POPE bars with interval error bars, SHR bars.

Each function returns a :class:`matplotlib.figure.Figure`. Figures are made through pyplot (so a notebook's
inline backend knows how to render them) and then closed in pyplot, so a notebook cell shows the returned
figure once rather than twice, and a long headless run does not accumulate open figures. Nothing calls
``plt.show``; :func:`save_figure` writes a PNG atomically.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from hadpo.io import atomic_write_bytes
from hadpo.report.stats import Interval

BASE_COLOUR, ADAPTED_COLOUR = "#8c8c8c", "#1f77b4"

#: Training panels: (title, [(metrics.jsonl key, legend label)]).
TRAINING_PANELS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("DPO loss", (("loss", "loss"),)),
    ("Reward margin (chosen − rejected)", (("rewards/margins", "margin"),)),
    ("Reward accuracy", (("rewards/accuracies", "accuracy"),)),
    ("Log-probabilities", (("logps/chosen", "chosen"), ("logps/rejected", "rejected"))),
)


def save_figure(fig: Figure, path: str | Path, *, dpi: int = 120) -> Path:
    """Render ``fig`` as PNG and write it to ``path`` atomically (parent folders created)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return atomic_write_bytes(path, buf.getvalue())


def _new_figure(ncols: int, nrows: int = 1, *, size: tuple[float, float]) -> tuple[Figure, list[Any]]:
    fig, axes = plt.subplots(nrows, ncols, figsize=size, squeeze=False)
    plt.close(fig)
    return fig, list(axes.flat)


def _rolling(values: Sequence[float], window: int) -> list[float]:
    """Trailing mean over ``window`` points, ignoring NaNs (a window of 1 returns the values)."""
    out = []
    for i in range(len(values)):
        chunk = [v for v in values[max(0, i - window + 1) : i + 1] if not math.isnan(v)]
        out.append(sum(chunk) / len(chunk) if chunk else math.nan)
    return out


def training_curves(records: Sequence[Mapping[str, Any]], *, smooth: int = 1, title: str | None = None) -> Figure:
    """Loss, reward margin, reward accuracy and chosen/rejected log-probs against the optimiser step.

    ``records`` are the lines of a training run's ``metrics.jsonl``. With ``smooth > 1`` the raw values are
    drawn faintly and a trailing mean over ``smooth`` steps on top. A key absent from every record leaves its
    panel with a "not logged" note.
    """
    if smooth < 1:
        raise ValueError(f"smooth must be >= 1, got {smooth}")
    fig, axes = _new_figure(2, 2, size=(10, 7))
    steps = [r.get("step", i + 1) for i, r in enumerate(records)]
    for ax, (panel, series) in zip(axes, TRAINING_PANELS, strict=True):
        drawn = False
        for key, label in series:
            values = [math.nan if r.get(key) is None else float(r[key]) for r in records]
            if all(math.isnan(v) for v in values):
                continue
            drawn = True
            if smooth > 1:
                line = ax.plot(steps, values, alpha=0.3, linewidth=1)[0]
                ax.plot(steps, _rolling(values, smooth), color=line.get_color(), label=f"{label} (mean of {smooth})")
            else:
                ax.plot(steps, values, marker="." if len(steps) < 50 else None, label=label)
        if not drawn:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes, color="grey")
        elif len(series) > 1 or smooth > 1:
            ax.legend(fontsize="small")
        ax.set_title(panel)
        ax.set_xlabel("optimiser step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _error(values: Sequence[float], intervals: Sequence[Interval | None]) -> list[list[float]] | None:
    """Asymmetric error bars (percent) from intervals; None when no bar has an interval."""
    if all(i is None for i in intervals):
        return None
    low = [0.0 if i is None else max(0.0, v - 100 * i.low) for v, i in zip(values, intervals, strict=True)]
    high = [0.0 if i is None else max(0.0, 100 * i.high - v) for v, i in zip(values, intervals, strict=True)]
    return [low, high]


def _grouped_bars(ax: Any, groups: Sequence[str], base: Sequence[float], adapted: Sequence[float],
                  base_err: list[list[float]] | None, adapted_err: list[list[float]] | None,
                  labels: tuple[str, str]) -> None:
    width = 0.38
    xs = list(range(len(groups)))
    for offset, values, err, colour, label in (
        (-width / 2, base, base_err, BASE_COLOUR, labels[0]),
        (width / 2, adapted, adapted_err, ADAPTED_COLOUR, labels[1]),
    ):
        bars = ax.bar([x + offset for x in xs], values, width, yerr=err, capsize=3, color=colour, label=label)
        ax.bar_label(bars, fmt="%.1f", fontsize="x-small", padding=2)
    ax.set_xticks(xs, groups)
    ax.grid(axis="y", alpha=0.3)


def pope_bars(
    base: Mapping[str, Mapping[str, float]],
    adapted: Mapping[str, Mapping[str, float]],
    *,
    base_intervals: Mapping[str, Mapping[str, Interval]] | None = None,
    adapted_intervals: Mapping[str, Mapping[str, Interval]] | None = None,
    metrics: Sequence[str] = ("accuracy", "f1", "yes_ratio"),
    labels: tuple[str, str] = ("base", "HA-DPO"),
) -> Figure:
    """One panel per metric: per POPE set, base and HA-DPO bars (percent) with interval error bars.

    ``base`` / ``adapted`` map a set name to its metrics (fractions); the intervals map a set name to
    ``{metric: Interval}``. A dashed line marks 50 % on the yes-ratio panel (a calibrated model).
    """
    sets = [s for s in base if s in adapted]
    if not sets:
        raise ValueError("no POPE set is present for both models")
    names = {"accuracy": "Accuracy", "precision": "Precision", "recall": "Recall", "f1": "F1", "yes_ratio": "Yes ratio"}
    fig, axes = _new_figure(len(metrics), size=(4.2 * len(metrics), 3.8))
    for ax, metric in zip(axes, metrics, strict=True):
        b = [100 * base[s][metric] for s in sets]
        a = [100 * adapted[s][metric] for s in sets]
        b_err = _error(b, [(base_intervals or {}).get(s, {}).get(metric) for s in sets])
        a_err = _error(a, [(adapted_intervals or {}).get(s, {}).get(metric) for s in sets])
        _grouped_bars(ax, sets, b, a, b_err, a_err, labels)
        if metric == "yes_ratio":
            ax.axhline(50, color="black", linestyle="--", linewidth=0.8)
        ax.set_title(f"POPE {names.get(metric, metric)} (%)")
        ax.set_ylim(0, 105)
    _figure_legend(fig, axes[0])
    return fig


def _figure_legend(fig: Figure, ax: Any) -> None:
    """One legend for the whole figure, below the panels, so it never covers a bar."""
    handles, names = ax.get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=len(names), fontsize="small", frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))


def shr_bars(
    base: Mapping[str, Any],
    adapted: Mapping[str, Any],
    *,
    base_interval: Interval | None = None,
    adapted_interval: Interval | None = None,
    labels: tuple[str, str] = ("base", "HA-DPO"),
) -> Figure:
    """SHR (%, lower is better) with interval error bars, next to description length (words and sentences).

    ``base`` / ``adapted`` are rows of :func:`hadpo.report.tables.shr_row` (``SHR (%)``, ``Words / image``,
    ``Sentences / image``, ``Hal. sentences / image``).
    """
    fig, axes = _new_figure(3, size=(12, 3.8))
    b, a = base["SHR (%)"], adapted["SHR (%)"]
    _grouped_bars(axes[0], ["SHR"], [b], [a], _error([b], [base_interval]), _error([a], [adapted_interval]), labels)
    axes[0].set_title("SHR (%) — lower is better")
    _grouped_bars(axes[1], ["words"], [base["Words / image"]], [adapted["Words / image"]], None, None, labels)
    axes[1].set_title("Words per image")
    keys = ["Sentences / image", "Hal. sentences / image"]
    _grouped_bars(axes[2], ["sentences", "hallucinated"], [base[k] for k in keys], [adapted[k] for k in keys],
                  None, None, labels)
    axes[2].set_title("Sentences per image")
    _figure_legend(fig, axes[0])
    return fig
