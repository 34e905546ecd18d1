"""Figures: returned (not shown), saved as PNG atomically, panels for every training metric."""

from __future__ import annotations

import json
from pathlib import Path

from matplotlib.figure import Figure

from hadpo.report import plots
from hadpo.report.stats import Interval

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

RECORDS = [
    {"step": s, "loss": 0.7 - 0.1 * s, "rewards/chosen": 0.05 * s, "rewards/rejected": -0.05 * s,
     "rewards/margins": 0.1 * s, "rewards/accuracies": 0.5 + 0.1 * s, "logps/chosen": -10.0 + s,
     "logps/rejected": -10.0 - s, "grad_norm": 1.0, "learning_rate": 1e-4}
    for s in range(1, 5)
]
#: The same steps with an SFT term: the trainer logs loss = DPO + γ · sft_loss (here γ = 0.5, SFT 2.0 → +1.0).
WITH_SFT = [{**r, "sft_loss": 2.0, "loss": r["loss"] + 1.0} for r in RECORDS]


def _titles(fig: Figure) -> list[str]:
    return [ax.get_title() for ax in fig.axes]


def _line(fig: Figure, title_start: str, index: int = 0) -> list[float]:
    ax = next(ax for ax in fig.axes if ax.get_title().startswith(title_start))
    return [round(float(v), 6) for v in ax.get_lines()[index].get_ydata()]


def test_training_curves_has_a_panel_per_logged_quantity_and_saves_png(tmp_path: Path) -> None:
    fig = plots.training_curves(RECORDS, title="run")
    assert isinstance(fig, Figure)
    assert _titles(fig) == ["DPO loss (= total loss, γ = 0)", "SFT term (chosen NLL per token, before γ)",
                            "Total loss (= DPO loss, γ = 0)", "Rewards (β · log-ratio)",
                            "Reward margin (chosen − rejected)", "Reward accuracy (%)", "Log-probabilities (policy)",
                            "Gradient norm", "Learning rate"]
    rewards = fig.axes[3]
    assert [line.get_label() for line in rewards.get_lines()] == ["chosen", "rejected"]
    assert _line(fig, "Rewards", 1) == [-0.05, -0.1, -0.15, -0.2]
    assert _line(fig, "Reward accuracy") == [60.0, 70.0, 80.0, 90.0]  # in %, as the dashboard's tables
    assert _line(fig, "Log-probabilities", 1) == [-11.0, -12.0, -13.0, -14.0]
    assert fig.axes[1].texts[0].get_text() == "no SFT term (γ = 0)"
    path = plots.save_figure(fig, tmp_path / "sub" / "curves.png")
    assert path.read_bytes().startswith(PNG_MAGIC)
    assert not list(path.parent.glob(".*.tmp"))


def test_the_total_loss_is_never_called_the_dpo_loss() -> None:
    fig = plots.training_curves(WITH_SFT, gamma=0.5)
    assert _titles(fig)[:3] == ["DPO loss (total − 0.5 · SFT)", "SFT term (chosen NLL per token, before γ = 0.5)",
                                "Total loss (DPO + 0.5 · SFT)"]
    assert _line(fig, "DPO loss") == [0.6, 0.5, 0.4, 0.3]  # total minus γ · SFT: the DPO loss alone
    assert _line(fig, "Total loss") == [1.6, 1.5, 1.4, 1.3]
    assert _line(fig, "SFT term") == [2.0] * 4


def test_an_sft_term_without_a_known_gamma_is_not_split_by_guessing() -> None:
    fig = plots.training_curves(WITH_SFT)
    dpo = fig.axes[0]
    assert dpo.get_title() == "DPO loss" and not dpo.get_lines()
    assert "γ not recorded" in dpo.texts[0].get_text()
    assert _titles(fig)[2] == "Total loss (DPO + γ · SFT)" and _line(fig, "Total loss") == [1.6, 1.5, 1.4, 1.3]


def test_training_curves_of_an_sft_run_mark_the_preference_panels() -> None:
    fig = plots.training_curves([{"step": 1, "loss": 0.7}, {"step": 2, "loss": 0.6}])
    assert _titles(fig)[2] == "Training loss"
    notes = {ax.get_title(): [t.get_text() for t in ax.texts] for ax in fig.axes}
    assert notes["DPO loss"] == ["not a preference run"]
    assert notes["Reward margin (chosen − rejected)"] == ["not logged"]


def test_training_curves_smoothing_draws_the_trailing_mean() -> None:
    fig = plots.training_curves(RECORDS, smooth=2)
    assert _line(fig, "Total loss", 1) == [0.6, 0.55, 0.45, 0.35]


def test_run_gamma_comes_from_the_run_config(tmp_path: Path) -> None:
    from hadpo.report.training import curves, run_gamma

    assert run_gamma(tmp_path) is None
    (tmp_path / "manifest.json").write_text(json.dumps({"config": {"gamma": 0.5}}))
    assert run_gamma(tmp_path) == 0.5
    (tmp_path / "train_config.resolved.json").write_text(json.dumps({"gamma": 2}))
    assert run_gamma(tmp_path) == 2.0  # the resolved config first
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps({**r, "loss": r["loss"] + 4.0, "sft_loss": 2.0}) + "\n"
                                                    for r in RECORDS))
    assert _line(curves(tmp_path), "DPO loss") == [0.6, 0.5, 0.4, 0.3]


