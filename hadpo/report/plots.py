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

#: Training panels, in order: (title, [(series key, legend label)]). The keys are those ``metrics.jsonl`` holds
#: (hadpo.train.objectives / hadpo.train.metrics), plus ``dpo_loss``, derived by :func:`training_series`: the
#: trainer logs the *total* loss, which includes γ times the SFT term, so it is never shown as the DPO loss.
TRAINING_PANELS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("DPO loss", (("dpo_loss", "DPO loss"),)),
    ("SFT term (chosen NLL per token, before γ)", (("sft_loss", "SFT term"),)),
    ("Total loss (DPO + γ · SFT)", (("loss", "total loss"),)),
    ("Rewards (β · log-ratio)", (("rewards/chosen", "chosen"), ("rewards/rejected", "rejected"))),
    ("Reward margin (chosen − rejected)", (("rewards/margins", "margin"),)),
    ("Reward accuracy (%)", (("rewards/accuracies", "accuracy"),)),
    ("Log-probabilities (policy)", (("logps/chosen", "chosen"), ("logps/rejected", "rejected"))),
    ("Gradient norm", (("grad_norm", "gradient norm"),)),
    ("Learning rate", (("learning_rate", "learning rate"),)),
)
def _values(records: Sequence[Mapping[str, Any]], key: str) -> list[float]:
    return [math.nan if not isinstance(r.get(key), (int, float)) else float(r[key]) for r in records]


def is_preference_log(records: Sequence[Mapping[str, Any]]) -> bool:
    """Whether a training log is a preference (DPO) run's: it logs rewards. An SFT run logs a loss and an NLL."""
    return any(r.get("rewards/margins") is not None for r in records)


def training_series(
    records: Sequence[Mapping[str, Any]], *, gamma: float | None = None
) -> tuple[dict[str, list[float]], dict[str, str]]:
    """The values each training panel plots, by series key, and a note per panel key that cannot be drawn.

    ``dpo_loss`` is derived from the logged total: ``loss`` when the run logs no ``sft_loss`` (γ = 0: the total
    *is* the DPO loss), else ``loss − γ · sft_loss`` with ``gamma`` from the run's config; with an SFT term but
    no known γ it is left out with a note rather than guessed. Reward accuracy is in percent.
    """
    series = {key: _values(records, key) for _, keys in TRAINING_PANELS for key, _ in keys if key != "dpo_loss"}
    series["rewards/accuracies"] = [100 * v for v in series["rewards/accuracies"]]
    notes: dict[str, str] = {}
    has_sft = not all(math.isnan(v) for v in series["sft_loss"])
    if not is_preference_log(records):
        notes["dpo_loss"] = "not a preference run"
    elif not has_sft:
        series["dpo_loss"] = list(series["loss"])
        notes["sft_loss"] = "no SFT term (γ = 0)"
    elif gamma is None:
        notes["dpo_loss"] = "γ not recorded:\ncannot separate the SFT term"
    else:
        series["dpo_loss"] = [t - gamma * s for t, s in zip(series["loss"], series["sft_loss"], strict=True)]
    return series, notes


def _panel_title(title: str, key: str, records: Sequence[Mapping[str, Any]], gamma: float | None,
                 notes: Mapping[str, str]) -> str:
    """The panel's title, saying how a loss panel's values were obtained in this run."""
    no_sft = "sft_loss" in notes
    if key == "dpo_loss":
        if no_sft:
            return "DPO loss (= total loss, γ = 0)"
        return f"DPO loss (total − {gamma:g} · SFT)" if gamma is not None and "dpo_loss" not in notes else title
    if key == "loss":
        if not is_preference_log(records):
            return "Training loss"
        if no_sft:
            return "Total loss (= DPO loss, γ = 0)"
        return f"Total loss (DPO + {gamma:g} · SFT)" if gamma is not None else title
    return title


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


def training_curves(
    records: Sequence[Mapping[str, Any]], *, smooth: int = 1, title: str | None = None, gamma: float | None = None
) -> Figure:
    """DPO loss, SFT term, total loss, rewards, margin, accuracy, log-probs, gradient norm and learning rate against
    the optimiser step, each panel titled with exactly what it plots (see :func:`training_series`).

    ``records`` are the lines of a training run's ``metrics.jsonl``; ``gamma`` is the run's SFT weight γ (needed
    to separate the DPO loss from a total that includes an SFT term). With ``smooth > 1`` the raw values are drawn
    faintly and a trailing mean over ``smooth`` steps on top. A panel with nothing to plot says why.
    """
    if smooth < 1:
        raise ValueError(f"smooth must be >= 1, got {smooth}")
    series, notes = training_series(records, gamma=gamma)
    fig, axes = _new_figure(3, 3, size=(13, 9.5))
    steps = [r.get("step", i + 1) for i, r in enumerate(records)]
    for ax, (panel, keys) in zip(axes, TRAINING_PANELS, strict=True):
        drawn = False
        for key, label in keys:
            values = series.get(key, [])
            if not values or all(math.isnan(v) for v in values):
                continue
            drawn = True
            if smooth > 1:
                line = ax.plot(steps, values, alpha=0.3, linewidth=1)[0]
                ax.plot(steps, _rolling(values, smooth), color=line.get_color(), label=f"{label} (mean of {smooth})")
            else:
                ax.plot(steps, values, marker="." if len(steps) < 50 else None, label=label)
        if not drawn:
            reason = next((notes[k] for k, _ in keys if k in notes), "not logged")
            ax.text(0.5, 0.5, reason, ha="center", va="center", transform=ax.transAxes, color="grey")
        elif len(keys) > 1 or smooth > 1:
            ax.legend(fontsize="small")
        ax.set_title(_panel_title(panel, keys[0][0], records, gamma, notes), fontsize="medium")
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
