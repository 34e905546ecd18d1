"""Build DeepSpeed's JIT communication op once, so the first real training launch does not pay for it.

DeepSpeed compiles ``deepspeed_shm_comm`` on the first ``init_distributed`` of a machine (about 45 s on two
cores) and caches it under ``~/.cache/torch_extensions``. ``make setup`` runs this module once.
"""

from __future__ import annotations

import os
import sys

from hadpo.distributed import free_port


def main() -> int:
    """Initialise a one-process gloo/DeepSpeed group and tear it down; returns an exit code."""
    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(free_port()))
    import deepspeed
    import torch.distributed as dist

    deepspeed.init_distributed(dist_backend="gloo" if os.environ["DS_ACCELERATOR"] == "cpu" else None)
    dist.destroy_process_group()
    print("deepspeed communication op is built and cached", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
