"""Stage 07, MMHal-Bench: answer its questions, have the judge rate every answer 0–6, write the score.

Writes, in ``run_dir``: ``answers.jsonl`` (appended batch by batch, resumed, its decoding protocol beside it),
``judgement.json`` (each question's status, rating, reply and attempts), ``scores.jsonl`` (one record per question:
its type and rating; the dashboard's bootstrap and sign test read it) and ``metrics.json`` (the score overall and per
type, the hallucination rate, the judge's requests and faults, the protocol). As for SHR, the judge is checked first:
its template is read and, when some question still needs judging, one probe request tests the key, the model and the
endpoint before the first answer is generated. A judgement with more unjudged questions than ``max_unjudged`` fails
(:class:`~hadpo.errors.JudgeIncomplete`) after writing its metrics marked ``"complete": false``; below it, a warning.
Under ``torchrun`` every rank answers its shard; rank 0 judges and scores.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hadpo.data.images import preflight_images
from hadpo.data.layout import DataLayout
from hadpo.data.mmhal_files import MmhalItem, image_refs, read_mmhal
from hadpo.data.mmhal_files import image_path as local_image
from hadpo.distributed import DistContext, init_distributed, teardown
from hadpo.errors import DataError, JudgeIncomplete, ParamsError
from hadpo.eval.mmhal.config import MmhalConfig
from hadpo.eval.mmhal.judge import MmhalProtocol, judge_answers, judge_report, judge_work_left
from hadpo.eval.mmhal.metrics import mmhal_metrics
from hadpo.eval.mmhal.prompt import MmhalPrompt
from hadpo.io import atomic_write_json, atomic_write_jsonl, read_json, sha256_file
from hadpo.judge import JudgeContext, build_judge
from hadpo.manifest import environment
from hadpo.rerun import set_aside
from hadpo.runlock import run_lock

NOTEBOOK = "07_mmhal"
Config = MmhalConfig

ANSWERS_FILE = "answers.jsonl"
JUDGEMENT_FILE = "judgement.json"
SCORES_FILE = "scores.jsonl"
METRICS_FILE = "metrics.json"

__all__ = ["NOTEBOOK", "Config", "results_table", "run", "run_mmhal"]


def question_file(cfg: MmhalConfig) -> Path:
    """The question file the config reads."""
    return Path(cfg.questions) if cfg.questions else DataLayout(cfg.data_root).mmhal_questions


def images_folder(cfg: MmhalConfig) -> Path:
    """The image folder the config reads: ``images_dir``, else MMHal-Bench/images under the data root."""
    return Path(cfg.images_dir) if cfg.images_dir else DataLayout(cfg.data_root).mmhal_images


def image_path(cfg: MmhalConfig, item: MmhalItem) -> Path:
    """Where an item's image lies: the image folder / the last component of its image_src."""
    return local_image(item, images_folder(cfg))


def load_items(cfg: MmhalConfig) -> list[MmhalItem]:
    """The questions to evaluate: the question file's, the first ``limit`` of them when set."""
    items = read_mmhal(question_file(cfg))
    return items if cfg.limit is None else items[: cfg.limit]


def mmhal_protocol(cfg: MmhalConfig) -> MmhalProtocol:
    """The judging protocol the config asks for (reads and checks a ``judge_prompt`` template file)."""
    template = MmhalPrompt.from_file(cfg.judge_prompt) if cfg.judge_prompt else MmhalPrompt.kit()
    return MmhalProtocol(template=template, max_attempts=cfg.judge_spec.judge_attempts, seed=cfg.judge_spec.judge_seed)


def _answers_on_file(cfg: MmhalConfig, items: Sequence[MmhalItem]) -> dict[str, dict[str, Any]]:
    """The answers already in ``answers.jsonl``, by item id, refused when made for another question or under other
    settings than the config's.

    :func:`~hadpo.models.describe.describe_images` makes the same check when it has answers to add; this one also
    covers a rerun with nothing left to generate, which never loads the model (an adapter's weights are compared
    by path here, by hash there).
    """
    from hadpo.models.describe import decoding_record, protocol_path, read_descriptions

    out = Path(cfg.run_dir) / ANSWERS_FILE
    done = read_descriptions(out)
    for item in items:
        record = done.get(str(item.index))
        if record is not None and record.get("instruction", item.question) != item.question:
            raise ParamsError(f"{out}: question {item.index} was answered as {record.get('instruction')!r}, the "
                              f"question file now asks {item.question!r}; use another run_dir or force")
    proto = protocol_path(out)
    if done and proto.is_file():
        spec = cfg.model_spec
        now = {"model": spec.model, "adapter": str(Path(spec.adapter).expanduser()) if spec.adapter else None,
               "dtype": spec.dtype, "template": cfg.prompt_spec.template, "image_mode": cfg.prompt_spec.image_mode,
               "decoding": decoding_record(cfg.decoding)}
        previous = read_json(proto)
        for key, value in now.items():
            if previous.get(key) != value:
                raise ParamsError(f"{proto}: the answers on file were made with {key}={previous.get(key)!r}, now "
                                  f"{value!r}; use another run_dir or force")
    return done


