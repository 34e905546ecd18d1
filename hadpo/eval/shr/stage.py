"""Stage 04, SHR: describe the SHR images, judge each sentence, write ``judgement.json`` and ``metrics.json``.

Every step resumes: descriptions are appended batch by batch and skipped when present, judge replies come
from the on-disk cache on a rerun, and the two result files are written atomically at the end.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hadpo.errors import DataError
from hadpo.eval.shr.config import ShrConfig
from hadpo.eval.shr.inputs import ShrImageInput, load_shr_inputs
from hadpo.eval.shr.judge import ShrItem, judge_descriptions
from hadpo.eval.shr.metrics import shr_metrics, shr_table
from hadpo.io import atomic_write_json, read_json, sha256_file
from hadpo.judge import ChatClient, JudgeContext, build_judge
from hadpo.manifest import environment

NOTEBOOK = "04_shr"
Config = ShrConfig

DESCRIPTIONS_FILE = "descriptions.jsonl"
JUDGEMENT_FILE = "judgement.json"
METRICS_FILE = "metrics.json"

__all__ = ["NOTEBOOK", "Config", "judge_and_score", "results_table", "run", "run_shr"]


def read_responses(path: str | Path) -> dict[str, str]:
    """A ``{image_id: description}`` JSON file; every value must be a string."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise DataError(path, f"expected an object mapping image ids to descriptions, got {type(data).__name__}")
    for image_id, text in data.items():
        if not isinstance(text, str):
            raise DataError(path, f"description must be a string, got {type(text).__name__}", record=image_id)
    return {str(k): v for k, v in data.items()}


def generate_descriptions(cfg: ShrConfig, inputs: Sequence[ShrImageInput]) -> tuple[list[dict[str, Any]], dict]:
    """Describe the SHR images with the configured model; returns the records and the decoding protocol."""
    from hadpo.models.describe import describe_images, describe_protocol
    from hadpo.models.loading import load_model

    loaded = load_model(cfg.model_spec)
    try:
        records = describe_images([(i.image_id, i.image_path) for i in inputs], Path(cfg.run_dir) / DESCRIPTIONS_FILE,
                                  loaded, cfg.decoding, cfg.prompt_spec, progress=cfg.progress)
        protocol = describe_protocol(loaded, cfg.decoding, cfg.prompt_spec)
    finally:
        # The judge step can run for a long time; give the accelerator memory back first.
        del loaded
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return records, protocol


def _data_hashes(cfg: ShrConfig) -> dict[str, str]:
    from hadpo.data.layout import DataLayout

    layout = DataLayout(cfg.data_root)
    files = [layout.shr_val_images, *layout.shr_factual, layout.region_descriptions]
    return {str(p.relative_to(layout.root)): sha256_file(p) for p in files if p.is_file()}


def judge_and_score(
    cfg: ShrConfig,
    inputs: Sequence[ShrImageInput],
    responses: Mapping[str, str],
    client: ChatClient,
    *,
    num_tokens: Mapping[str, int] | None = None,
    describe_protocol: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Judge ``responses`` of ``inputs`` with ``client``, write ``judgement.json`` and ``metrics.json``."""
    run_dir = Path(cfg.run_dir)
    items = [ShrItem(i.image_id, responses[i.image_id], i.region_text, i.facts) for i in inputs]
    judge = cfg.judge_spec
    judgements = judge_descriptions(items, client, num_runs=cfg.num_runs, max_attempts=judge.judge_attempts,
                                    max_prompt_chars=cfg.max_prompt_chars, seed=judge.judge_seed)
    atomic_write_json(run_dir / JUDGEMENT_FILE, judgements)
    metrics = shr_metrics(judgements, {i.image_id: responses[i.image_id] for i in inputs}, num_tokens=num_tokens)
    metrics["model_base"] = cfg.model_spec.model if cfg.responses is None else None
    metrics["model_path"] = cfg.model_spec.adapter if cfg.responses is None else None
    metrics["protocol"] = {
        "describe": dict(describe_protocol) if describe_protocol is not None else None,
        "responses": {"path": cfg.responses, "sha256": sha256_file(cfg.responses)} if cfg.responses else None,
        "judge": client.protocol(),
        "judging": {"num_runs": cfg.num_runs, "judge_attempts": judge.judge_attempts,
                    "max_prompt_chars": cfg.max_prompt_chars, "judge_seed": judge.judge_seed},
        "data": {"data_root": cfg.data_root, "limit": cfg.limit, "sha256": _data_hashes(cfg)},
        "config": cfg.to_dict(),
        "environment": environment(),
    }
    atomic_write_json(run_dir / METRICS_FILE, metrics)
    return metrics


def run_shr(cfg: ShrConfig) -> dict[str, Any]:
    """Describe (or read ``cfg.responses``), judge, score; returns the metrics written to ``metrics.json``."""
    inputs = load_shr_inputs(cfg.data_root, limit=cfg.limit)
    if not inputs:
        raise DataError(Path(cfg.data_root) / "shr", "no SHR images to evaluate")
    num_tokens: dict[str, int] | None = None
    describe_proto = None
    if cfg.responses:
        responses = read_responses(cfg.responses)
        missing = [i.image_id for i in inputs if i.image_id not in responses]
        if missing:
            raise DataError(cfg.responses, f"no description for {len(missing)} SHR image(s)", record=missing[0])
    # The judge first: a missing key or a bad setting stops the run before any description is generated.
    client = build_judge(cfg.judge_spec, JudgeContext(task="shr", data_root=cfg.data_root, run_dir=cfg.run_dir,
                                                      progress=cfg.progress))
    try:
        if not cfg.responses:
            records, describe_proto = generate_descriptions(cfg, inputs)
            responses = {str(r["image_id"]): r["response"] for r in records}
            num_tokens = {str(r["image_id"]): int(r["num_tokens"]) for r in records if "num_tokens" in r}
        return judge_and_score(cfg, inputs, responses, client, num_tokens=num_tokens,
                               describe_protocol=describe_proto)
    finally:
        close = getattr(client, "close", None)
        if close is not None:
            close()


#: The stage's entry point (notebook 04): :func:`run_shr`.
run = run_shr


def results_table(cfg: ShrConfig, results: dict[str, Any]):
    """The run's SHR metrics as a one-row table named after the model (the adapter when there is one)."""
    return shr_table({cfg.model_spec.adapter or cfg.model_spec.model: results})
