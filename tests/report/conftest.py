"""Small fake result folders in the real formats: POPE run folders, SHR run folders, a training log."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from hadpo.eval.pope.score import score_files
from hadpo.eval.shr.metrics import shr_metrics
from hadpo.io import atomic_write_json, atomic_write_jsonl, sha256_file

#: Eight questions: four "yes" then four "no" labels.
LABELS = ["yes", "yes", "yes", "yes", "no", "no", "no", "no"]
#: Base: TP 3, FN 1, FP 2, TN 2 → accuracy 5/8, precision 3/5, recall 3/4, F1 2/3, yes-ratio 5/8.
BASE_ANSWERS = ["yes", "yes", "yes", "no", "yes", "yes", "no", "no"]
#: HA-DPO: TP 3, FN 1, FP 1, TN 3 → accuracy 6/8, precision 3/4, recall 3/4, F1 3/4, yes-ratio 4/8.
#: Against the base: q8 base right / HA-DPO wrong (b = 1); q5, q6 base wrong / HA-DPO right (c = 2).
ADAPTED_ANSWERS = ["yes", "yes", "yes", "no", "no", "no", "no", "yes"]


def _sentence(word: str) -> str:
    # Long-form answers exercise POPE's parser: "No" / "not" anywhere in the first sentence means no.
    return "Yes, there is a shape in the image." if word == "yes" else "No, there is not. It is empty."


def write_labels(path: Path, labels: Sequence[str], *, first_id: int = 1) -> Path:
    """A POPE question file (JSON lines with labels)."""
    rows = [
        {"question_id": first_id + i, "image": f"img{(first_id + i) // 2}.jpg", "text": "Is there a circle?",
         "label": label}
        for i, label in enumerate(labels)
    ]
    return atomic_write_jsonl(path, rows)


def write_pope_set(run_dir: Path, pope_set: str, labels_file: Path, answers: Sequence[str], *, first_id: int = 1,
                   rule: str = "pope") -> Path:
    """``<run_dir>/<set>/{answers.jsonl, protocol.json, metrics.json}`` as the POPE evaluator writes them."""
    folder = run_dir / pope_set
    atomic_write_jsonl(folder / "answers.jsonl", [
        {"question_id": first_id + i, "question": "Is there a circle?", "answer": _sentence(a)}
        for i, a in enumerate(answers)
    ])
    atomic_write_json(folder / "protocol.json", {
        "pope_set": pope_set, "questions_file": str(labels_file), "questions_sha256": sha256_file(labels_file),
    })
    metrics = score_files(folder / "answers.jsonl", labels_file, rule=rule)
    atomic_write_json(folder / "metrics.json", {"pope_set": pope_set, "limit": None, **metrics})
    return folder


def judgement_record(sentences: Sequence[tuple[str, str | None]], status: str = "judged") -> dict[str, Any]:
    """One image's judgement.json entry from ``(sentence, classification)`` pairs."""
    return {
        "raw_judgement": None,
        "model_response": " ".join(s for s, _ in sentences),
        "judgement": [
            {"model_response": s, "judgement": None if c is None else f"{c}: because", "classification": c}
            for s, c in sentences
        ],
        "status": status,
        "attempts": 1,
        "error": None,
    }


def write_shr_run(folder: Path, images: dict[str, dict[str, Any]]) -> Path:
    """``metrics.json`` (computed by the SHR evaluator's own code) and ``judgement.json`` for one judge run."""
    judgements = {"run1": images}
    atomic_write_json(folder / "judgement.json", judgements)
    responses = {i: r["model_response"] for i, r in images.items()}
    atomic_write_json(folder / "metrics.json", shr_metrics(judgements, responses))
    return folder


BASE_SHR = {
    "1": judgement_record([("There is a red circle.", "correct"), ("There is a <b>blue</b> square & more.",
                                                                    "hallucination")]),
    "2": judgement_record([("A green cross.", "hallucination"), ("A cyan cross.", "cannot judge")]),
    "3": judgement_record([("A yellow triangle.", None)], status="unjudged"),
}
ADAPTED_SHR = {
    "1": judgement_record([("There is a red circle.", "correct")]),
    "2": judgement_record([("A green cross.", "hallucination"), ("A cyan cross.", "correct")]),
    "3": judgement_record([("A yellow triangle.", "correct")]),
}


