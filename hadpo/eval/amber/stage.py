"""Stage 06, AMBER: describe AMBER's images and answer its yes/no questions, then score both without an LLM.

Writes, in ``run_dir``: ``generative.jsonl`` (the descriptions, appended batch by batch, resumed, their decoding
protocol beside them), ``discriminative/answers.jsonl`` and ``protocol.json`` (greedy answers, each image encoded
once, resumed; another protocol is refused), ``scores.jsonl`` (one record per query: the generative counts, or the
truth and the reading of the answer; the dashboard's bootstrap and paired tests read it) and ``metrics.json``
(:mod:`hadpo.eval.amber.metrics`: CHAIR, Cover, Hal, Cog; accuracy, precision, recall and F1 per dimension; the
AMBER score; the protocol). Under ``torchrun`` every rank answers its shard and rank 0 scores.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hadpo.data.amber_files import (
    QUERY_FILES,
    AmberAnnotation,
    AmberQuery,
    check_amber,
    read_amber_annotations,
    read_amber_association,
    read_amber_queries,
    read_safe_words,
)
from hadpo.data.images import ImageRef, preflight_images
from hadpo.data.layout import DataLayout
from hadpo.data.pope_files import PopeQuestion
from hadpo.distributed import DistContext, init_distributed, teardown
from hadpo.errors import DataError
from hadpo.eval.amber.config import AmberConfig
from hadpo.eval.amber.metrics import (
    DIMENSION_NAMES,
    Vocabulary,
    amber_score,
    discriminative_metrics,
    generative_metrics,
    read_yes_no,
    score_generative,
)
from hadpo.io import append_jsonl, atomic_write_json, atomic_write_jsonl, read_json, sha256_file
from hadpo.manifest import environment
from hadpo.rerun import set_aside
from hadpo.runlock import run_lock

NOTEBOOK = "06_amber"
Config = AmberConfig

GENERATIVE_FILE = "generative.jsonl"
DISCRIMINATIVE_DIR = "discriminative"
SCORES_FILE = "scores.jsonl"
METRICS_FILE = "metrics.json"

__all__ = ["NOTEBOOK", "Config", "results_table", "run", "run_amber"]


@dataclass(frozen=True)
class AmberInputs:
    """The release's files, read and checked, and the queries this evaluation asks."""

    files: dict[str, Path]
    queries: list[AmberQuery]
    annotations: dict[int, AmberAnnotation]
    vocabulary: Vocabulary
    images_dir: Path

    def of(self, generative: bool) -> list[AmberQuery]:
        return [q for q in self.queries if self.annotations[q.query_id].generative == generative]


def amber_files(cfg: AmberConfig) -> dict[str, Path]:
    """The query, annotation, association and safe-word files the config reads."""
    data = DataLayout(cfg.data_root).amber_data
    return {"queries": Path(cfg.queries) if cfg.queries else data / "query" / QUERY_FILES["all"],
            "annotations": data / "annotations.json", "association": data / "relation.json",
            "safe_words": data / "safe_words.txt"}


def load_inputs(cfg: AmberConfig) -> AmberInputs:
    """Read and check the files; keep the evaluation's queries (the first ``limit`` of each kind)."""
    files = amber_files(cfg)
    queries = read_amber_queries(files["queries"])
    annotations = read_amber_annotations(files["annotations"])
    association = read_amber_association(files["association"])
    check_amber(queries, annotations, association, annotation_file=files["annotations"],
                association_file=files["association"])
    kinds = {"all": (True, False), "generative": (True,), "discriminative": (False,)}[cfg.evaluation]
    chosen: list[AmberQuery] = []
    taken: dict[str, int] = {}
    for query in queries:
        annotation = annotations[query.query_id]
        if annotation.generative not in kinds:
            continue
        if cfg.limit is not None and taken.get(annotation.dimension, 0) >= cfg.limit:
            continue
        taken[annotation.dimension] = taken.get(annotation.dimension, 0) + 1
        chosen.append(query)
    if not chosen:
        raise DataError(files["queries"], f"no {cfg.evaluation} query to evaluate")
    images_dir = Path(cfg.images_dir) if cfg.images_dir else DataLayout(cfg.data_root).amber_images
    return AmberInputs(files, chosen, annotations, Vocabulary(association, read_safe_words(files["safe_words"])),
                       images_dir)


