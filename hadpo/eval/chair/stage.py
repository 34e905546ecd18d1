"""Stage 05, CHAIR: sample COCO images, describe each, count the objects named that are not in the image.

Writes, in ``run_dir``: ``descriptions.jsonl`` (appended batch by batch, resumed; its decoding protocol beside it in
``descriptions.protocol.json``, a rerun under another protocol refused), ``scores.jsonl`` (one record per image:
its mentions, the hallucinated ones, its ground truth and what of it was named; the dashboard's bootstrap and
paired test read it) and ``metrics.json`` (CHAIR_i, CHAIR_s, recall, lengths, with the protocol: the sample's seed
and ids, the annotation and synonym files' hashes, the decoding). Under ``torchrun`` every rank describes its shard
and rank 0 scores. Descriptions made elsewhere are scored with ``responses``.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hadpo.data.images import ImageRef, preflight_images
from hadpo.data.layout import DataLayout
from hadpo.distributed import DistContext, init_distributed, teardown
from hadpo.errors import DataError
from hadpo.eval.chair.config import ChairConfig
from hadpo.eval.chair.inputs import ChairImage, load_chair_images
from hadpo.eval.chair.metrics import TABLE_FORMATS, chair_metrics, score_descriptions, table_row
from hadpo.eval.chair.synonyms import BUILTIN, SynonymTable, load_synonyms
from hadpo.eval.shr.stage import read_responses
from hadpo.io import atomic_write_json, atomic_write_jsonl, read_json, sha256_file
from hadpo.manifest import environment
from hadpo.rerun import set_aside
from hadpo.runlock import run_lock

NOTEBOOK = "05_chair"
Config = ChairConfig

DESCRIPTIONS_FILE = "descriptions.jsonl"
SCORES_FILE = "scores.jsonl"
METRICS_FILE = "metrics.json"

__all__ = ["NOTEBOOK", "Config", "results_table", "run", "run_chair"]


def annotation_files(cfg: ChairConfig) -> tuple[Path, Path, Path]:
    """``(instances, captions, image folder)``: the config's, else the layout's COCO val2014 ones."""
    layout = DataLayout(cfg.data_root)
    return (Path(cfg.instances) if cfg.instances else layout.coco_instances,
            Path(cfg.captions) if cfg.captions else layout.coco_captions,
            Path(cfg.images_dir) if cfg.images_dir else layout.coco_images)


def chair_inputs(cfg: ChairConfig) -> tuple[SynonymTable, list[ChairImage]]:
    """The synonym table and the sampled images with their ground truth."""
    table = load_synonyms(cfg.synonyms or BUILTIN)
    instances, captions, images_dir = annotation_files(cfg)
    return table, load_chair_images(instances, captions, images_dir, table, num_images=cfg.num_images,
                                    seed=cfg.image_seed)


def _describe(cfg: ChairConfig, images: Sequence[ChairImage], ctx: DistContext) -> tuple[dict[str, str], dict | None]:
    """Every sampled image's description (generated where missing) and the decoding protocol."""
    from hadpo.models.describe import describe_images, protocol_path, read_descriptions

    out = Path(cfg.run_dir) / DESCRIPTIONS_FILE
    done = read_descriptions(out)
    pending = [i for i in images if i.image_id not in done]
    if pending:
        # Pre-flight before the model loads: every image still to describe must decode.
        preflight_images([ImageRef(str(i.path), record=i.image_id, field="file_name") for i in pending],
                         progress=cfg.progress and ctx.is_main, desc="check CHAIR images")
        from hadpo.models.loading import load_model

        loaded = load_model(cfg.model_spec.replace(device=ctx.device))
        try:
            describe_images([(i.image_id, i.path) for i in images], out, loaded, cfg.decoding, cfg.prompt_spec,
                            instruction=cfg.instruction, progress=cfg.progress, ctx=ctx, desc="CHAIR describe")
        finally:
            del loaded
            gc.collect()
    ctx.barrier()
    done = read_descriptions(out)
    proto = protocol_path(out)
    return {i.image_id: done[i.image_id]["response"] for i in images}, (read_json(proto) if proto.is_file() else None)


