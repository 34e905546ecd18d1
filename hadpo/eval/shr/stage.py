"""Stage 04, SHR: describe the SHR images, judge each sentence, write ``judgement.json`` and ``metrics.json``.

Every step resumes: descriptions are appended batch by batch and skipped when present, accepted judge replies
come from the on-disk cache on a rerun (finished images cost no request; unjudged ones are asked afresh), and the
two result files are written atomically at the end.

The judge is checked before anything else costs time: its template is read and checked, and, when some image
still needs judging, one probe request tests the key, the model and the endpoint before the first description is
generated. An SHR from a judge that left images unjudged is never reported as if complete: above
``max_unjudged`` the run fails (:class:`~hadpo.errors.JudgeIncomplete`) after writing its metrics marked
``"complete": false``; below it, a warning goes to stderr. ``metrics.json`` records the judge's requests and
faults (``judge``) next to the numbers.
"""

from __future__ import annotations

import gc
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hadpo.data.images import ImageRef, preflight_images
from hadpo.errors import DataError, JudgeIncomplete
from hadpo.eval.shr.config import ShrConfig
from hadpo.eval.shr.inputs import ShrImageInput, load_shr_inputs
from hadpo.eval.shr.judge import (
    SKIPPED,
    UNJUDGED,
    ShrItem,
    ShrProtocol,
    judge_descriptions,
    judge_jobs,
    reply_parser,
    run_variant,
)
from hadpo.eval.shr.metrics import shr_metrics, table_row
from hadpo.eval.shr.prompt import JudgePrompt
from hadpo.io import atomic_write_json, read_json, read_jsonl_tolerant, sha256_file
from hadpo.judge import ChatClient, JudgeContext, build_judge
from hadpo.judge.ask import resume
from hadpo.manifest import environment
from hadpo.rerun import set_aside
from hadpo.runlock import run_lock

NOTEBOOK = "04_shr"
Config = ShrConfig

DESCRIPTIONS_FILE = "descriptions.jsonl"
JUDGEMENT_FILE = "judgement.json"
METRICS_FILE = "metrics.json"

#: Unjudged images listed by name (with their reason) in ``metrics.json`` and in the failure message.
LISTED_UNJUDGED = 5

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


def shr_protocol(cfg: ShrConfig) -> ShrProtocol:
    """The judging protocol the config asks for (reads and checks a ``judge_prompt`` template file)."""
    template = JudgePrompt.from_file(cfg.judge_prompt) if cfg.judge_prompt else JudgePrompt.kit()
    return ShrProtocol(template=template, judge_format=cfg.judge_format, counting=cfg.counting,
                       max_attempts=cfg.judge_spec.judge_attempts, max_prompt_chars=cfg.max_prompt_chars,
                       seed=cfg.judge_spec.judge_seed)


def shr_items(inputs: Sequence[ShrImageInput], responses: Mapping[str, str]) -> list[ShrItem]:
    """What the judge is given per image."""
    return [ShrItem(i.image_id, responses[i.image_id], i.regions, i.facts) for i in inputs]


def judge_work_left(items: Sequence[ShrItem], client: ChatClient, protocol: ShrProtocol, num_runs: int) -> bool:
    """Whether any image of any judge run has no accepted reply on hand (so the judge will be asked)."""
    jobs, _ = judge_jobs(items, protocol)
    parse = reply_parser(protocol)
    for run in range(1, num_runs + 1):
        variant, seed = run_variant(run, protocol.seed)
        _, pending = resume(client, jobs, parse, variant=variant, max_attempts=protocol.max_attempts, seed=seed,
                            count=False)
        if pending:
            return True
    return False


def judge_report(judgements: Mapping[str, Mapping[str, Mapping[str, Any]]], calls: Mapping[str, Any]) -> dict:
    """The ``judge`` section of ``metrics.json``: what the judge cost and what it left undone.

    ``calls`` are the client's counters for this invocation (0 requests on a rerun served from the cache);
    re-asks, unusable replies and unjudged images are counted from the records, so they describe the result.
    """
    records = [(run, image_id, r) for run, recs in judgements.items() for image_id, r in recs.items()]
    unjudged = [(run, image_id, r) for run, image_id, r in records if r.get("status") == UNJUDGED]
    return {
        "calls": dict(calls),
        "reasks": sum(max(int(r.get("attempts", 0)) - 1, 0) for _, _, r in records),
        "unusable_replies": sum(int(r.get("unusable", 0)) for _, _, r in records),
        "unjudged_images": len(unjudged),
        "skipped_images": sum(1 for _, _, r in records if r.get("status") == SKIPPED),
        "unjudged_reasons": dict(sorted(Counter(str(r.get("reason")) for _, _, r in unjudged).items())),
        "first_unjudged": [{"run": run, "image_id": image_id, "error": r.get("error")}
                           for run, image_id, r in unjudged[:LISTED_UNJUDGED]],
    }


