"""Stage 06, AMBER: describe AMBER's images and answer its yes/no questions, then score both without an LLM.

Writes, in ``run_dir``:

* ``generative.jsonl`` — the descriptions, each asked its query's own text ("Describe this image."), appended batch
  by batch and resumed; the decoding protocol beside it in ``generative.protocol.json`` (another is refused);
* ``discriminative/answers.jsonl`` and ``discriminative/protocol.json`` — greedy yes/no answers made by POPE's
  answering (:mod:`hadpo.eval.pope.infer`: each image encoded once, left-padded batches), resumed; another protocol,
  or a question whose text changed, is refused;
* ``scores.jsonl`` — one record per query: the generative counts, or the truth and the reading of the answer (the
  dashboard's bootstrap and paired tests read it);
* ``metrics.json`` — :mod:`hadpo.eval.amber.metrics`: CHAIR, Cover, Hal, Cog; accuracy, precision, recall and F1
  over all questions, per dimension and per attribute kind; the AMBER score; the protocol.

Under ``torchrun`` every rank describes and answers its shard, rank 0 merges and scores. A responses file in the
reference's input format is scored with ``responses`` (no model is loaded).
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hadpo.data.amber_files import (
    AmberAnnotation,
    AmberQuery,
    check_amber,
    read_amber_annotations,
    read_amber_association,
    read_amber_queries,
    read_amber_responses,
    read_safe_words,
    release_files,
)
from hadpo.data.images import ImageRef, preflight_images
from hadpo.data.layout import DataLayout
from hadpo.data.pope_files import PopeQuestion
from hadpo.distributed import DistContext, init_distributed, teardown
from hadpo.errors import DataError
from hadpo.eval.amber.config import AmberConfig
from hadpo.eval.amber.metrics import (
    amber_score,
    discriminative_metrics,
    generative_metrics,
    read_yes_no,
    score_generative,
    table_row,
)
from hadpo.eval.amber.words import Vocabulary
from hadpo.io import append_jsonl, atomic_write_json, atomic_write_jsonl, read_json, read_jsonl_tolerant, sha256_file
from hadpo.manifest import environment
from hadpo.rerun import set_aside
from hadpo.runlock import run_lock

NOTEBOOK = "06_amber"
Config = AmberConfig

GENERATIVE_FILE = "generative.jsonl"
DISCRIMINATIVE_DIR = "discriminative"
ANSWERS_FILE = "answers.jsonl"
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
        """The generative (or the discriminative) queries asked, in file order."""
        return [q for q in self.queries if self.annotations[q.query_id].generative == generative]


def amber_files(cfg: AmberConfig) -> dict[str, Path]:
    """The query, annotation, association and safe-word files the config reads."""
    files = release_files(DataLayout(cfg.data_root).amber_data, cfg.evaluation)
    if cfg.queries:
        files["queries"] = Path(cfg.queries)
    return files


def load_inputs(cfg: AmberConfig) -> AmberInputs:
    """Read and check the files; keep the evaluation's queries (the first ``limit`` of each kind)."""
    files = amber_files(cfg)
    queries = read_amber_queries(files["queries"])
    annotations = read_amber_annotations(files["annotations"])
    association = read_amber_association(files["association"])
    check_amber(queries, annotations, association, annotation_file=files["annotations"],
                association_file=files["association"])
    wanted = {"all": (True, False), "generative": (True,), "discriminative": (False,)}[cfg.evaluation]
    chosen: list[AmberQuery] = []
    taken: dict[str, int] = {}
    for query in queries:
        annotation = annotations[query.query_id]
        if annotation.generative not in wanted:
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
    """Every generative query's description (generated where missing), each asked its query's text."""
    from hadpo.models.describe import describe_images, read_descriptions

    queries = inputs.of(generative=True)
    out = Path(cfg.run_dir) / GENERATIVE_FILE
    if queries and any(str(q.query_id) not in read_descriptions(out) for q in queries):
        describe_images([(q.query_id, inputs.images_dir / q.image, q.query) for q in queries], out, model.get(),
                        cfg.decoding, cfg.prompt_spec, progress=cfg.progress, ctx=ctx, desc="AMBER describe")
    ctx.barrier()
    done = read_descriptions(out)
    return {q.query_id: done[str(q.query_id)]["response"] for q in queries}


