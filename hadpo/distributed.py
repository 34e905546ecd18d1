"""One process-group context for training and evaluation, under deepspeed, torchrun or plain python, CPU or GPU.

:func:`init_distributed` reads the rank variables a launcher sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``),
joins the process group when there is one (NCCL on CUDA, gloo on CPU; DeepSpeed's own initialisation when asked)
and picks the device. Without a launcher it is rank 0 of 1 and creates no group, unless DeepSpeed is asked for,
which needs one: then it sets single-process rendezvous variables, as DeepSpeed otherwise falls back to MPI
discovery (and needs mpi4py).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any


def free_port(host: str = "") -> int:
    """A TCP port that is free on this machine right now (the OS picks it; another process may take it later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job and its device (``cpu``, ``cuda:N``, ...)."""

    rank: int
    local_rank: int
    world_size: int
    device: str
    #: Whether :func:`init_distributed` created the process group (its creator tears it down).
    created: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes shared files."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every rank (no-op in a single process)."""
        barrier(self)


def pick_device(requested: str, local_rank: int) -> str:
    """``auto``: ``cuda:LOCAL_RANK`` when CUDA is visible, else ``cpu``; ``cuda`` means ``cuda:LOCAL_RANK``."""
    import torch

    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda":
        requested = f"cuda:{local_rank}"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {requested!r} requested but no CUDA device is visible")
        torch.cuda.set_device(torch.device(requested))
    return requested


def init_distributed(device: str = "auto", *, use_deepspeed: bool = False) -> DistContext:
    """Join the launcher's process group (when there is one, or DeepSpeed needs one) and pick the device."""
    import torch
    import torch.distributed as dist

    if use_deepspeed and "RANK" not in os.environ:
        os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(free_port()))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local_rank)
    backend = "nccl" if dev.startswith("cuda") else "gloo"
    created = False
    if use_deepspeed:
        import deepspeed

        created = not dist.is_initialized()
        deepspeed.init_distributed(dist_backend=backend)
    elif world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend=backend)
        created = True
    if dev == "cpu":
        # Several ranks share few cores: honour OMP_NUM_THREADS (the launcher sets 1 per rank on a shared node).
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", str(max(1, torch.get_num_threads())))))
    return DistContext(rank=rank, local_rank=local_rank, world_size=world_size, device=dev, created=created)


def all_reduce_mean(values: dict[str, float], ctx: DistContext) -> dict[str, float]:
    """Average scalar metrics over ranks (identity in a single process)."""
    import torch
    import torch.distributed as dist

    if ctx.world_size == 1 or not dist.is_initialized() or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t)
    return {k: float(v) / ctx.world_size for k, v in zip(keys, t.tolist(), strict=True)}


def all_reduce_sum(value: int, ctx: DistContext) -> int:
    """Sum an integer count over ranks (identity in a single process)."""
    import torch
    import torch.distributed as dist

    if ctx.world_size == 1 or not dist.is_initialized():
        return value
    t = torch.tensor([value], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t)
    return int(t.item())


def barrier(ctx: Any) -> None:
    """Wait for every rank (no-op in a single process)."""
    import torch.distributed as dist

    if ctx.world_size > 1 and dist.is_initialized():
        dist.barrier()


def teardown() -> None:
    """Destroy the process group: without it a torchrun rank may die at exit and fail the whole job."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
