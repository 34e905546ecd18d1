"""Mixed precision without DeepSpeed: the trainable parameters kept in fp32, the forward under autocast.

A bf16 model trained in bf16 loses small updates: at lr 2e-6 an Adam step is below bf16's resolution for most
weights (measured on LLaVA-1.5-7B's geometry: the projector changed in about 2% of its weights per step). So, as
DeepSpeed's bf16 optimizer does, the trainable tensors (LoRA, the projector) are held in fp32 and the frozen ones
stay in the model's dtype; the forward runs under ``torch.autocast`` to that dtype, so every matmul still runs in
bf16 (or fp16, with a gradient scaler). In fp32 this is a no-op.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any


class MixedPrecision:
    """The fp32 master weights and the autocast context of a ``dtype`` model on ``device`` (see the module doc)."""

    def __init__(self, dtype: str, device: str, params: Sequence[Any]) -> None:
        import torch

        self.enabled = dtype != "float32"
        self.device_type = device.split(":")[0]
        self.dtype = getattr(torch, dtype)
        self.scaler = None
        if not self.enabled:
            return
        for p in params:
            p.data = p.data.float()  # same Parameter object: the optimizer built afterwards sees fp32 tensors
        if dtype == "float16":
            self.scaler = torch.amp.GradScaler(self.device_type)

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """The forward's context: autocast to the model's dtype (nothing in fp32)."""
        if not self.enabled:
            yield
            return
        import torch

        with torch.autocast(device_type=self.device_type, dtype=self.dtype):
            yield

    def backward(self, loss: Any) -> None:
        """``loss.backward()``, scaled for fp16."""
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def unscale(self, optimizer: Any) -> None:
        """Bring fp16-scaled gradients back to their true size (before clipping or measuring them)."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: Any) -> None:
        """The optimiser step (skipped by the scaler when an fp16 gradient overflowed)."""
        if self.scaler is not None:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()
