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

#: Loss terms a run may add to the DPO loss: (series key in ``metrics.jsonl``, key of its weight in the run's
#: resolved config, its name in titles). The trainer logs each *unweighted* (present only when its weight is > 0)
#: and the total ``loss = DPO + Σ weight · term``.
LOSS_TERMS: tuple[tuple[str, str, str], ...] = (
    ("conditional_loss", "conditional_weight", "conditional"),
    ("anchor_loss", "anchor_weight", "anchor"),
    ("sft_loss", "gamma", "SFT"),
)
#: How a weight is written when the run's config does not record it.
WEIGHT_SYMBOLS: dict[str, str] = {"gamma": "γ", "conditional_weight": "w_cond", "anchor_weight": "w_anchor"}

#: Training panels, in order: (title, [(series key, legend label)]). The keys are those ``metrics.jsonl`` holds
#: (hadpo.train.objectives / hadpo.train.metrics). ``dpo_loss`` is logged by every current run; for an older log
#: :func:`training_series` derives it from the *total* loss, which includes the weighted extra terms, so the
#: total is never shown as the DPO loss. The titles here are the defaults; :func:`training_curves` says in each
#: loss panel's title how its values were obtained and with which weight.
TRAINING_PANELS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("DPO loss", (("dpo_loss", "DPO loss"),)),
    ("Conditional term (unweighted)", (("conditional_loss", "conditional term"),)),
    ("Anchor term (unweighted)", (("anchor_loss", "anchor term"),)),
    ("SFT term (chosen NLL per token, before γ)", (("sft_loss", "SFT term"),)),
    ("Total loss (DPO + γ · SFT)", (("loss", "total loss"),)),
    ("Rewards (β · log-ratio)", (("rewards/chosen", "chosen"), ("rewards/rejected", "rejected"))),
    ("Reward margin (chosen − rejected)", (("rewards/margins", "margin"),)),
    ("Conditional reward margin\n(chosen answer: image − corrupted image)",
     (("rewards/conditional_margins", "conditional margin"),)),
    ("Reward accuracy (%)", (("rewards/accuracies", "accuracy"),)),
    ("Log-probabilities (policy)", (("logps/chosen", "chosen"), ("logps/rejected", "rejected"),
                                    ("logps/chosen_corrupted", "chosen, corrupted image"))),
    ("Gradient norm", (("grad_norm", "gradient norm"),)),
    ("Learning rate", (("learning_rate", "learning rate"),)),
)
#: Panels of the mDPO terms, drawn only for a run that has them (logged, or the weight named here > 0 in its
#: config); a run without them keeps the figure of nine panels.
OPTIONAL_PANELS: dict[str, str] = {"conditional_loss": "conditional_weight", "anchor_loss": "anchor_weight",
                                   "rewards/conditional_margins": "conditional_weight"}


def _values(records: Sequence[Mapping[str, Any]], key: str) -> list[float]:
    return [math.nan if not isinstance(r.get(key), (int, float)) else float(r[key]) for r in records]


def _logged(values: Sequence[float]) -> bool:
    return not all(math.isnan(v) for v in values)


def is_preference_log(records: Sequence[Mapping[str, Any]]) -> bool:
    """Whether a training log is a preference (DPO) run's: it logs rewards. An SFT run logs a loss and an NLL."""
    return any(r.get("rewards/margins") is not None for r in records)


def _weights(gamma: float | None, weights: Mapping[str, float | None] | None) -> dict[str, float | None]:
    out: dict[str, float | None] = {name: None for _, name, _ in LOSS_TERMS}
    out.update({k: v for k, v in (weights or {}).items() if k in out})
    if gamma is not None:
        out["gamma"] = gamma
    return out


