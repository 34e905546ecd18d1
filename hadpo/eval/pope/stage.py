"""Stage 03, POPE: answer (resumably, on one or many processes), score, write the tables.

Run folder layout (``cfg.run_dir``)::

    <set>/answers.jsonl  <set>/protocol.json  <set>/metrics.json     per evaluated set
    metrics.json  metrics.csv  metrics.md                             every set evaluated in this folder so far

The tables hold one row per set, in POPE's order; the markdown shows percentages with two decimals (as the
HA-DPO tables), the CSV and JSON keep fractions.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hadpo.data.images import preflight_images
from hadpo.data.layout import POPE_SETS
from hadpo.data.pope_files import read_pope_answers
from hadpo.distributed import init_distributed, teardown
from hadpo.eval.pope.config import PopeConfig
from hadpo.eval.pope.infer import load_questions, pending_image_refs, questions_path, run_inference
from hadpo.eval.pope.score import score_answers
from hadpo.io import atomic_write_json, atomic_write_text, read_json
from hadpo.rerun import set_aside
from hadpo.runlock import run_lock

if TYPE_CHECKING:
    from hadpo.models.loading import LoadedModel

NOTEBOOK = "03_pope"
Config = PopeConfig

METRICS_FILE = "metrics.json"
#: Table columns: (key in the metrics dict, header, shown as a percentage in markdown).
COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("accuracy", "Accuracy", True),
    ("precision", "Precision", True),
    ("recall", "Recall", True),
    ("f1", "F1", True),
    ("yes_ratio", "Yes ratio", True),
    ("TP", "TP", False),
    ("FP", "FP", False),
    ("TN", "TN", False),
    ("FN", "FN", False),
    ("unparseable", "Unparseable", False),
    ("n", "N", False),
)


def score_set(cfg: PopeConfig, pope_set: str) -> dict[str, Any]:
    """Score ``<run_dir>/<set>/answers.jsonl`` against the set's labels and write its ``metrics.json``.

    With ``cfg.limit`` only the first ``limit`` questions are in scope, and answers to later ones (left by an
    earlier, larger run) are set aside; without it the answer ids must equal the label ids exactly.
    """
    set_dir = Path(cfg.run_dir) / pope_set
    answers_file = set_dir / "answers.jsonl"
    questions = load_questions(cfg, pope_set)
    answers = read_pope_answers(answers_file)
    if cfg.limit:
        in_scope = {q.question_id for q in questions}
        answers = [a for a in answers if a.question_id in in_scope]
    metrics = score_answers(
        answers, questions, rule=cfg.rule, answers_file=answers_file, labels_file=questions_path(cfg, pope_set)
    )
    record = {"pope_set": pope_set, "limit": cfg.limit, **metrics}
    atomic_write_json(set_dir / METRICS_FILE, record)
    return record


def collect_metrics(run_dir: str | Path) -> dict[str, dict[str, Any]]:
    """``{set: metrics}`` for every set of ``run_dir`` that has a ``metrics.json``, in POPE's order."""
    root = Path(run_dir)
    return {s: read_json(root / s / METRICS_FILE) for s in POPE_SETS if (root / s / METRICS_FILE).is_file()}