def _read_responses(path: str | Path) -> dict[int, str]:
    data = read_json(path)
    if not isinstance(data, list):
        raise DataError(path, f"expected AMBER's inference format, a list of {{id, response}}, got "
                        f"{type(data).__name__}")
    out = {}
    for index, record in enumerate(data):
        if not isinstance(record, dict) or not isinstance(record.get("id"), int) \
                or not isinstance(record.get("response"), str):
            raise DataError(path, "expected {'id': <int>, 'response': <str>}", record=index)
        out[record["id"]] = record["response"]
    return out


def answer_protocol(cfg: AmberConfig, ctx: DistContext, queries_file: Path) -> dict[str, Any]:
    """What decides the yes/no answers (compared on resume; the environment and world size are not)."""
    from hadpo.eval.pope.infer import _adapter_hashes

    spec = cfg.model_spec
    return {"queries_sha256": sha256_file(queries_file), "model": spec.model, "adapter": spec.adapter,
            "adapter_sha256": _adapter_hashes(spec.adapter), "merge_adapter": spec.merge_adapter,
            "conversation": cfg.prompt_spec.template, "image_mode": cfg.prompt_spec.image_mode,
            "decoding": {"strategy": "greedy", "max_new_tokens": cfg.answer_max_new_tokens,
                         "skip_special_tokens": True},
            "batch_size": cfg.decoding.batch_size, "dtype": spec.dtype, "device_type": ctx.device.split(":")[0],
            "world_size": ctx.world_size, "environment": environment()}


class _Model:
    """The model, loaded on first use (a rerun with every answer on hand loads nothing)."""

    def __init__(self, cfg: AmberConfig, ctx: DistContext) -> None:
        self.cfg, self.ctx, self.loaded = cfg, ctx, None

    def get(self) -> Any:
        if self.loaded is None:
            from hadpo.models.loading import load_model

            self.loaded = load_model(self.cfg.model_spec.replace(device=self.ctx.device))
        return self.loaded


def _describe(cfg: AmberConfig, inputs: AmberInputs, ctx: DistContext, model: _Model) -> dict[int, str]:
    from hadpo.models.describe import describe_images, read_descriptions

    queries = inputs.of(generative=True)
    out = Path(cfg.run_dir) / GENERATIVE_FILE
    if queries and any(str(q.query_id) not in read_descriptions(out) for q in queries):
        describe_images([(str(q.query_id), inputs.images_dir / q.image, q.query) for q in queries], out,
                        model.get(), cfg.decoding, cfg.prompt_spec, progress=cfg.progress, ctx=ctx,
                        desc="AMBER describe")
    ctx.barrier()
    done = read_descriptions(out)
    return {q.query_id: done[str(q.query_id)]["response"] for q in queries}


def _image_loader(inputs: AmberInputs) -> Callable[[PopeQuestion], Any]:
    from PIL import Image

    def load(question: PopeQuestion) -> Any:
        path = inputs.images_dir / question.image
        try:
            with Image.open(path) as img:
                img.load()
                return img
        except OSError as exc:
            raise DataError(inputs.files["queries"], f"cannot read image {path}: {exc}", record=question.question_id,
                            field="image") from None

    return load