def write_benchmark_run(folder: Path, records: Sequence[dict[str, Any]], *, complete: bool = True) -> Path:
    """``scores.jsonl`` and a ``metrics.json`` (only what the dashboard reads of it) of a CHAIR, AMBER or
    MMHal-Bench run folder."""
    atomic_write_jsonl(folder / "scores.jsonl", records)
    atomic_write_json(folder / "metrics.json", {"complete": complete})
    return folder


def chair_records(hallucinated: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
    """CHAIR per-image records: each image mentions "a", "b" and its hallucinated objects (truth a, b, c)."""
    return [{"image_id": str(i + 1), "words": 10, "mentions": ["a", "b", *h], "hallucinated": list(h),
             "truth": ["a", "b", "c"], "covered": ["a", "b"]} for i, h in enumerate(hallucinated)]


def mmhal_records(ratings: Sequence[int | None]) -> list[dict[str, Any]]:
    """MMHal-Bench per-question records (a None rating: unjudged)."""
    return [{"id": str(i), "question_type": "attribute", "rating": r, "status": "judged" if r is not None else
             "unjudged"} for i, r in enumerate(ratings)]


def amber_records(hallucinated: Sequence[int]) -> list[dict[str, Any]]:
    """AMBER generative records: each description names 4 objects, ``hallucinated[i]`` of them not there."""
    return [{"id": str(i + 1), "kind": "generative", "hallucinated": h, "objects": 4, "covered": 4 - h, "truth": 5,
             "named": 0, "hallu": 1} for i, h in enumerate(hallucinated)]


@pytest.fixture
def results_root(tmp_path: Path) -> Path:
    """A complete set of results: POPE (3 sets, both models), SHR (both models) and a training log."""
    labels_dir = tmp_path / "data" / "POPE" / "output" / "coco"
    for pope_set in ("random", "popular", "adversarial"):
        labels = write_labels(labels_dir / f"coco_pope_{pope_set}.json", LABELS)
        write_pope_set(tmp_path / "pope" / "base", pope_set, labels, BASE_ANSWERS)
        write_pope_set(tmp_path / "pope" / "hadpo", pope_set, labels, ADAPTED_ANSWERS)
    write_shr_run(tmp_path / "shr" / "base", BASE_SHR)
    write_shr_run(tmp_path / "shr" / "hadpo", ADAPTED_SHR)
    records = [
        {"step": s, "loss": 0.69 - 0.05 * s, "rewards/chosen": 0.01 * s, "rewards/rejected": -0.01 * s,
         "rewards/accuracies": min(1.0, 0.5 + 0.1 * s), "rewards/margins": 0.02 * s, "logps/chosen": -20.0 + s,
         "logps/rejected": -20.0 - s, "grad_norm": 1.0, "learning_rate": 1e-4, "epoch": s / 5,
         "perf/seconds_per_step": 2.0 + s, "perf/pairs_per_second": 16 / (2.0 + s),
         "perf/tokens_per_second": 9600 / (2.0 + s)}
        for s in range(1, 6)
    ]
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return tmp_path


@pytest.fixture
def dashboard_params(results_root: Path) -> Callable[..., dict[str, Any]]:
    """Parameters of a DashboardConfig pointing at ``results_root`` (overrides as keyword arguments)."""

    def make(**overrides: Any) -> dict[str, Any]:
        return {
            "run_name": "unit",
            "base_pope_dir": str(results_root / "pope" / "base"),
            "hadpo_pope_dir": str(results_root / "pope" / "hadpo"),
            "base_shr_dir": str(results_root / "shr" / "base"),
            "hadpo_shr_dir": str(results_root / "shr" / "hadpo"),
            "train_dir": str(results_root / "train"),
            "report_dir": str(results_root / "reports" / "unit"),
            "bootstrap_resamples": 200,
            **overrides,
        }

    return make


@pytest.fixture
def fakes() -> SimpleNamespace:
    """The builders and constants above, for tests that assemble their own folders."""
    return SimpleNamespace(
        LABELS=LABELS, BASE_ANSWERS=BASE_ANSWERS, ADAPTED_ANSWERS=ADAPTED_ANSWERS, BASE_SHR=BASE_SHR,
        ADAPTED_SHR=ADAPTED_SHR, write_labels=write_labels, write_pope_set=write_pope_set,
        judgement_record=judgement_record, write_shr_run=write_shr_run, write_benchmark_run=write_benchmark_run,
        chair_records=chair_records, mmhal_records=mmhal_records, amber_records=amber_records,
    )
