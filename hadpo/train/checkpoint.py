"""Resumable checkpoints of what trains: DeepSpeed engine checkpoints, or plain torch state without DeepSpeed.

Only the trainable tensors (LoRA, the projector when it trains), the optimiser and scheduler states and the step
are saved: the frozen base model is read again from its folder on resume. (A ZeRO-3 checkpoint that held the whole
frozen model would be 17 GB at 7B, twice over with the two kept.) A checkpoint folder is complete only once
``latest`` names it, and ``latest`` is written atomically after the save, so a kill during a save resumes from the
previous checkpoint.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from hadpo.io import atomic_write_text

LATEST = "latest"


def _tag(step: int) -> str:
    return f"step-{step:07d}"


def latest_step(root: str | Path) -> int | None:
    """The step of the last complete checkpoint under ``root``, or None."""
    marker = Path(root) / LATEST
    if not marker.is_file():
        return None
    tag = marker.read_text().strip()
    return int(tag.split("-")[1]) if tag.startswith("step-") and (Path(root) / tag).exists() else None


def save_checkpoint(root: str | Path, step: int, *, engine: Any = None, model: Any = None, optimizer: Any = None,
                    scheduler: Any = None, is_main: bool = True, keep: int = 2) -> None:
    """Save everything needed to resume at ``step`` (collective under DeepSpeed: call on every rank)."""
    import torch

    root = Path(root)
    tag = _tag(step)
    if engine is not None:
        # DeepSpeed writes module, optimizer and scheduler state (partitioned under ZeRO) itself; it also
        # writes its own "latest" file, which our marker supersedes.
        engine.save_checkpoint(str(root), tag=tag, client_state={"step": step}, save_latest=False,
                               exclude_frozen_parameters=True)
    elif is_main:
        folder = root / tag
        folder.mkdir(parents=True, exist_ok=True)
        trainable = {n: p.detach().cpu() for n, p in model.named_parameters() if p.requires_grad}
        state = {"model": trainable, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                 "step": step}
        tmp = folder / "state.pt.tmp"
        torch.save(state, tmp)
        tmp.replace(folder / "state.pt")
    _sync()
    if is_main:
        atomic_write_text(root / LATEST, tag + "\n")
        done = sorted(p for p in root.glob("step-*") if p.is_dir() and p.name != tag)
        for old in done[: max(0, len(done) - (keep - 1))]:
            shutil.rmtree(old, ignore_errors=True)
    _sync()


def load_checkpoint(root: str | Path, *, engine: Any = None, model: Any = None, optimizer: Any = None,
                    scheduler: Any = None) -> int | None:
    """Restore the last complete checkpoint; returns its step, or None when there is none."""
    import torch

    step = latest_step(root)
    if step is None:
        return None
    tag = _tag(step)
    if engine is not None:
        # Not strict: the checkpoint holds the trainable tensors only; the frozen ones come from the base model.
        _, client = engine.load_checkpoint(str(root), tag=tag, load_module_strict=False)
        return int(client["step"]) if client else step
    state = torch.load(Path(root) / tag / "state.pt", map_location="cpu", weights_only=False)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in state["model"].items():
            params[name].copy_(value)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return int(state["step"])


def _sync() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