def _answer(cfg: AmberConfig, inputs: AmberInputs, ctx: DistContext, model: _Model) -> dict[int, str]:
    """Greedy yes/no answers to the discriminative queries (resumed, sharded under torchrun)."""
    from hadpo.eval.pope.infer import (
        PROTOCOL_FILE,
        PopeAnswerer,
        answer_questions,
        answered_ids,
        check_protocol,
        group_by_image,
        merge_answers,
        shard,
    )
    from hadpo.io import read_jsonl_tolerant
    from hadpo.progress import progress

    queries = inputs.of(generative=False)
    folder = Path(cfg.run_dir) / DISCRIMINATIVE_DIR
    if queries:
        protocol = answer_protocol(cfg, ctx, inputs.files["queries"])
        done = answered_ids(folder)
        if done:
            check_protocol(folder / PROTOCOL_FILE, protocol)
        ctx.barrier()
        if ctx.is_main and (not done or not (folder / PROTOCOL_FILE).is_file()):
            atomic_write_json(folder / PROTOCOL_FILE, protocol)
        pending = [PopeQuestion(q.query_id, q.image, q.query, None) for q in queries if q.query_id not in done]
        mine = [q for group in shard(group_by_image(pending), ctx.rank, ctx.world_size) for q in group]
        out = folder / ("answers.jsonl" if ctx.world_size == 1 else f"answers.rank{ctx.rank}.jsonl")
        if mine:
            answerer = PopeAnswerer(model.get(), image_mode=cfg.prompt_spec.image_mode,
                                    max_new_tokens=cfg.answer_max_new_tokens, template=cfg.prompt_spec.template)
            with progress(len(mine), "AMBER answer", unit="questions", enabled=cfg.progress and ctx.is_main) as bar:
                answer_questions(answerer, mine, _image_loader(inputs), batch_size=cfg.decoding.batch_size,
                                 on_batch=lambda records: append_jsonl(out, records), progress=bar)
        ctx.barrier()
        if ctx.is_main:
            merge_answers(folder)
        ctx.barrier()
    answers = {r["question_id"]: r["answer"] for r in read_jsonl_tolerant(folder / "answers.jsonl")}
    return {q.query_id: answers[q.query_id] for q in queries}


def _preflight(cfg: AmberConfig, inputs: AmberInputs, ctx: DistContext) -> None:
    """Every image a query still to be answered reads must decode, before any model loads."""
    from hadpo.eval.pope.infer import answered_ids
    from hadpo.models.describe import read_descriptions

    described = read_descriptions(Path(cfg.run_dir) / GENERATIVE_FILE)
    answered = answered_ids(Path(cfg.run_dir) / DISCRIMINATIVE_DIR)
    refs = [ImageRef(str(inputs.images_dir / q.image), record=q.query_id, field="image",
                     file=str(inputs.files["queries"]))
            for q in inputs.queries if str(q.query_id) not in described and q.query_id not in answered]
    preflight_images(refs, progress=cfg.progress and ctx.is_main, desc="check AMBER images")


def score(cfg: AmberConfig, inputs: AmberInputs, responses: dict[int, str]) -> dict[str, Any]:
    """Score every query's response; write ``scores.jsonl`` and ``metrics.json``; return the metrics."""
    run_dir = Path(cfg.run_dir)
    records: list[dict[str, Any]] = []
    generative = []
    for query in inputs.queries:
        annotation = inputs.annotations[query.query_id]
        text = responses[query.query_id]
        if annotation.generative:
            item = score_generative(query.query_id, text, annotation, inputs.vocabulary)
            generative.append(item)
            records.append(item.record())
        else:
            records.append({"id": query.query_id, "kind": "discriminative", "dimension": annotation.dimension,
                            "type": annotation.kind, "truth": annotation.truth,
                            "prediction": read_yes_no(text, cfg.rule)})
    atomic_write_jsonl(run_dir / SCORES_FILE, records)
    discriminative = [r for r in records if r["kind"] == "discriminative"]
    metrics: dict[str, Any] = {
        "generative": generative_metrics(generative) if generative else None,
        "discriminative": discriminative_metrics(discriminative) if discriminative else None,
    }
    metrics["amber_score"] = (amber_score(metrics["generative"]["chair"], metrics["discriminative"]["all"]["f1"])
                              if generative and discriminative else None)
    metrics.update(
        complete=True,
        model_base=cfg.model_spec.model if cfg.responses is None else None,
        model_path=cfg.model_spec.adapter if cfg.responses is None else None,
        protocol={
            "data": {name: {"path": str(path), "sha256": sha256_file(path)} for name, path in inputs.files.items()},
            "images_dir": str(inputs.images_dir),
            "queries": len(inputs.queries),
            "rule": cfg.rule,
            "responses": {"path": cfg.responses, "sha256": sha256_file(cfg.responses)} if cfg.responses else None,
            "config": cfg.to_dict(),
            "environment": environment(),
        },
    )
    atomic_write_json(run_dir / METRICS_FILE, metrics)
    return metrics


