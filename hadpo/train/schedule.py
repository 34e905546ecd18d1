"""Learning-rate schedules, the same factors as HF Trainer's (which the original trainer used).

Linear warmup from 0 over ``ceil(warmup_ratio * total)`` steps, then cosine or linear decay to 0, or constant.
"""

from __future__ import annotations

import math
from collections.abc import Callable


def warmup_steps(total_steps: int, warmup_ratio: float) -> int:
    """Warmup length as HF computes it from a ratio: ``ceil(ratio * total)`` (3% in the original's run)."""
    return math.ceil(warmup_ratio * total_steps)


def lr_multiplier(total_steps: int, warmup_ratio: float, kind: str) -> Callable[[int], float]:
    """The ``LambdaLR`` factor of optimiser step ``step`` (0-based)."""
    if kind not in ("cosine", "linear", "constant"):
        raise ValueError(f"unknown lr schedule {kind!r}; expected cosine, linear or constant")
    warm = warmup_steps(total_steps, warmup_ratio)

    def factor(step: int) -> float:
        if step < warm:
            return step / max(1, warm)
        if kind == "constant":
            return 1.0
        progress = (step - warm) / max(1, total_steps - warm)
        if kind == "cosine":
            return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
        return max(0.0, 1.0 - progress)

    return factor