def _recorded_answers(cfg: MmhalConfig, items: Sequence[MmhalItem]) -> dict[int, str] | None:
    """Every item's answer when all are on hand already (a responses file, or a finished answering step)."""
    if cfg.responses:
        return _given_answers(cfg, items)
    done = _answers_on_file(cfg, items)
    if all(str(i.index) in done for i in items):
        return {i.index: done[str(i.index)]["response"] for i in items}
    return None


def _given_answers(cfg: MmhalConfig, items: Sequence[MmhalItem]) -> dict[int, str]:
    """The answers of a filled question file (``responses``), checked against the question file item by item."""
    assert cfg.responses is not None
    filled = read_mmhal(cfg.responses)
    if len(filled) < len(items):
        raise DataError(cfg.responses, f"{len(filled)} question(s), but {question_file(cfg)} has {len(items)} to "
                        "judge; the filled file must keep every question, in order")
    out = {}
    for item, answered in zip(items, filled, strict=False):
        if answered.question != item.question:
            raise DataError(cfg.responses, f"question differs from the question file's ({item.question!r}); the "
                            "filled file must keep every question, in order", record=item.index, field="question")
        if answered.model_answer is None:
            raise DataError(cfg.responses, "model_answer is empty (as in the template): nothing to judge",
                            record=item.index, field="model_answer")
        out[item.index] = answered.model_answer
    return out


def _images_to_answer(cfg: MmhalConfig, items: Sequence[MmhalItem]) -> list[MmhalItem]:
    """The items without an answer in ``answers.jsonl`` yet (their images are read by the answering step)."""
    from hadpo.models.describe import read_descriptions

    done = read_descriptions(Path(cfg.run_dir) / ANSWERS_FILE)
    return [i for i in items if str(i.index) not in done]


def _answer(cfg: MmhalConfig, items: Sequence[MmhalItem], ctx: DistContext) -> tuple[dict[int, str], dict | None]:
    """Every item's answer (generated where missing) and the decoding protocol."""
    from hadpo.models.describe import describe_images, protocol_path, read_descriptions

    out = Path(cfg.run_dir) / ANSWERS_FILE
    done = _answers_on_file(cfg, items)
    if any(str(i.index) not in done for i in items):
        from hadpo.models.loading import load_model

        loaded = load_model(cfg.model_spec.replace(device=ctx.device))
        try:
            describe_images([(str(i.index), image_path(cfg, i), i.question) for i in items], out, loaded,
                            cfg.decoding, cfg.prompt_spec, progress=cfg.progress, ctx=ctx, desc="MMHal answer")
        finally:
            del loaded
            gc.collect()
    ctx.barrier()
    done = read_descriptions(out)
    proto = protocol_path(out)
    return {i.index: done[str(i.index)]["response"] for i in items}, (read_json(proto) if proto.is_file() else None)


def judge_and_score(cfg: MmhalConfig, items: Sequence[MmhalItem], answers: dict[int, str], client: Any, *,
                    protocol: MmhalProtocol, describe_protocol: dict | None = None) -> dict[str, Any]:
    """Judge ``answers``, write ``judgement.json``, ``scores.jsonl`` and ``metrics.json``; returns the metrics.

    Raises :class:`~hadpo.errors.JudgeIncomplete` (after writing them, the metrics marked incomplete) when more than
    ``max_unjudged`` of the questions stayed unjudged.
    """
    run_dir = Path(cfg.run_dir)
    records = judge_answers(items, answers, client, protocol)
    atomic_write_json(run_dir / JUDGEMENT_FILE, records)
    atomic_write_jsonl(run_dir / SCORES_FILE, ({"id": k, "question_type": r["question_type"], "rating": r["rating"],
                                               "status": r["status"]} for k, r in records.items()))
    metrics = mmhal_metrics(records)
    report = judge_report(records, client.faults())
    share = report["unjudged_questions"] / len(records) if records else 0.0
    metrics.update(
        complete=report["unjudged_questions"] == 0,
        unjudged_share=round(share, 4),
        max_unjudged=cfg.max_unjudged,
        judge=report,
        model_base=cfg.model_spec.model if cfg.responses is None else None,
        model_path=cfg.model_spec.adapter if cfg.responses is None else None,
        protocol={
            "describe": describe_protocol,
            "responses": {"path": cfg.responses, "sha256": sha256_file(cfg.responses)} if cfg.responses else None,
            "judge": client.protocol(),
            "judging": protocol.record(),
            "data": {"questions": {"path": str(question_file(cfg)), "sha256": sha256_file(question_file(cfg))},
                     "images_dir": str(images_folder(cfg)), "limit": cfg.limit},
            "config": cfg.to_dict(),
            "environment": environment(),
        },
    )
    atomic_write_json(run_dir / METRICS_FILE, metrics)
    if report["unjudged_questions"]:
        first = "; ".join(f"question {u['question']}: {u['error']}" for u in report["first_unjudged"])
        message = (f"{report['unjudged_questions']} of {len(records)} questions unjudged (share {share:.3f}, "
                   f"max_unjudged {cfg.max_unjudged:g}); first: {first}")
        if share > cfg.max_unjudged:
            raise JudgeIncomplete(f"MMHal-Bench judgement incomplete: {message}; {run_dir / METRICS_FILE} is written "
                                  "marked incomplete; rerun to ask the judge again for exactly these questions")
        print(f"warning: MMHal-Bench judgement incomplete but within max_unjudged: {message}", file=sys.stderr)
    return metrics