def run_amber(cfg: AmberConfig) -> dict[str, Any]:
    """Describe and answer (or read ``cfg.responses``), then score; returns the metrics written to ``metrics.json``.

    Resumable: described images and answered questions are skipped, and the model loads only when something is
    left. ``cfg.rerun.force`` first moves the run folder's results into ``<run_dir>/replaced-<UTC time>/``. Under
    ``torchrun`` every rank calls it and returns the metrics. The run folder is locked for the whole call.
    """
    with run_lock(cfg.run_dir, what="AMBER", main_rank_only=True):
        ctx = init_distributed(cfg.model_spec.device)
        try:
            if cfg.rerun.force and ctx.is_main:
                set_aside(cfg.run_dir, keep=(cfg.responses, cfg.queries))
            ctx.barrier()
            inputs = load_inputs(cfg)
            if cfg.responses:
                given = _read_responses(cfg.responses)
                missing = [q.query_id for q in inputs.queries if q.query_id not in given]
                if missing:
                    raise DataError(cfg.responses, f"no response for {len(missing)} quer(ies)", record=missing[0])
                responses = {q.query_id: given[q.query_id] for q in inputs.queries}
            else:
                _preflight(cfg, inputs, ctx)
                model = _Model(cfg, ctx)
                try:
                    responses = {**_describe(cfg, inputs, ctx, model), **_answer(cfg, inputs, ctx, model)}
                finally:
                    del model
                    gc.collect()
            if ctx.is_main:
                score(cfg, inputs, responses)
            ctx.barrier()
            return read_json(Path(cfg.run_dir) / METRICS_FILE)
        finally:
            if ctx.created:
                teardown()


#: The stage's entry point (notebook 06): :func:`run_amber`.
run = run_amber


def table_rows(metrics: dict[str, Any]) -> dict[str, Any]:
    """The run's AMBER as one row: the generative measures, F1 per dimension and overall, the AMBER score (%)."""
    row: dict[str, Any] = {}
    generative = metrics.get("generative")
    if generative:
        row.update({"CHAIR (%)": 100 * generative["chair"], "Cover (%)": 100 * generative["cover"],
                    "Hal (%)": 100 * generative["hal"], "Cog (%)": 100 * generative["cog"]})
    discriminative = metrics.get("discriminative")
    if discriminative:
        for dimension in (*DIMENSION_NAMES, "all"):
            if dimension in discriminative:
                label = "F1" if dimension == "all" else f"F1 {dimension}"
                row[f"{label} (%)"] = 100 * discriminative[dimension]["f1"]
        row["Acc (%)"] = 100 * discriminative["all"]["accuracy"]
    if metrics.get("amber_score") is not None:
        row["AMBER score"] = metrics["amber_score"]
    return row


def results_table(cfg: AmberConfig, results: dict[str, Any]):
    """The run's AMBER as a one-row table naming the model and its adapter (or the responses file scored)."""
    from hadpo.display import shown_value, table

    spec = cfg.model_spec
    if cfg.responses is not None:
        row: dict[str, Any] = {"Responses": shown_value(cfg.responses)}
    else:
        row = {"Model": shown_value(spec.model), "Adapter": shown_value(spec.adapter) if spec.adapter else "none"}
    values = table_rows(results)
    row.update(values)
    return table([row], formats=dict.fromkeys(values, "{:.1f}"),
                 caption="Lower is better for CHAIR, Hal and Cog; higher for Cover, F1 and the AMBER score.")