def answer_protocol(cfg: AmberConfig, ctx: DistContext, queries_file: Path) -> dict[str, Any]:
    """What decides the yes/no answers, compared on resume (POPE's rule: the environment, the world size and where
    the query file lies are recorded, not compared; each answer's question text is checked on its own)."""
    from hadpo.eval.pope.infer import _adapter_hashes

    spec = cfg.model_spec
    return {"questions_file": str(queries_file), "model": spec.model, "adapter": spec.adapter,
            "adapter_sha256": _adapter_hashes(spec.adapter), "merge_adapter": spec.merge_adapter,
            "conversation": cfg.prompt_spec.template, "prompt_variant": cfg.prompt_variant,
            "image_mode": cfg.prompt_spec.image_mode,
            "decoding": {"strategy": "greedy", "max_new_tokens": cfg.answer_max_new_tokens,
                         "skip_special_tokens": True},
            "batch_size": cfg.decoding.batch_size, "dtype": spec.dtype, "device_type": ctx.device.split(":")[0],
            "attn_implementation": spec.attn_implementation, "world_size": ctx.world_size,
            "environment": environment()}


def _answer_records(folder: Path) -> dict[int, dict[str, Any]]:
    """The answers on hand in ``folder`` (the merged file and any rank files a killed run left)."""
    records: dict[int, dict[str, Any]] = {}
    for path in [folder / ANSWERS_FILE, *sorted(folder.glob("answers.rank*.jsonl"))]:
        for record in read_jsonl_tolerant(path):
            if not isinstance(record, dict) or not isinstance(record.get("question_id"), int) \
                    or not isinstance(record.get("answer"), str):
                raise DataError(path, f"not an answer record: {str(record)[:80]}", field="answer")
            records.setdefault(record["question_id"], record)
    return records


def _check_questions(folder: Path, queries: list[AmberQuery], done: dict[int, dict[str, Any]]) -> None:
    """Refuse answers to a question asked differently (a query file edited or swapped under the same ids)."""
    from hadpo.eval.pope.infer import ProtocolMismatchError

    for query in queries:
        record = done.get(query.query_id)
        if record is not None and record.get("question") != query.query:
            raise ProtocolMismatchError(
                f"{folder / ANSWERS_FILE}: query {query.query_id} was answered as {record.get('question')!r}, now "
                f"asked {query.query!r}; use another run_dir, or set force to start over")


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
    """Greedy answers to the discriminative queries (resumed, sharded by image under torchrun)."""
    from hadpo.eval.pope.infer import (
        PROTOCOL_FILE,
        PopeAnswerer,
        answer_questions,
        check_protocol,
        group_by_image,
        merge_answers,
        shard,
    )
    from hadpo.progress import progress

    queries = inputs.of(generative=False)
    folder = Path(cfg.run_dir) / DISCRIMINATIVE_DIR
    if not queries:
        return {}
    protocol = answer_protocol(cfg, ctx, inputs.files["queries"])
    done = _answer_records(folder)
    # A protocol guards answers; one left by a run that wrote none never blocks. Every rank checks (read-only),
    # so all of them fail together instead of some waiting at a barrier.
    if done:
        check_protocol(folder / PROTOCOL_FILE, protocol)
        _check_questions(folder, queries, done)
    ctx.barrier()  # every rank has read what is done before any appends
    if ctx.is_main and (not done or not (folder / PROTOCOL_FILE).is_file()):
        atomic_write_json(folder / PROTOCOL_FILE, protocol)
    pending = [PopeQuestion(q.query_id, q.image, q.query, None) for q in queries if q.query_id not in done]
    mine = [q for group in shard(group_by_image(pending), ctx.rank, ctx.world_size) for q in group]
    out = folder / (ANSWERS_FILE if ctx.world_size == 1 else f"answers.rank{ctx.rank}.jsonl")
    if mine:
        answerer = PopeAnswerer(model.get(), prompt_variant=cfg.prompt_variant, image_mode=cfg.prompt_spec.image_mode,
                                max_new_tokens=cfg.answer_max_new_tokens, template=cfg.prompt_spec.template)
        with progress(len(mine), "AMBER answer", unit="questions", enabled=cfg.progress and ctx.is_main) as bar:
            answer_questions(answerer, mine, _image_loader(inputs), batch_size=cfg.decoding.batch_size,
                             on_batch=lambda records: append_jsonl(out, records), progress=bar)
    ctx.barrier()
    if ctx.is_main:
        merge_answers(folder)
    ctx.barrier()
    answers = _answer_records(folder)
    return {q.query_id: answers[q.query_id]["answer"] for q in queries}