def metrics_markdown(results: dict[str, dict[str, Any]]) -> str:
    """A markdown table, one row per set; ratios as percentages with two decimals."""
    head = ["Set", "Rule", *(h for _, h, _ in COLUMNS)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for pope_set, m in results.items():
        cells = [pope_set, str(m.get("rule", ""))]
        cells += [f"{100 * m[k]:.2f}" if pct else str(m[k]) for k, _, pct in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def metrics_frame(results: dict[str, dict[str, Any]]):
    """A ``pandas.DataFrame``, one row per set: counts, and ratios as percentages with two decimals."""
    import pandas as pd

    rows = []
    for pope_set, m in results.items():
        row: dict[str, Any] = {"Set": pope_set, "Rule": m.get("rule", "")}
        row.update({head: round(100 * m[key], 2) if pct else m[key] for key, head, pct in COLUMNS})
        rows.append(row)
    return pd.DataFrame(rows).set_index("Set")


def metrics_table(cfg: PopeConfig, results: dict[str, dict[str, Any]]):
    """Notebook 03's table, one row per set: rates in % with two decimals, counts as integers, and the model
    (with its adapter, or "base model") and the scoring rule in the caption."""
    from hadpo.display import shown_value, table

    rows = []
    for pope_set, m in results.items():
        row: dict[str, Any] = {"Set": pope_set}
        row.update({f"{head} (%)" if pct else head: 100 * m[key] if pct else int(m[key]) for key, head, pct in COLUMNS})
        rows.append(row)
    spec = cfg.model_spec
    rules = sorted({str(m.get("rule", cfg.rule)) for m in results.values()}) or [cfg.rule]
    model = shown_value(spec.model)
    caption = f"{model} + adapter {shown_value(spec.adapter)}" if spec.adapter else f"{model} (base model, no adapter)"
    return table(rows, caption=f"{caption}; rule {', '.join(rules)}",
                 formats={f"{head} (%)": "{:.2f}" for _, head, pct in COLUMNS if pct})


def metrics_csv(results: dict[str, dict[str, Any]]) -> str:
    """A CSV table, one row per set; ratios as fractions."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["set", "rule", *(k for k, _, _ in COLUMNS)])
    for pope_set, m in results.items():
        writer.writerow([pope_set, m.get("rule", ""), *(m[k] for k, _, _ in COLUMNS)])
    return buf.getvalue()


def write_tables(run_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Rewrite the run folder's ``metrics.{json,csv,md}`` from every set's ``metrics.json``."""
    root = Path(run_dir)
    results = collect_metrics(root)
    atomic_write_json(root / METRICS_FILE, results)
    atomic_write_text(root / "metrics.csv", metrics_csv(results))
    atomic_write_text(root / "metrics.md", metrics_markdown(results))
    return results


def run_pope(cfg: PopeConfig) -> dict[str, dict[str, Any]]:
    """Answer, score and tabulate every set of ``cfg`` (``cfg.set`` may be ``all``); returns ``{set: metrics}``.

    Resumable: answered questions are skipped, and the model is loaded only if something is left to answer. With
    ``cfg.rerun.force`` the evaluated sets' folders are first moved into ``<run_dir>/replaced-<UTC time>/``
    (:func:`hadpo.rerun.set_aside`) and every question is answered again; the other sets' results stay.
    Under ``torchrun`` every rank calls it and answers its shard; rank 0 merges, scores and writes; every rank
    returns the same metrics.
    The run folder is locked for the whole call: a second run on it raises :class:`hadpo.errors.RunFolderBusy`.
    """
    from hadpo.models.loading import load_model

    # One writer per run folder; the ranks of one torchrun job share it, so rank 0 holds it for them.
    with run_lock(cfg.run_dir, what="POPE", main_rank_only=True):
        ctx = init_distributed(cfg.model_spec.device)
        loaded: LoadedModel | None = None

        def get_model() -> LoadedModel:
            nonlocal loaded
            if loaded is None:
                loaded = load_model(cfg.model_spec.replace(device=ctx.device))
            return loaded

        try:
            if cfg.rerun.force and ctx.is_main:
                set_aside(cfg.run_dir, cfg.sets)
            ctx.barrier()  # every rank reads what is answered only after the earlier answers are set aside
            # Pre-flight, before any model loads: every image still to be answered, in every set, must decode.
            preflight_images(pending_image_refs(cfg, cfg.sets), progress=cfg.progress and ctx.is_main,
                             desc="check POPE images")
            for pope_set in cfg.sets:
                run_inference(cfg, pope_set, ctx, get_model)
                if ctx.is_main:
                    score_set(cfg, pope_set)
            if ctx.is_main:
                write_tables(cfg.run_dir)
            ctx.barrier()
            return {s: read_json(Path(cfg.run_dir) / s / METRICS_FILE) for s in cfg.sets}
        finally:
            if ctx.created:
                teardown()


#: The stage's entry point (notebook 03): :func:`run_pope`.
run = run_pope