def training_series(
    records: Sequence[Mapping[str, Any]], *, gamma: float | None = None,
    weights: Mapping[str, float | None] | None = None,
) -> tuple[dict[str, list[float]], dict[str, str]]:
    """The values each training panel plots, by series key, and a note per panel key that cannot be drawn.

    ``dpo_loss`` is the logged one where the run logs it. An older log has none; it is then derived from the
    logged total: ``loss`` when the run logs no extra term (γ = 0: the total *is* the DPO loss), else
    ``loss − Σ weight · term`` over the terms it logs (``sft_loss``, ``conditional_loss``, ``anchor_loss``) with
    the weights from the run's config (``weights``: ``gamma``, ``conditional_weight``, ``anchor_weight``; ``gamma``
    also on its own); with a term whose weight is unknown it is left out with a note rather than guessed. Reward
    accuracy is in percent.
    """
    weights = _weights(gamma, weights)
    series = {key: _values(records, key) for _, keys in TRAINING_PANELS for key, _ in keys}
    series["rewards/accuracies"] = [100 * v for v in series["rewards/accuracies"]]
    notes: dict[str, str] = {}
    present = [(key, name, label) for key, name, label in LOSS_TERMS if _logged(series[key])]
    if not _logged(series["sft_loss"]):
        notes["sft_loss"] = "no SFT term (γ = 0)"
    for key, name, label in LOSS_TERMS:
        if key != "sft_loss" and not _logged(series[key]):
            notes[key] = "not logged" if (weights[name] or 0) > 0 else f"no {label} term"
    logged_dpo = series.pop("dpo_loss")
    if not is_preference_log(records):
        notes["dpo_loss"] = "not a preference run"
        return series, notes
    unknown = [(name, label) for _, name, label in present if weights[name] is None]
    if unknown:
        derived = None
        name, label = unknown[0]
        derived_note = f"{WEIGHT_SYMBOLS[name]} not recorded:\ncannot separate the {label} term"
    else:
        derived = list(series["loss"])
        for key, name, _ in present:
            weight = weights[name] or 0.0
            derived = [t - weight * v for t, v in zip(derived, series[key], strict=True)]
    if _logged(logged_dpo):
        # Where a record lacks it (a log resumed across versions), the derivation fills in when it can.
        series["dpo_loss"] = [v if not math.isnan(v) or derived is None else d
                              for v, d in zip(logged_dpo, derived or logged_dpo, strict=True)]
    elif derived is not None:
        series["dpo_loss"] = derived
    else:
        notes["dpo_loss"] = derived_note
    return series, notes


def _number(value: float) -> str:
    return f"{value:g}"


def _weight_text(name: str, weights: Mapping[str, float | None]) -> str:
    weight = weights.get(name)
    return WEIGHT_SYMBOLS[name] if weight is None else _number(weight)


def _wrapped(title: str, width: int = 45) -> str:
    """A long title on two lines, its parenthesis on the second."""
    return title.replace(" (", "\n(", 1) if len(title) > width else title


def _panel_title(title: str, key: str, records: Sequence[Mapping[str, Any]], weights: Mapping[str, float | None],
                 series: Mapping[str, list[float]], notes: Mapping[str, str]) -> str:
    """The panel's title, saying how a loss panel's values were obtained in this run and with which weight."""
    present = [(key_, name, label) for key_, name, label in LOSS_TERMS if _logged(series.get(key_, []))]
    dpo_logged = _logged(_values(records, "dpo_loss"))
    if key == "dpo_loss":
        if "dpo_loss" in notes:
            return title
        if not present:
            return "DPO loss (= total loss, γ = 0)"
        if dpo_logged:
            return "DPO loss (logged)"
        text = "DPO loss (total − " + " − ".join(f"{_weight_text(n, weights)} · {lab}" for _, n, lab in present) + ")"
        return _wrapped(text)
    if key == "loss":
        if not is_preference_log(records):
            return "Training loss"
        if not present:
            return "Total loss (= DPO loss, γ = 0)"
        return _wrapped("Total loss (DPO + " + " + ".join(f"{_weight_text(n, weights)} · {lab}"
                                                         for _, n, lab in present) + ")")
    if key == "sft_loss":
        gamma = weights.get("gamma")
        return f"SFT term (chosen NLL per token, before γ = {_number(gamma)})" if gamma else title
    for term_key, name, label in LOSS_TERMS:
        if key == term_key:
            weight = weights.get(name)
            said = "weight not recorded" if weight is None else f"weight {_number(weight)}"
            return f"{label.capitalize()} term (unweighted; {said})"
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