def _preflight(cfg: AmberConfig, inputs: AmberInputs, ctx: DistContext) -> None:
    """Every image a query still to be described or answered reads must decode, before any model loads."""
    from hadpo.models.describe import read_descriptions

    described = read_descriptions(Path(cfg.run_dir) / GENERATIVE_FILE)
    answered = _answer_records(Path(cfg.run_dir) / DISCRIMINATIVE_DIR)
    refs = [ImageRef(str(inputs.images_dir / q.image), record=q.query_id, field="image",
                     file=str(inputs.files["queries"]))
            for q in inputs.queries if str(q.query_id) not in described and q.query_id not in answered]
    preflight_images(refs, progress=cfg.progress and ctx.is_main, desc="check AMBER images")


def _generated_protocols(cfg: AmberConfig) -> dict[str, Any]:
    """The describe and answer protocols on file (None where the run made no such answers)."""
    from hadpo.eval.pope.infer import PROTOCOL_FILE
    from hadpo.models.describe import protocol_path

    paths = {"describe": protocol_path(Path(cfg.run_dir) / GENERATIVE_FILE),
             "answer": Path(cfg.run_dir) / DISCRIMINATIVE_DIR / PROTOCOL_FILE}
    return {name: read_json(path) if path.is_file() else None for name, path in paths.items()}


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
                            "prediction": read_yes_no(text, cfg.rule), "answer": text})
    atomic_write_jsonl(run_dir / SCORES_FILE, records)
    discriminative = [r for r in records if r["kind"] == "discriminative"]
    gen = generative_metrics(generative) if generative else None
    dis = discriminative_metrics(discriminative) if discriminative else None
    protocols = _generated_protocols(cfg) if cfg.responses is None else {"describe": None, "answer": None}
    metrics: dict[str, Any] = {
        "generative": gen,
        "discriminative": dis,
        # The paper's single number needs both tasks; a run of one of them has none.
        "amber_score": amber_score(gen["chair"], dis["all"]["f1"]) if gen and dis else None,
        "complete": all(q.query_id in responses for q in inputs.queries),
        "model_base": cfg.model_spec.model if cfg.responses is None else None,
        "model_path": cfg.model_spec.adapter if cfg.responses is None else None,
        "protocol": {
            **protocols,
            "responses": {"path": cfg.responses, "sha256": sha256_file(cfg.responses)} if cfg.responses else None,
            "data": {name: {"path": str(path), "sha256": sha256_file(path)} for name, path in inputs.files.items()},
            "images_dir": str(inputs.images_dir),
            "evaluation": cfg.evaluation,
            "limit": cfg.limit,
            "queries": {"generative": len(generative), "discriminative": len(discriminative)},
            "rule": cfg.rule,
            "config": cfg.to_dict(),
            "environment": environment(),
        },
    }
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
                set_aside(cfg.run_dir, keep=(cfg.responses, cfg.queries, cfg.images_dir))
            ctx.barrier()
            inputs = load_inputs(cfg)
            if cfg.responses:
                given = read_amber_responses(cfg.responses)
                missing = [q.query_id for q in inputs.queries if q.query_id not in given]
                if missing:
                    raise DataError(cfg.responses, f"no response to {len(missing)} of the {len(inputs.queries)} "
                                    f"{cfg.evaluation} queries; the first missing is id {missing[0]}")
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


def results_table(cfg: AmberConfig, results: dict[str, Any]):
    """The run's AMBER as a one-row table naming the model and its adapter (or the responses file scored)."""
    from hadpo.display import table

    row: dict[str, Any] = cfg.model_spec.results_cells(cfg.responses)
    values = table_row(results)
    row.update(values)
    return table([row], formats=dict.fromkeys(values, "{:.1f}"),
                 caption="Lower is better for CHAIR, Hal and Cog; higher for Cover, accuracy, F1 (\"no\" the "
                 "positive class) and the AMBER score, (100 − CHAIR + F1) / 2.")
