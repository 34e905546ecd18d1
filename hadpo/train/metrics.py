"""Per-step training metrics: appended to ``metrics.jsonl`` (the dashboard's source), a console bar, and
optionally wandb / tensorboard."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

from hadpo.io import append_jsonl, atomic_write_jsonl, read_jsonl_tolerant

#: the keys every DPO step logs (TRL's names).
DPO_KEYS = (
    "loss",
    "rewards/chosen",
    "rewards/rejected",
    "rewards/accuracies",
    "rewards/margins",
    "logps/chosen",
    "logps/rejected",
    "grad_norm",
    "learning_rate",
)


class Throughput:
    """Seconds per optimiser step, examples (pairs for DPO) and language-model tokens per second, over the steps
    since the last report: a run's speed in its own log, comparable across runs and GPUs."""

    def __init__(self, unit: str, examples_per_step: int) -> None:
        self.unit = unit
        self.examples_per_step = examples_per_step
        self._steps = 0
        self._seconds = 0.0
        self._tokens = 0
        self._t0 = 0.0

    def start(self) -> None:
        """Mark the start of an optimiser step."""
        self._t0 = time.perf_counter()

    def stop(self, tokens: int) -> None:
        """Mark the end of a step that put ``tokens`` language-model tokens (image tokens included, all ranks)
        through the model."""
        self._seconds += time.perf_counter() - self._t0
        self._steps += 1
        self._tokens += tokens

    def report(self) -> dict[str, float]:
        """The averages since the last report (then reset)."""
        seconds = max(self._seconds, 1e-9)
        out = {
            "perf/seconds_per_step": self._seconds / max(self._steps, 1),
            f"perf/{self.unit}_per_second": self._steps * self.examples_per_step / seconds,
            "perf/tokens_per_second": self._tokens / seconds,
        }
        self._steps, self._seconds, self._tokens = 0, 0.0, 0
        return out


class MetricsLogger:
    """Writes one JSON line per logged optimiser step; only the main rank writes."""

    def __init__(self, path: str | Path, *, enabled: bool, report_to: str = "none", run_name: str = "hadpo",
                 config: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.enabled = enabled
        self._backend: Any = None
        if enabled and report_to != "none":
            self._backend = self._open_backend(report_to, run_name, config or {})

    def _open_backend(self, report_to: str, run_name: str, config: dict[str, Any]) -> Any:
        try:
            if report_to == "wandb":
                import wandb

                return ("wandb", wandb.init(name=run_name, config=config))
            from torch.utils.tensorboard import SummaryWriter

            return ("tensorboard", SummaryWriter(str(self.path.parent / "tensorboard")))
        except ImportError:
            warnings.warn(f"report_to={report_to!r} but it is not installed; logging to metrics.jsonl only",
                          stacklevel=2)
            return None

    def truncate_after(self, step: int) -> None:
        """Drop records logged after ``step`` (a resumed run re-logs them, so the file matches an uninterrupted run)."""
        if not self.enabled or not self.path.exists():
            return
        kept = [r for r in read_jsonl_tolerant(self.path) if r.get("step", 0) <= step]
        atomic_write_jsonl(self.path, kept)

    def log(self, step: int, values: dict[str, float]) -> None:
        """Append ``values`` for optimiser step ``step``."""
        if not self.enabled:
            return
        record = {"step": step, **{k: (None if v is None else float(v)) for k, v in values.items()}}
        append_jsonl(self.path, [record])
        if self._backend is not None:
            kind, handle = self._backend
            clean = {k: v for k, v in record.items() if v is not None and k != "step"}
            if kind == "wandb":
                handle.log(clean, step=step)
            else:
                for key, value in clean.items():
                    handle.add_scalar(key, value, step)

    def close(self) -> None:
        """Flush and close the optional backend."""
        if self._backend is not None:
            kind, handle = self._backend
            handle.finish() if kind == "wandb" else handle.close()


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Read a run's ``metrics.jsonl`` (tolerates a torn last line)."""
    return read_jsonl_tolerant(path)