def panels(records: Sequence[Mapping[str, Any]], *, gamma: float | None = None,
           weights: Mapping[str, float | None] | None = None) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    """The :data:`TRAINING_PANELS` a run's figure holds: every panel, less the mDPO terms' (:data:`OPTIONAL_PANELS`)
    when the run neither logs them nor gives them a weight > 0."""
    weights = _weights(gamma, weights)
    out = []
    for panel, keys in TRAINING_PANELS:
        weight_name = OPTIONAL_PANELS.get(keys[0][0])
        if weight_name is not None and not (weights[weight_name] or 0) > 0 \
                and not _logged(_values(records, keys[0][0])):
            continue
        out.append((panel, keys))
    return out


def training_curves(
    records: Sequence[Mapping[str, Any]], *, smooth: int = 1, title: str | None = None, gamma: float | None = None,
    weights: Mapping[str, float | None] | None = None,
) -> Figure:
    """DPO loss, each extra loss term on its own (conditional, anchor, SFT; unweighted, its weight in the title),
    total loss, rewards, margins, accuracy, log-probs, gradient norm and learning rate against the optimiser step,
    each panel titled with exactly what it plots (see :func:`training_series`).

    ``records`` are the lines of a training run's ``metrics.jsonl``; ``weights`` the run's term weights
    (``gamma``, ``conditional_weight``, ``anchor_weight``, as :func:`hadpo.report.training.run_weights` reads
    them; ``gamma`` may also be given alone), needed to name them and to separate the DPO loss from the total of
    a log that does not record it. The conditional and anchor panels (and the conditional margin's) appear only
    for a run that has those terms; the SFT panel always, saying so when γ = 0. Three panels a row. With
    ``smooth > 1`` the raw values are drawn faintly and a trailing mean over ``smooth`` steps on top. A panel
    with nothing to plot says why.
    """
    if smooth < 1:
        raise ValueError(f"smooth must be >= 1, got {smooth}")
    weights = _weights(gamma, weights)
    series, notes = training_series(records, weights=weights)
    shown = panels(records, weights=weights)
    ncols = 3
    nrows = math.ceil(len(shown) / ncols)
    fig, axes = _new_figure(ncols, nrows, size=(13, 3.2 * nrows))
    for ax in axes[len(shown):]:
        fig.delaxes(ax)
    steps = [r.get("step", i + 1) for i, r in enumerate(records)]
    for ax, (panel, keys) in zip(axes, shown, strict=False):
        drawn = []
        for key, label in keys:
            values = series.get(key, [])
            if not values or not _logged(values):
                continue
            drawn.append(key)
            if smooth > 1:
                line = ax.plot(steps, values, alpha=0.3, linewidth=1)[0]
                ax.plot(steps, _rolling(values, smooth), color=line.get_color(), label=f"{label} (mean of {smooth})")
            else:
                ax.plot(steps, values, marker="." if len(steps) < 50 else None, label=label)
        if not drawn:
            reason = next((notes[k] for k, _ in keys if k in notes), "not logged")
            ax.text(0.5, 0.5, reason, ha="center", va="center", transform=ax.transAxes, color="grey")
        elif len(drawn) > 1 or smooth > 1:
            ax.legend(fontsize="small")
        ax.set_title(_panel_title(panel, keys[0][0], records, weights, series, notes), fontsize="medium")
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
