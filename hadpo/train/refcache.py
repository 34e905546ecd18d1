"""Reference log-probs computed once before training and cached on disk (``precompute_ref: true``).

The reference model never changes, so its log-probs can be computed in one no-grad pass and the reference
forward dropped from every training step (TRL refuses this for vision datasets; here it is supported). The
cache key covers the data files, the base model's files and every setting that changes the token ids or
pixels, so a stale cache is never read.

With mDPO's conditional term on (``conditional_weight > 0``) the cache also holds the reference log-prob of the
chosen answer under the pair's corrupted image; the corruption is seeded per pair, so it is the image every
training step would see, and the corruption settings and the run's seed are part of the key.

One difference from the per-step reference: with ``projector: trained`` the per-step reference sees the
*current* projector's image features (as the original), the cached one the base projector's.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from hadpo.distributed import barrier
from hadpo.io import atomic_write_json, read_json, sha256_json


def model_fingerprint(model: str) -> dict[str, Any]:
    """Identify a base model cheaply: its id plus, for a local folder, config hash and weight-file sizes."""
    path = Path(model)
    if not path.is_dir():
        return {"model": model}
    files = sorted(p for p in path.iterdir() if p.suffix in (".safetensors", ".bin", ".json"))
    return {
        "model": str(path.resolve()),
        "config": sha256_json(read_json(path / "config.json")) if (path / "config.json").is_file() else None,
        "files": {p.name: p.stat().st_size for p in files},
    }


def cache_key(objective: Any, cfg: Any, num_examples: int) -> str:
    """sha256 over data, base model and the settings that shape the inputs (the corrupted images' too, when used)."""
    spec, prompt = cfg.model_spec, cfg.prompt_spec
    adapter = model_fingerprint(spec.adapter) if spec.adapter else None
    content = {
        "data": objective.data_files, "model": model_fingerprint(spec.model), "adapter": adapter,
        "merge_adapter": spec.merge_adapter, "template": prompt.template, "image_mode": prompt.image_mode,
        "sampling": cfg.sampling, "data_seed": cfg.data_seed, "max_pairs": cfg.max_pairs, "dtype": spec.dtype,
        "examples": num_examples,
    }
    if cfg.conditional_weight > 0:
        # Only when on, so that turning the term on never invalidates nor reuses a cache made without it.
        content["conditional"] = {"corruption": cfg.corruption, "crop_scale": list(cfg.crop_scale),
                                  "noise_level": cfg.noise_level, "seed": cfg.seed}
    return sha256_json(content)


def attach_reference_logps(objective: Any, examples: list, cfg: Any) -> list:
    """Return ``examples`` with ``ref_chosen``/``ref_rejected`` filled, from the cache or computed now.

    With the conditional term on, ``ref_corrupted`` too: the objective's collated batch then holds the
    conditional rows after the pair rows, and each cached entry is [chosen, rejected, chosen | corrupted].
    Ranks compute interleaved shards and write one file each; every rank then reads them all.
    """
    from hadpo.train.logps import image_features, packed_logps, reference_model

    info = objective.ctx
    conditional = bool(getattr(objective, "conditional", False))
    key = cache_key(objective, cfg, len(examples))
    folder = Path(cfg.output_dir) / "ref_cache" / key
    merged = folder / "ref_logps.json"
    if not merged.is_file():
        shard_path = folder / f"shard-{info.rank}.json"
        if not shard_path.is_file():
            mine = list(range(info.rank, len(examples), info.world_size))
            values: dict[int, list[float]] = {}
            objective.model.eval()
            with torch.no_grad(), reference_model(objective.model) as ref:
                for start in range(0, len(mine), cfg.per_device_batch_size):
                    idx = mine[start : start + cfg.per_device_batch_size]
                    batch = objective.collate([examples[i] for i in idx])["packed"]
                    sums = packed_logps(ref, batch, image_features(ref, batch.pixel_values)).sums.tolist()
                    for k, i in enumerate(idx):
                        # Conditional rows follow the pair rows: row len(idx) + k is pair k's chosen, corrupted.
                        values[i] = sums[k] + ([sums[len(idx) + k][0]] if conditional else [])
            objective.model.train()
            atomic_write_json(shard_path, {str(k): v for k, v in values.items()})
        barrier(info)
        if info.is_main:
            table: dict[str, list[float]] = {}
            for rank in range(info.world_size):
                table.update(read_json(folder / f"shard-{rank}.json"))
            atomic_write_json(merged, {"key": key, "n": len(examples), "logps": table})
        barrier(info)
    data = json.loads(merged.read_text())
    if data["n"] != len(examples):
        raise RuntimeError(f"{merged}: cached for {data['n']} examples, the run has {len(examples)}")
    table = data["logps"]
    return [replace(ex, ref_chosen=row[0], ref_rejected=row[1], ref_corrupted=row[2] if len(row) > 2 else None)
            for ex, row in ((ex, table[str(i)]) for i, ex in enumerate(examples))]