def run_mmhal(cfg: MmhalConfig) -> dict[str, Any]:
    """Answer (or read ``cfg.responses``), judge, score; returns the metrics written to ``metrics.json``.

    With ``cfg.rerun.force`` the run folder's earlier results (answers, judgements, metrics, a judge cache kept
    there) are first moved into ``<run_dir>/replaced-<UTC time>/``. The run folder is locked for the whole call.
    """
    with run_lock(cfg.run_dir, what="MMHal-Bench", main_rank_only=True):
        ctx = init_distributed(cfg.model_spec.device)
        try:
            if cfg.rerun.force and ctx.is_main:
                set_aside(cfg.run_dir, keep=(cfg.responses, cfg.judge_prompt, cfg.questions))
            ctx.barrier()
            items = load_items(cfg)
            protocol = mmhal_protocol(cfg)  # a bad template file stops the run before anything is spent
            if not cfg.responses:
                # Pre-flight, before the judge is asked or the model loads: every image still to answer decodes.
                preflight_images(image_refs(_images_to_answer(cfg, items), images_folder(cfg), question_file(cfg)),
                                 progress=cfg.progress and ctx.is_main, desc="check MMHal-Bench images")
            client = None
            if ctx.is_main:
                # The judge first: a missing key, a rejected key or an unknown model stops the run before any
                # answer is generated.
                client = build_judge(cfg.judge_spec, JudgeContext(task="mmhal", data_root=cfg.data_root,
                                                                  run_dir=cfg.run_dir, progress=cfg.progress))
            try:
                if client is not None:
                    known = _recorded_answers(cfg, items)
                    if known is None or judge_work_left(items, known, client, protocol):
                        client.probe()
                describe_proto = None
                if cfg.responses:
                    answers = _given_answers(cfg, items)
                else:
                    answers, describe_proto = _answer(cfg, items, ctx)
                if client is not None:
                    judge_and_score(cfg, items, answers, client, protocol=protocol, describe_protocol=describe_proto)
            finally:
                close = getattr(client, "close", None)
                if close is not None:
                    close()
            ctx.barrier()
            return read_json(Path(cfg.run_dir) / METRICS_FILE)
        finally:
            if ctx.created:
                teardown()


#: The stage's entry point (notebook 07): :func:`run_mmhal`.
run = run_mmhal


def table_row(metrics: dict[str, Any]) -> dict[str, Any]:
    """The run's MMHal-Bench as one row: score, hallucination rate (%), counts, the score per question type."""
    row: dict[str, Any] = {"Score (0-6)": metrics["score"], "Hallucination rate (%)":
                           None if metrics["hallucination_rate"] is None else 100 * metrics["hallucination_rate"],
                           "Judged": metrics["judged"], "Unjudged": metrics["unjudged"]}
    row.update({kind: value for kind, value in metrics["score_by_type"].items()})
    return row


def results_table(cfg: MmhalConfig, results: dict[str, Any]):
    """The run's MMHal-Bench as a one-row table naming the model and its adapter (or the responses file judged)."""
    from hadpo.display import table

    row: dict[str, Any] = cfg.model_spec.results_cells(cfg.responses)
    values = table_row(results)
    row.update(values)
    formats = {k: "{:.2f}" for k in values}
    formats.update({"Hallucination rate (%)": "{:.1f}", "Judged": "{:d}", "Unjudged": "{:d}"})
    return table([row], formats=formats, caption="Score: mean rating 0–6 (higher is better), overall and per question "
                 "type; hallucination rate: answers rated below 3.")
