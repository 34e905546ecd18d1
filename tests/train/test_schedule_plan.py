"""Learning-rate factors match HF's after warmup (whose first step learns); the step plan is deterministic, sharded
and padded like DistributedSampler."""

from __future__ import annotations

import random

import pytest
import torch

from hadpo.train.plan import StepPlan
from hadpo.train.schedule import lr_multiplier, warmup_steps


@pytest.mark.parametrize("from_zero", [False, True], ids=["kit", "hf"])
@pytest.mark.parametrize("kind", ["cosine", "linear", "constant"])
def test_schedule_matches_transformers_after_warmup(kind: str, from_zero: bool) -> None:
    """HF's factors from the end of warmup on; during warmup step t runs at (t + 1) / W, where HF's is t / W (and
    ours too with warmup_from_zero)."""
    from transformers import get_scheduler

    total, ratio = 37, 0.1
    warm = warmup_steps(total, ratio)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    name = {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}[kind]
    hf = get_scheduler(name, opt, num_warmup_steps=warm, num_training_steps=total)
    ours = lr_multiplier(total, ratio, kind, warmup_from_zero=from_zero)
    for step in range(total):
        expected = (step + 1) / warm if step < warm and not from_zero else hf.get_last_lr()[0]
        assert ours(step) == pytest.approx(expected, abs=1e-12), step
        opt.step()
        hf.step()


def test_the_first_step_learns() -> None:
    """A one-step run (max_steps 1, warmup 3%) and the 7B recipe's first step run at a non-zero rate."""
    assert lr_multiplier(1, 0.03, "cosine")(0) == 1.0
    assert lr_multiplier(94, 0.03, "cosine")(0) == pytest.approx(1 / 3)
    assert lr_multiplier(10, 0.0, "constant")(0) == 1.0


def test_warmup_is_ceil_of_ratio() -> None:
    assert warmup_steps(94, 0.03) == 3  # the 7B recipe: 12K pairs / 128 per step = 94 steps
    with pytest.raises(ValueError, match="unknown lr schedule"):
        lr_multiplier(10, 0.1, "step")


def test_plan_covers_every_example_once_per_epoch_across_ranks() -> None:
    plan = StepPlan(10, per_device_batch_size=2, world_size=2, gradient_accumulation_steps=1, num_epochs=1,
                    max_steps=None, seed=0)
    assert plan.steps_per_epoch == 3 and plan.total_steps == 3
    seen = [i for step in range(3) for rank in range(2) for mb in plan.micro_batches(step, rank) for i in mb]
    # 12 slots for 10 examples: the short last chunk wraps to the start of the epoch's order.
    assert sorted(set(seen)) == list(range(10)) and len(seen) == 12


def test_plan_is_deterministic_and_reshuffles_per_epoch() -> None:
    make = lambda: StepPlan(8, 4, 1, 2, 2.0, None, seed=5)  # noqa: E731
    a, b = make(), make()
    steps = range(a.total_steps)
    assert [a.micro_batches(s, 0) for s in steps] == [b.micro_batches(s, 0) for s in steps]
    epoch0 = [i for mb in a.micro_batches(0, 0) for i in mb]
    epoch1 = [i for mb in a.micro_batches(1, 0) for i in mb]
    assert sorted(epoch0) == sorted(epoch1) == list(range(8)) and epoch0 != epoch1
    assert a.epoch_at(2) == 2.0


def test_max_steps_overrides_epochs() -> None:
    assert StepPlan(100, 4, 1, 1, 1.0, 7, 0).total_steps == 7
    with pytest.raises(ValueError, match="no training examples"):
        StepPlan(0, 4, 1, 1, 1.0, None, 0)


def test_grouping_by_length_batches_like_with_like_and_keeps_every_example() -> None:
    # 1000 examples, a fifth of them long (captions) and the rest short (existence answers), in random places.
    rng = random.Random(0)
    lengths = tuple(rng.choice([60] + [30] * 4) for _ in range(1000))
    grouped = StepPlan(1000, 8, 2, 1, 2.0, None, seed=3, lengths=lengths)
    mixed = StepPlan(1000, 8, 2, 1, 2.0, None, seed=3)

    def padded_tokens(plan: StepPlan) -> int:
        return sum(max(lengths[i] for i in mb) * len(mb) for s in range(plan.total_steps) for r in range(2)
                   for mb in plan.micro_batches(s, r))

    for epoch in range(2):
        steps = range(epoch * grouped.steps_per_epoch, (epoch + 1) * grouped.steps_per_epoch)
        seen = [i for s in steps for r in range(2) for mb in grouped.micro_batches(s, r) for i in mb]
        assert set(seen) == set(range(1000))  # every example once (the short last batch wraps)
    batches = [mb for s in range(grouped.total_steps) for r in range(2) for mb in grouped.micro_batches(s, r)]
    mixed_kinds = sum(len({lengths[i] for i in mb}) > 1 for mb in batches)
    # Per epoch and rank: at most one boundary batch in each of the 2 mega-batches, plus the wrapped tail.
    assert mixed_kinds <= 2 * 2 * 3
    assert padded_tokens(grouped) < 0.8 * padded_tokens(mixed)
    # Long batches do not all come first: the batch order is shuffled.
    long_steps = [s for s in range(grouped.steps_per_epoch) if lengths[grouped.micro_batches(s, 0)[0][0]] == 60]
    assert long_steps[0] < grouped.steps_per_epoch // 2 < long_steps[-1]
    assert StepPlan(1000, 8, 2, 1, 2.0, None, seed=3, lengths=lengths).micro_batches(40, 1) == \
        grouped.micro_batches(40, 1)


def test_lengths_must_match_the_examples() -> None:
    with pytest.raises(ValueError, match="3 entries for 4 examples"):
        StepPlan(4, 2, 1, 1, 1.0, None, 0, lengths=(1, 2, 3))
