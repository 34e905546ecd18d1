"""Parameters of the dashboard (notebook 08, ``params/*/08_dashboard.yaml``): which run folders, where it goes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hadpo.config import Params, check, component, param
from hadpo.data.layout import canonical_pope_set
from hadpo.errors import ParamsError
from hadpo.specs import RerunSpec


@dataclass
class DashboardConfig(Params):
    """Where the base and HA-DPO results are, where the report goes, and how to compute intervals."""

    run_name: str = param("demo", "Name of this comparison, shown on the reports index page.", section="naming")
    model_name: str = param("LLaVA-1.5", "Base model name for the tables' Model column.")
    base_pope_dir: str = param("runs/demo/pope/base", "POPE run folder of the base model (<set>/answers.jsonl ...).",
                               kind="path", section="POPE (required)")
    hadpo_pope_dir: str = param("runs/demo/pope/hadpo", "POPE run folder of the HA-DPO (adapter) model.",
                                kind="path")
    pope_sets: list[str] = param(["random", "popular", "adversarial"], "POPE sets (adv = adversarial).")
    pope_data_root: str | None = param(
        None, "Data root whose POPE question files hold the labels; None: the file named in each protocol.json.",
        kind="path")
    base_shr_dir: str | None = param("runs/demo/shr/base", "SHR run folder of the base model; None: no SHR.",
                                     kind="path", section="SHR, training (optional)")
    hadpo_shr_dir: str | None = param("runs/demo/shr/hadpo", "SHR run folder of the HA-DPO model; None: no SHR.",
                                      kind="path")
    train_dir: str | None = param("runs/demo/train", "Training run folder (metrics.jsonl); None: no curves.",
                                  kind="path")
    base_chair_dir: str | None = param(None, "CHAIR run folder of the base model; None: no CHAIR.", kind="path",
                                       section="CHAIR, AMBER, MMHal-Bench (optional)")
    hadpo_chair_dir: str | None = param(None, "CHAIR run folder of the HA-DPO model.", kind="path")
    base_amber_dir: str | None = param(None, "AMBER run folder of the base model; None: no AMBER.", kind="path")
    hadpo_amber_dir: str | None = param(None, "AMBER run folder of the HA-DPO model.", kind="path")
    base_mmhal_dir: str | None = param(None, "MMHal-Bench run folder of the base model; None: no MMHal-Bench.",
                                       kind="path")
    hadpo_mmhal_dir: str | None = param(None, "MMHal-Bench run folder of the HA-DPO model.", kind="path")
    require_all: bool = param(False, "Missing optional results (SHR, training, the benchmarks configured, the "
                              "rounds manifest and its folders) are an error instead of a note.")
    rounds_file: str | None = param(None, "rounds.json of a pipeline run: metrics by round; None: no by-round "
                                    "section.", kind="path", section="metrics by round (optional)")
    report_dir: str = param("reports/demo", "Folder for the PNG figures and summary.json (one run of reports/).",
                            kind="path", section="output and statistics")
    bootstrap_resamples: int = param(1000, "Bootstrap resamples per interval.")
    confidence: float = param(0.95, "Confidence level of the bootstrap intervals.")
    seed: int = param(0, "Seed of the bootstrap draws (same seed, same intervals).")
    qualitative_limit: int = param(5, "Images in the side-by-side descriptions.")
    qualitative_run: str = param("run1", "SHR judge run whose verdicts are highlighted.")
    smooth: int = param(1, "Training curves: trailing mean over this many steps (1: raw values).")
    rerun: RerunSpec = component(RerunSpec)

    @property
    def benchmark_dirs(self) -> dict[str, tuple[str | None, str | None]]:
        """Benchmark → (base run folder, HA-DPO run folder)."""
        return {"CHAIR": (self.base_chair_dir, self.hadpo_chair_dir),
                "AMBER": (self.base_amber_dir, self.hadpo_amber_dir),
                "MMHal-Bench": (self.base_mmhal_dir, self.hadpo_mmhal_dir)}

    def validate(self) -> None:
        check_statistics(self)
        check(self.qualitative_limit >= 1, f"parameter 'qualitative_limit' must be >= 1, got {self.qualitative_limit}")
        check(self.smooth >= 1, f"parameter 'smooth' must be >= 1, got {self.smooth}")


def check_statistics(cfg: Any) -> None:
    """Check and normalise the keys every report that reads POPE and draws intervals has (the dashboard,
    ``hadpo compare``): ``pope_sets`` canonical and deduplicated, ``bootstrap_resamples`` >= 1, ``confidence`` in
    (0, 1); a bad value is a :class:`ParamsError` naming it."""
    check(bool(cfg.pope_sets), "parameter 'pope_sets' must name at least one POPE set")
    try:
        cfg.pope_sets = list(dict.fromkeys(canonical_pope_set(s) for s in cfg.pope_sets))
    except ValueError as exc:
        raise ParamsError(f"parameter 'pope_sets': {exc}") from None
    check(cfg.bootstrap_resamples >= 1, f"parameter 'bootstrap_resamples' must be >= 1, got {cfg.bootstrap_resamples}")
    check(0 < cfg.confidence < 1, f"parameter 'confidence' must be in (0, 1), got {cfg.confidence}")