#: An mDPO run: DPO 0.7 − 0.1 s, conditional 0.5, anchor 0.2, SFT 2.0 (all logged unweighted) with weights
#: conditional 1, anchor 0.5, γ 0.25 → total = DPO + 0.5 + 0.1 + 0.5 = DPO + 1.1.
MDPO_WEIGHTS = {"conditional_weight": 1.0, "anchor_weight": 0.5, "gamma": 0.25}
MDPO = [{**r, "dpo_loss": r["loss"], "conditional_loss": 0.5, "anchor_loss": 0.2, "sft_loss": 2.0,
         "loss": r["loss"] + 1.1, "rewards/conditional_margins": 0.3 * r["step"],
         "logps/chosen_corrupted": -30.0 - r["step"]} for r in RECORDS]


def test_each_loss_term_has_its_own_panel_titled_with_its_weight() -> None:
    fig = plots.training_curves(MDPO, weights=MDPO_WEIGHTS)
    assert _titles(fig) == [
        "DPO loss (logged)", "Conditional term (unweighted; weight 1)", "Anchor term (unweighted; weight 0.5)",
        "SFT term (chosen NLL per token, before γ = 0.25)",
        "Total loss\n(DPO + 1 · conditional + 0.5 · anchor + 0.25 · SFT)", "Rewards (β · log-ratio)",
        "Reward margin (chosen − rejected)", "Conditional reward margin\n(chosen answer: image − corrupted image)",
        "Reward accuracy (%)", "Log-probabilities (policy)", "Gradient norm", "Learning rate"]
    assert len(fig.axes) == 12  # four full rows of three
    assert _line(fig, "DPO loss") == [0.6, 0.5, 0.4, 0.3]  # the logged DPO loss, not the total
    assert _line(fig, "Conditional term") == [0.5] * 4 and _line(fig, "Anchor term") == [0.2] * 4  # unweighted
    assert _line(fig, "Total loss") == [1.7, 1.6, 1.5, 1.4]
    assert _line(fig, "Conditional reward margin") == [0.3, 0.6, 0.9, 1.2]
    logps = next(ax for ax in fig.axes if ax.get_title().startswith("Log-prob"))
    assert [line.get_label() for line in logps.get_lines()] == ["chosen", "rejected", "chosen, corrupted image"]


def test_the_logged_dpo_loss_wins_over_the_derivation() -> None:
    # A logged DPO loss that the total and weights would not give: it is what the panel shows.
    records = [{**r, "dpo_loss": 0.1} for r in MDPO]
    series, notes = plots.training_series(records, weights=MDPO_WEIGHTS)
    assert series["dpo_loss"] == [0.1] * 4 and "dpo_loss" not in notes


def test_an_old_log_derives_the_dpo_loss_from_every_weighted_term() -> None:
    old = [{k: v for k, v in r.items() if k != "dpo_loss"} for r in MDPO]
    fig = plots.training_curves(old, weights=MDPO_WEIGHTS)
    assert _titles(fig)[0] == "DPO loss\n(total − 1 · conditional − 0.5 · anchor − 0.25 · SFT)"
    assert _line(fig, "DPO loss") == [0.6, 0.5, 0.4, 0.3]
    unknown = plots.training_curves(old, weights={**MDPO_WEIGHTS, "anchor_weight": None})
    dpo = unknown.axes[0]
    assert not dpo.get_lines() and dpo.texts[0].get_text() == "w_anchor not recorded:\ncannot separate the anchor term"
    assert "Anchor term (unweighted; weight not recorded)" in _titles(unknown)


def test_terms_a_run_does_not_have_leave_their_panels_out_or_say_so() -> None:
    # A plain HA-DPO run: the nine panels of before, the SFT one saying γ = 0.
    plain = plots.training_curves(RECORDS, weights={"gamma": 0.0, "conditional_weight": 0.0, "anchor_weight": 0.0})
    assert len(plain.axes) == 9 and not any("Conditional" in t or "Anchor" in t for t in _titles(plain))
    # A weight > 0 whose term the log lacks is shown, marked: the log does not match the config.
    fig = plots.training_curves(RECORDS, weights={"gamma": 0.0, "conditional_weight": 1.0, "anchor_weight": 0.0})
    titles = _titles(fig)
    assert titles[1] == "Conditional term (unweighted; weight 1)" and not any("Anchor" in t for t in titles)
    assert fig.axes[1].texts[0].get_text() == "not logged" and len(fig.axes) == 11


def test_run_weights_read_every_term_weight(tmp_path: Path) -> None:
    from hadpo.report.training import curves, run_weights

    assert run_weights(tmp_path) == {"conditional_weight": None, "anchor_weight": None, "gamma": None}
    (tmp_path / "train_config.resolved.json").write_text(json.dumps({"gamma": 0.5, "beta": 0.1}))
    # A config written before the mDPO terms existed: they had weight 0.
    assert run_weights(tmp_path) == {"conditional_weight": 0.0, "anchor_weight": 0.0, "gamma": 0.5}
    (tmp_path / "train_config.resolved.json").write_text(json.dumps(MDPO_WEIGHTS))
    assert run_weights(tmp_path) == MDPO_WEIGHTS
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in MDPO))
    assert _titles(curves(tmp_path))[1] == "Conditional term (unweighted; weight 1)"


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
