"""Learning-rate schedules: HF Trainer's (which the original trainer used), with a warmup whose first step learns.

Linear warmup over ``ceil(warmup_ratio * total)`` steps W, then cosine or linear decay to 0, or constant. Step
``t < W`` runs at ``(t + 1) / W`` of the peak: the first step learns (at ``1 / W``), where HF's schedule, and so the
original's, spends it at 0 (a one-step run would train nothing); the peak is reached at step W - 1.
``warmup_from_zero`` gives HF's warmup exactly (``t / W``).
"""

from __future__ import annotations

import math
from collections.abc import Callable


def warmup_steps(total_steps: int, warmup_ratio: float) -> int:
    """Warmup length as HF computes it from a ratio: ``ceil(ratio * total)`` (3% in the original's run)."""
    return math.ceil(warmup_ratio * total_steps)


def lr_multiplier(total_steps: int, warmup_ratio: float, kind: str, *,
                  warmup_from_zero: bool = False) -> Callable[[int], float]:
    """The ``LambdaLR`` factor of optimiser step ``step`` (0-based); ``warmup_from_zero``: HF's warmup (step 0 at 0)."""
    if kind not in ("cosine", "linear", "constant"):
        raise ValueError(f"unknown lr schedule {kind!r}; expected cosine, linear or constant")
    warm = warmup_steps(total_steps, warmup_ratio)

    def factor(step: int) -> float:
        if step < warm:
            return (step if warmup_from_zero else step + 1) / warm
        if kind == "constant":
            return 1.0
        progress = (step - warm) / max(1, total_steps - warm)
        if kind == "cosine":
            return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
        return max(0.0, 1.0 - progress)

    return factor
