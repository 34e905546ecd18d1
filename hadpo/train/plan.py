"""Which examples each rank sees at each optimiser step: deterministic, so a resumed run sees the same data."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from functools import cached_property

#: Micro-batches per mega-batch when grouping by length (the HF Trainer's ``mega_batch_mult``).
_MEGA_BATCH_MULT = 50


@dataclass(frozen=True)
class StepPlan:
    """Shuffled micro-batches over epochs, sharded across ranks; a pure function of its fields."""

    num_examples: int
    per_device_batch_size: int
    world_size: int
    gradient_accumulation_steps: int
    num_epochs: float
    max_steps: int | None
    seed: int
    #: Token length of each example: when given, each micro-batch holds examples of similar length (see
    #: :meth:`_group_by_length`), so little of a batch is padding.
    lengths: tuple[int, ...] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.num_examples <= 0:
            raise ValueError("there are no training examples")
        if self.lengths is not None and len(self.lengths) != self.num_examples:
            raise ValueError(f"lengths has {len(self.lengths)} entries for {self.num_examples} examples")

    @property
    def global_micro_batch(self) -> int:
        """Examples consumed by all ranks in one micro-step."""
        return self.per_device_batch_size * self.world_size

    @property
    def micro_steps_per_epoch(self) -> int:
        return math.ceil(self.num_examples / self.global_micro_batch)

    @property
    def steps_per_epoch(self) -> int:
        """Optimiser steps per epoch (a last partial accumulation still counts as a step)."""
        return math.ceil(self.micro_steps_per_epoch / self.gradient_accumulation_steps)

    @property
    def total_steps(self) -> int:
        if self.max_steps is not None:
            return self.max_steps
        return max(1, math.ceil(self.num_epochs * self.steps_per_epoch))

    @cached_property
    def _orders(self) -> dict[int, list[int]]:
        return {}

    def _order(self, epoch: int) -> list[int]:
        # One permutation per epoch from (seed, epoch): resuming needs no sampler state.
        if epoch not in self._orders:
            order = list(range(self.num_examples))
            rng = random.Random(self.seed * 1_000_003 + epoch)
            rng.shuffle(order)
            self._orders[epoch] = order if self.lengths is None else self._group_by_length(order, rng)
        return self._orders[epoch]

    def _group_by_length(self, order: list[int], rng: random.Random) -> list[int]:
        """Reorder a shuffled epoch so that each global micro-batch holds examples of similar length.

        As LLaVA's ``group_by_modality_length`` and the HF Trainer's ``group_by_length``: the shuffled order is
        cut into mega-batches of 50 micro-batches, each sorted by length and cut into micro-batches, and the
        micro-batches are shuffled so that lengths (and kinds of example) still come in a random order. A short
        last micro-batch stays last, where :meth:`micro_batches` fills it up.
        """
        assert self.lengths is not None
        size = self.global_micro_batch
        mega = size * _MEGA_BATCH_MULT
        chunks: list[list[int]] = []
        for start in range(0, len(order), mega):
            block = sorted(order[start : start + mega], key=lambda i: -self.lengths[i])  # stable: ties keep order
            chunks.extend(block[k : k + size] for k in range(0, len(block), size))
        tail = [chunks.pop()] if len(chunks[-1]) < size else []
        rng.shuffle(chunks)
        return [i for chunk in chunks + tail for i in chunk]

    def micro_batches(self, step: int, rank: int) -> list[list[int]]:
        """Example indices of ``rank``'s micro-batches for optimiser step ``step``.

        A short last chunk of an epoch is filled from the start of the same epoch's order (as PyTorch's
        DistributedSampler pads), so every rank does the same number of micro-steps.
        """
        out = []
        first = step * self.gradient_accumulation_steps
        for micro in range(first, first + self.gradient_accumulation_steps):
            epoch, j = divmod(micro, self.micro_steps_per_epoch)
            order = self._order(epoch)
            start = j * self.global_micro_batch
            chunk = [order[(start + k) % self.num_examples] for k in range(self.global_micro_batch)]
            out.append(chunk[rank * self.per_device_batch_size : (rank + 1) * self.per_device_batch_size])
        return out

    def epoch_at(self, step: int) -> float:
        """Fractional epoch reached after ``step`` optimiser steps."""
        return step * self.gradient_accumulation_steps / self.micro_steps_per_epoch
