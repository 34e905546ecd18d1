"""Process-group set-up for the three launchers (deepspeed, torchrun, plain python), on CPU (gloo) or GPU."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job."""

    rank: int
    local_rank: int
    world_size: int
    device: Any  # torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _pick_device(requested: str, local_rank: int):
    import torch

    if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' requested but no CUDA device is visible")
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def init_distributed(device: str, use_deepspeed: bool) -> DistInfo:
    """Initialise the process group when there is one (or DeepSpeed needs one) and pick the device.

    A plain ``python -m hadpo.train`` with DeepSpeed gets single-process rendezvous variables, because
    DeepSpeed otherwise falls back to MPI discovery (and needs mpi4py).
    """
    import torch
    import torch.distributed as dist

    if use_deepspeed and "RANK" not in os.environ:
        from hadpo.train.launch import free_port

        os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(free_port()))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = _pick_device(device, local_rank)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if use_deepspeed:
        import deepspeed

        deepspeed.init_distributed(dist_backend=backend)
    elif world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend=backend)
    if dev.type == "cpu":
        # Several ranks share few cores: one intra-op thread each unless the user chose otherwise.
        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", str(max(1, torch.get_num_threads())))))
    return DistInfo(rank=rank, local_rank=local_rank, world_size=world_size, device=dev)


def all_reduce_mean(values: dict[str, float], info: DistInfo) -> dict[str, float]:
    """Average scalar metrics over ranks (identity in a single process)."""
    import torch
    import torch.distributed as dist

    if info.world_size == 1 or not dist.is_initialized() or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=info.device)
    dist.all_reduce(t)
    return {k: float(v) / info.world_size for k, v in zip(keys, t.tolist(), strict=True)}


def barrier(info: DistInfo) -> None:
    """Wait for every rank (no-op in a single process)."""
    import torch.distributed as dist

    if info.world_size > 1 and dist.is_initialized():
        dist.barrier()


def teardown() -> None:
    """Destroy the process group: without it a torchrun rank may die at exit and fail the whole job."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