def score(cfg: ChairConfig, table: SynonymTable, images: Sequence[ChairImage], descriptions: dict[str, str],
          describe_protocol: dict | None) -> dict[str, Any]:
    """Score the descriptions; write ``scores.jsonl`` and ``metrics.json``; return the metrics."""
    run_dir = Path(cfg.run_dir)
    items = score_descriptions(descriptions, {i.image_id: i.truth for i in images}, table)
    atomic_write_jsonl(run_dir / SCORES_FILE, (item.record() for item in items))
    instances, captions, images_dir = annotation_files(cfg)
    metrics = chair_metrics(items)
    metrics.update(
        complete=len(items) == len(images),
        model_base=cfg.model_spec.model if cfg.responses is None else None,
        model_path=cfg.model_spec.adapter if cfg.responses is None else None,
        protocol={
            "describe": describe_protocol,
            "responses": {"path": cfg.responses, "sha256": sha256_file(cfg.responses)} if cfg.responses else None,
            "data": {
                "instances": {"path": str(instances), "sha256": sha256_file(instances)},
                "captions": {"path": str(captions), "sha256": sha256_file(captions)},
                "images_dir": str(images_dir),
                "num_images": cfg.num_images,
                "image_seed": cfg.image_seed,
                "image_ids": [i.image_id for i in images],
            },
            "synonyms": {"source": table.source, "categories": len(table.categories), "phrases": len(table.phrases),
                         "sha256": sha256_file(cfg.synonyms) if cfg.synonyms else None},
            "config": cfg.to_dict(),
            "environment": environment(),
        },
    )
    atomic_write_json(run_dir / METRICS_FILE, metrics)
    return metrics


def run_chair(cfg: ChairConfig) -> dict[str, Any]:
    """Describe (or read ``cfg.responses``) and score; returns the metrics written to ``metrics.json``.

    Resumable: described images are skipped and the model loads only when one is left. With ``cfg.rerun.force``
    the run folder's earlier results are first moved into ``<run_dir>/replaced-<UTC time>/``. Under ``torchrun``
    every rank calls it; every rank returns the metrics. The run folder is locked for the whole call.
    """
    with run_lock(cfg.run_dir, what="CHAIR", main_rank_only=True):
        ctx = init_distributed(cfg.model_spec.device)
        try:
            if cfg.rerun.force and ctx.is_main:
                set_aside(cfg.run_dir, keep=(cfg.responses, cfg.synonyms, cfg.instances, cfg.captions))
            ctx.barrier()
            table, images = chair_inputs(cfg)
            if cfg.responses:
                responses = read_responses(cfg.responses)
                missing = [i.image_id for i in images if i.image_id not in responses]
                if missing:
                    raise DataError(cfg.responses, f"no description for {len(missing)} sampled image(s)",
                                    record=missing[0])
                descriptions, protocol = {i.image_id: responses[i.image_id] for i in images}, None
            else:
                descriptions, protocol = _describe(cfg, images, ctx)
            if ctx.is_main:
                score(cfg, table, images, descriptions, protocol)
            ctx.barrier()
            return read_json(Path(cfg.run_dir) / METRICS_FILE)
        finally:
            if ctx.created:
                teardown()


#: The stage's entry point (notebook 05): :func:`run_chair`.
run = run_chair


def results_table(cfg: ChairConfig, results: dict[str, Any]):
    """The run's CHAIR as a one-row table naming the model and its adapter (or the responses file scored)."""
    from hadpo.display import table

    row: dict[str, Any] = cfg.model_spec.results_cells(cfg.responses)
    row.update(table_row(results))
    return table([row], formats=TABLE_FORMATS)