def unjudged_share(judgements: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> float:
    """The largest share of images left unjudged in any judge run."""
    shares = [sum(1 for r in recs.values() if r.get("status") == UNJUDGED) / len(recs)
              for recs in judgements.values() if recs]
    return max(shares, default=0.0)


def _unjudged_message(report: Mapping[str, Any], share: float, total: int, limit: float) -> str:
    first = "; ".join(f"{u['run']} image {u['image_id']}: {u['error']}" for u in report["first_unjudged"])
    return (f"{report['unjudged_images']} of {total} image judgements unjudged (largest share in a run "
            f"{share:.3f}, max_unjudged {limit:g}); first: {first}")


def judge_and_score(
    cfg: ShrConfig,
    inputs: Sequence[ShrImageInput],
    responses: Mapping[str, str],
    client: ChatClient,
    *,
    num_tokens: Mapping[str, int] | None = None,
    describe_protocol: Mapping[str, Any] | None = None,
    protocol: ShrProtocol | None = None,
) -> dict[str, Any]:
    """Judge ``responses`` of ``inputs`` with ``client``, write ``judgement.json`` and ``metrics.json``.

    Raises :class:`~hadpo.errors.JudgeIncomplete` (after writing both, the metrics marked incomplete) when more
    than ``max_unjudged`` of a run's images stayed unjudged.
    """
    run_dir = Path(cfg.run_dir)
    protocol = protocol or shr_protocol(cfg)
    judgements = judge_descriptions(shr_items(inputs, responses), client, num_runs=cfg.num_runs, protocol=protocol)
    atomic_write_json(run_dir / JUDGEMENT_FILE, judgements)
    metrics = shr_metrics(judgements, {i.image_id: responses[i.image_id] for i in inputs}, num_tokens=num_tokens,
                          counting=cfg.counting)
    report = judge_report(judgements, client.faults())
    share = unjudged_share(judgements)
    metrics["complete"] = report["unjudged_images"] == 0
    metrics["unjudged_share"] = round(share, 4)
    metrics["max_unjudged"] = cfg.max_unjudged
    metrics["judge"] = report
    metrics["model_base"] = cfg.model_spec.model if cfg.responses is None else None
    metrics["model_path"] = cfg.model_spec.adapter if cfg.responses is None else None
    metrics["protocol"] = {
        "describe": dict(describe_protocol) if describe_protocol is not None else None,
        "responses": {"path": cfg.responses, "sha256": sha256_file(cfg.responses)} if cfg.responses else None,
        "judge": client.protocol(),
        "judging": {"num_runs": cfg.num_runs, **protocol.record()},
        "data": {"data_root": cfg.data_root, "limit": cfg.limit, "sha256": _data_hashes(cfg)},
        "config": cfg.to_dict(),
        "environment": environment(),
    }
    atomic_write_json(run_dir / METRICS_FILE, metrics)
    if report["unjudged_images"]:
        message = _unjudged_message(report, share, sum(len(r) for r in judgements.values()), cfg.max_unjudged)
        if share > cfg.max_unjudged:
            raise JudgeIncomplete(f"SHR judgement incomplete: {message}; {run_dir / METRICS_FILE} is written marked "
                                  "incomplete; rerun to ask the judge again for exactly these images")
        print(f"warning: SHR judgement incomplete but within max_unjudged: {message}", file=sys.stderr)
    return metrics


def _recorded_descriptions(cfg: ShrConfig, inputs: Sequence[ShrImageInput]) -> dict[str, str] | None:
    """Every image's description when they are all on hand already (a file, or a finished describe step)."""
    if cfg.responses:
        return read_responses(cfg.responses)
    done = {str(r["image_id"]): r["response"] for r in read_jsonl_tolerant(Path(cfg.run_dir) / DESCRIPTIONS_FILE)
            if "response" in r}
    return done if all(i.image_id in done for i in inputs) else None


def _images_to_describe(cfg: ShrConfig, inputs: Sequence[ShrImageInput]) -> list[ImageRef]:
    """The images the describe step will read: those without a record in ``descriptions.jsonl`` yet."""
    from hadpo.data.layout import DataLayout

    done = {str(r.get("image_id")) for r in read_jsonl_tolerant(Path(cfg.run_dir) / DESCRIPTIONS_FILE)
            if isinstance(r, dict)}
    source = str(DataLayout(cfg.data_root).shr_val_images)
    return [ImageRef(str(i.image_path), record=i.image_id, field="image_id", file=source) for i in inputs
            if i.image_id not in done]


def run_shr(cfg: ShrConfig) -> dict[str, Any]:
    """Describe (or read ``cfg.responses``), judge, score; returns the metrics written to ``metrics.json``.

    With ``cfg.rerun.force`` the run folder's earlier results (descriptions, judgements, metrics, the judge cache kept
    there) are first moved into ``<run_dir>/replaced-<UTC time>/`` (:func:`hadpo.rerun.set_aside`): every image
    is described and judged again.
    The run folder is locked for the whole call: a second run on it raises :class:`hadpo.errors.RunFolderBusy`.
    """
    with run_lock(cfg.run_dir, what="SHR"):  # one writer per run folder
        if cfg.rerun.force:
            set_aside(cfg.run_dir, keep=(cfg.responses, cfg.judge_prompt))  # inputs stay where the config says
        inputs = load_shr_inputs(cfg.data_root, limit=cfg.limit)
        if not inputs:
            raise DataError(Path(cfg.data_root) / "shr", "no SHR images to evaluate")
        protocol = shr_protocol(cfg)  # a bad template file stops the run before anything is spent
        num_tokens: dict[str, int] | None = None
        describe_proto = None
        if cfg.responses:
            responses = read_responses(cfg.responses)
            missing = [i.image_id for i in inputs if i.image_id not in responses]
            if missing:
                raise DataError(cfg.responses, f"no description for {len(missing)} SHR image(s)", record=missing[0])
        else:  # pre-flight, before the judge is asked or the model loads: every image still to describe decodes
            preflight_images(_images_to_describe(cfg, inputs), progress=cfg.progress, desc="check SHR images")
        # The judge first: a missing key, a rejected key or an unknown model stops the run before any description
        # is generated.
        client = build_judge(cfg.judge_spec, JudgeContext(task="shr", data_root=cfg.data_root, run_dir=cfg.run_dir,
                                                          progress=cfg.progress))
        try:
            known = _recorded_descriptions(cfg, inputs)
            if known is None or judge_work_left(shr_items(inputs, known), client, protocol, cfg.num_runs):
                client.probe()
            if not cfg.responses:
                records, describe_proto = generate_descriptions(cfg, inputs)
                responses = {str(r["image_id"]): r["response"] for r in records}
                num_tokens = {str(r["image_id"]): int(r["num_tokens"]) for r in records if "num_tokens" in r}
            return judge_and_score(cfg, inputs, responses, client, num_tokens=num_tokens,
                                   describe_protocol=describe_proto, protocol=protocol)
        finally:
            close = getattr(client, "close", None)
            if close is not None:
                close()


#: The stage's entry point (notebook 04): :func:`run_shr`.
run = run_shr


def results_table(cfg: ShrConfig, results: dict[str, Any]):
    """The run's SHR metrics as a one-row table naming the model and its adapter (or the responses file judged):
    ratios in % (the repetition scores too), per-image averages, image counts as integers."""
    from hadpo.display import table

    row: dict[str, Any] = cfg.model_spec.results_cells(cfg.responses)
    for column, value in table_row(results).items():
        if column.endswith("-gram rep"):  # unique ÷ total n-grams, a ratio like the others: in %, one unit per table
            column, value = f"{column} (%)", 100 * value
        elif column in ("judged", "unjudged", "skipped") and float(value).is_integer():
            value = int(value)  # a mean over judge runs: whole unless the runs differ
        row[column] = value
    return table([row],
                 formats={"SHR (%)": "{:.1f}", "hal sents/img": "{:.2f}", "sents/img": "{:.2f}",
                          "words/img": "{:.1f}", "hal words (%)": "{:.1f}", "1-gram rep (%)": "{:.1f}",
                          "4-gram rep (%)": "{:.1f}", "judged": "{:g}", "unjudged": "{:g}", "skipped": "{:g}"})
