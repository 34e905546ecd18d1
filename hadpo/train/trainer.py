"""The training loop that ``python -m hadpo.train`` runs under deepspeed, torchrun or plain python.

One loop for DPO and SFT: an *objective module* (:mod:`hadpo.train.objectives`) wraps the model and turns a
collated batch into a loss plus metrics; this module owns everything around it: process group, optimiser
and schedule, DeepSpeed engine or plain PyTorch, gradient accumulation, metrics, checkpoints and resume,
and the final outputs (PEFT adapter, projector, resolved config, manifest).
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path
from typing import Any

from hadpo.distributed import DistContext, all_reduce_mean, all_reduce_sum, barrier, init_distributed, teardown
from hadpo.io import atomic_write_json
from hadpo.manifest import environment
from hadpo.progress import progress, quiet_library_bars
from hadpo.train.checkpoint import load_checkpoint, save_checkpoint
from hadpo.train.config import TrainConfig
from hadpo.train.metrics import MetricsLogger, Throughput
from hadpo.train.plan import StepPlan
from hadpo.train.precision import MixedPrecision
from hadpo.train.schedule import lr_multiplier
from hadpo.train.stage import DONE_FILE


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (the trainer does it before building its objective)."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _trainable(module) -> list:
    return [p for p in module.parameters() if p.requires_grad]


def _grad_norm(params: list) -> float:
    import torch

    norms = [p.grad.detach().float().norm(2) for p in params if p.grad is not None]
    return float(torch.linalg.vector_norm(torch.stack(norms), 2)) if norms else 0.0


def _all_reduce_grads(params: list, info: DistContext) -> None:
    """Average gradients over ranks by hand: only the trainable (LoRA) tensors, no DDP wrapper needed."""
    import torch.distributed as dist

    if info.world_size == 1:
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad.div_(info.world_size)


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Run (or resume) training as configured; returns the final summary written to ``train_done.json``."""
    import torch

    from hadpo.train.objectives import build_objective

    out = Path(cfg.output_dir)
    use_ds = cfg.deepspeed_config is not None
    info = init_distributed(cfg.model_spec.device, use_deepspeed=use_ds)
    seed_everything(cfg.seed)
    t0 = time.time()

    objective = build_objective(cfg, info)  # loads the model, prepares data, runs pre-flight checks
    objective.to(info.device)
    params = _trainable(objective)
    # Without DeepSpeed (whose bf16 optimizer keeps its own fp32 master copy), the trainable tensors train in fp32.
    precision = MixedPrecision("float32" if use_ds else cfg.model_spec.dtype, info.device, params)
    plan = StepPlan(
        num_examples=len(objective.dataset),
        per_device_batch_size=cfg.per_device_batch_size,
        world_size=info.world_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        num_epochs=cfg.num_epochs,
        max_steps=cfg.max_steps,
        seed=cfg.seed,
        lengths=objective.example_lengths() if cfg.group_by_length else None,
    )
    optimizer = torch.optim.AdamW(
        params, lr=cfg.learning_rate, betas=(cfg.adam_beta1, cfg.adam_beta2), eps=cfg.adam_epsilon,
        weight_decay=cfg.weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_multiplier(plan.total_steps, cfg.warmup_ratio, cfg.lr_scheduler,
                                 warmup_from_zero=cfg.warmup_from_zero)
    )
    engine = None
    if use_ds:
        import deepspeed

        from hadpo.train.launch import resolve_deepspeed_config

        ds_config = resolve_deepspeed_config(
            cfg.deepspeed_config, cfg.per_device_batch_size, cfg.gradient_accumulation_steps, info.world_size,
            cfg.model_spec.dtype, cfg.max_grad_norm, hidden_size=objective.hidden_size,
        )
        engine, optimizer, _, scheduler = deepspeed.initialize(
            model=objective, optimizer=optimizer, lr_scheduler=scheduler, config=ds_config,
            model_parameters=params,
        )
    ckpt_root = out / "checkpoints"
    start = load_checkpoint(ckpt_root, engine=engine, model=objective, optimizer=optimizer, scheduler=scheduler) or 0
    logger = MetricsLogger(out / "metrics.jsonl", enabled=info.is_main, report_to=cfg.report_to,
                           run_name=out.name, config=cfg.to_dict())
    logger.truncate_after(start)
    if info.is_main:
        what = f"resuming at step {start}" if start else "starting"
        print(f"[hadpo.train] {cfg.objective}: {len(objective.dataset)} examples, {plan.total_steps} steps, "
              f"world {info.world_size}, {'deepspeed' if use_ds else 'torch'} on {info.device}; {what}", flush=True)

    bar = progress(plan.total_steps, "train", unit="steps", initial=start, enabled=info.is_main)
    forward = engine if engine is not None else objective
    throughput = Throughput(objective.unit, plan.global_micro_batch * cfg.gradient_accumulation_steps)
    for step in range(start, plan.total_steps):
        throughput.start()
        sums: dict[str, float] = {}
        tokens = 0
        lr = optimizer.param_groups[0]["lr"]  # the rate this step's update uses
        micro_batches = plan.micro_batches(step, info.rank)
        for indices in micro_batches:
            batch = objective.collate([objective.dataset[i] for i in indices])
            tokens += objective.count_tokens(batch)
            with precision.autocast():
                loss, metrics = forward(batch)
            if engine is not None:
                engine.backward(loss)
                engine.step()
            else:
                precision.backward(loss / len(micro_batches))
            for key, value in metrics.items():
                sums[key] = sums.get(key, 0.0) + float(value) / len(micro_batches)
        if engine is not None:
            norm = engine.get_global_grad_norm()
            grad_norm = float(norm) if norm is not None else math.nan
        else:
            _all_reduce_grads(params, info)
            precision.unscale(optimizer)
            grad_norm = _grad_norm(params)
            if cfg.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            precision.step(optimizer)
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        values = all_reduce_mean(sums, info)
        values.update(grad_norm=grad_norm, learning_rate=lr, epoch=plan.epoch_at(step + 1))
        throughput.stop(all_reduce_sum(tokens, info))
        if (step + 1) % cfg.logging_steps == 0 or step + 1 == plan.total_steps:
            logger.log(step + 1, {**values, **throughput.report()})
        bar.update(1)
        # Two short numbers: a long postfix squeezes a terminal bar, and the summary line ends with them.
        bar.set_postfix(loss=values.get("loss"), acc=values.get("rewards/accuracies"))
        if (step + 1) % cfg.save_steps == 0 and step + 1 < plan.total_steps:
            save_checkpoint(ckpt_root, step + 1, engine=engine, model=objective, optimizer=optimizer,
                            scheduler=scheduler, is_main=info.is_main, keep=cfg.save_total_limit)
    bar.close()
    logger.close()

    barrier(info)
    summary = {"steps": plan.total_steps, "examples": len(objective.dataset), "world_size": info.world_size,
               "seconds": round(time.time() - t0, 2), "peak_gpu_memory_gb": _peak_gpu_memory_gb(info),
               **_save(objective, out, engine, info)}
    if info.is_main:
        atomic_write_json(out / "train_config.resolved.json", cfg.to_dict())
        atomic_write_json(out / "manifest.json", {"config": cfg.to_dict(), **environment(),
                                                   "data": objective.data_manifest(), "seed": cfg.seed})
        atomic_write_json(out / DONE_FILE, summary)
    barrier(info)
    teardown()
    return summary


def _peak_gpu_memory_gb(info: DistContext) -> float | None:
    """The most GPU memory this rank's tensors held (None on the CPU)."""
    import torch

    if not info.device.startswith("cuda"):
        return None
    return round(torch.cuda.max_memory_allocated(torch.device(info.device)) / 2**30, 2)


def _save(objective: Any, out: Path, engine: Any, info: DistContext) -> dict[str, Any]:
    """The objective's outputs, without transformers' "Writing model shards" bar when bars are not live."""
    with quiet_library_bars():
        return objective.save(out, engine=engine, is_main=info.is_main)
