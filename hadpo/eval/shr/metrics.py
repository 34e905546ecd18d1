"""SHR metrics with the original's keys, plus what the original left out (unjudged counts, length statistics).

Per judge run (``run1``, ``run2``, ...), over the images the judge labelled (``status == "judged"``):

* ``num_images``; ``sents_per_image``, ``words_per_image`` (words: pieces of a split on single spaces);
* ``hal_sents_per_image``, ``hal_words_per_image``: sentences labelled ``hallucination`` and their words;
* ``hal_sents_ratio``, ``hal_words_ratio``: hallucinated ÷ labelled sentences (words); ``cannot judge`` is in
  the denominator as not hallucinated.

Which images count depends on ``counting``. ``kit`` (the default): only judged images count, so every per-image
value shares one denominator and an unjudged image can never pass for one without hallucination. ``original``:
unjudged images stay in ``num_images`` and in the per-image means with no labelled sentence, and a sentence with
an unknown label counts in the lengths but not in the ratios, as the original code counted. Either way images
skipped for an over-long prompt are left out, and ``num_unjudged`` / ``num_skipped`` / ``num_unlabelled_sents``
say how many there were. ``gram-n-repetition`` is the
mean over all described images of unique ÷ total word n-grams (higher = less repetition). ``mean_hal_ratio`` is
the mean of ``hal_sents_ratio`` over runs; the reported SHR is ``mean_hal_ratio × 100``. Shorter descriptions
score better on SHR, so ``length`` reports the description length over all images next to it.
Values are rounded to 3 decimals, as the original.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from hadpo.eval.shr.judge import JUDGED, SKIPPED, UNJUDGED
from hadpo.eval.shr.parse import Counting
from hadpo.eval.shr.prompt import LABELS
from hadpo.eval.shr.sentences import split_sentences, word_count

#: Characters removed before counting n-grams, as the original (a newline becomes a space).
_REPETITION_STRIP = (".", ":", "?", ",")


def _r(value: float) -> float:
    return round(value, 3)


def record_status(record: Mapping[str, Any]) -> str:
    """An image's status; records of the original code (no ``status``) are judged when every sentence has a label.

    This lets the kit re-score ``judgement.json`` files written by the original implementation.
    """
    status = record.get("status")
    if status is not None:
        return str(status)
    labels = [entry.get("classification") for entry in record.get("judgement", [])]
    return JUDGED if all(label is not None for label in labels) else UNJUDGED


def run_metrics(run: Mapping[str, Mapping[str, Any]], counting: Counting = "kit") -> dict[str, Any]:
    """The per-run table (module docstring) for ``{image_id: judgement record}``."""
    images = sents = words = hal_sents = hal_words = valid_sents = valid_words = 0
    correct = cannot = 0
    counts = {JUDGED: 0, UNJUDGED: 0, SKIPPED: 0}
    counted = (JUDGED, UNJUDGED) if counting == "original" else (JUDGED,)
    for record in run.values():
        status = record_status(record)
        counts[status] += 1
        if status not in counted:
            continue
        images += 1
        for entry in record["judgement"]:
            n_words = word_count(entry["model_response"])
            sents += 1
            words += n_words
            label = entry["classification"]
            if label not in LABELS:
                continue
            valid_sents += 1
            valid_words += n_words
            if label == "hallucination":
                hal_sents += 1
                hal_words += n_words
            elif label == "correct":
                correct += 1
            else:
                cannot += 1
    per_image = (lambda x: _r(x / images)) if images else (lambda x: 0.0)
    return {
        "num_images": images,
        "sents_per_image": per_image(sents),
        "words_per_image": per_image(words),
        "hal_sents_per_image": per_image(hal_sents),
        "hal_words_per_image": per_image(hal_words),
        # No labelled sentence: the ratio is undefined, not 0 (a judge that labelled nothing found nothing wrong).
        "hal_sents_ratio": _r(hal_sents / valid_sents) if valid_sents else None,
        "hal_words_ratio": _r(hal_words / valid_words) if valid_words else None,
        "num_sents": sents,
        "num_hal_sents": hal_sents,
        "num_correct_sents": correct,
        "num_cannot_judge_sents": cannot,
        "num_unlabelled_sents": sents - valid_sents,
        "num_unjudged": counts[UNJUDGED],
        "num_skipped": counts[SKIPPED],
    }


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """Consecutive ``n``-token windows of ``tokens`` (none when there are fewer than ``n`` tokens)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def repetition_tokens(text: str) -> list[str]:
    """Words of ``text`` for the repetition score: ``. : ? ,`` removed, newlines as spaces, split on whitespace."""
    text = text.replace("\n", " ")
    for ch in _REPETITION_STRIP:
        text = text.replace(ch, "")
    return text.split()


def repetition(responses: Iterable[str], n: int) -> float:
    """Mean over responses of unique ÷ total ``n``-grams; responses shorter than ``n`` words are left out."""
    ratios = []
    for response in responses:
        grams = ngrams(repetition_tokens(response), n)
        if grams:
            ratios.append(len(set(grams)) / len(grams))
    return _r(sum(ratios) / len(ratios)) if ratios else 0.0


def length_stats(responses: Sequence[str], num_tokens: Sequence[int] | None = None) -> dict[str, Any]:
    """Description length over all described images (judged or not): words, sentences, characters, tokens."""
    n = len(responses)
    if n == 0:
        return {"num_images": 0, "words_per_image": 0.0, "sents_per_image": 0.0, "chars_per_image": 0.0}
    out: dict[str, Any] = {
        "num_images": n,
        "words_per_image": _r(sum(len(r.split()) for r in responses) / n),
        "sents_per_image": _r(sum(len(split_sentences(r)) for r in responses) / n),
        "chars_per_image": _r(sum(len(r) for r in responses) / n),
    }
    if num_tokens is not None and len(num_tokens) == n:
        out["tokens_per_image"] = _r(sum(num_tokens) / n)
    return out


def shr_metrics(
    judgements: Mapping[str, Mapping[str, Mapping[str, Any]]],
    responses: Mapping[str, str],
    *,
    num_tokens: Mapping[str, int] | None = None,
    counting: Counting = "kit",
) -> dict[str, Any]:
    """``metrics.json`` content from ``judgement.json`` content and every described image's response.

    Raises ValueError when there is no described image: every per-image value would be a silent 0.
    """
    if not responses:
        raise ValueError("no described images: SHR needs at least one image to score")
    runs = {name: run_metrics(run, counting) for name, run in judgements.items()}
    ratios = [m["hal_sents_ratio"] for m in runs.values()]
    texts = list(responses.values())
    out: dict[str, Any] = dict(runs)
    for n in range(1, 5):
        out[f"gram-{n}-repetition"] = repetition(texts, n)
    defined = ratios and all(r is not None for r in ratios)
    out["mean_hal_ratio"] = _r(statistics.fmean(ratios)) if defined else None
    out["std_hal_ratio"] = _r(statistics.stdev(ratios)) if defined and len(ratios) > 1 else (0.0 if defined else None)
    out["num_runs"] = len(runs)
    out["counting"] = counting
    out["unjudged"] = {name: m["num_unjudged"] for name, m in runs.items()}
    out["skipped"] = {name: m["num_skipped"] for name, m in runs.items()}
    tokens = [num_tokens[i] for i in responses] if num_tokens and all(i in num_tokens for i in responses) else None
    out["length"] = length_stats(texts, tokens)
    return out


# ---------------------------------------------------------------------------------------------------- tables
TABLE_COLUMNS = (
    "SHR (%)", "hal sents/img", "sents/img", "words/img", "hal words (%)", "1-gram rep", "4-gram rep",
    "judged", "unjudged", "skipped", "runs", "complete",
)


def is_complete(metrics: Mapping[str, Any]) -> bool | None:
    """Whether every image of every run was judged (skipped ones aside); None for files that cannot tell
    (written by the original code, which did not record unjudged images)."""
    if "complete" in metrics:
        return bool(metrics["complete"])
    runs = [v for k, v in metrics.items() if k.startswith("run") and k[3:].isdigit() and isinstance(v, Mapping)]
    if runs and all("num_unjudged" in r for r in runs):
        return all(r["num_unjudged"] == 0 for r in runs)
    return None


def table_row(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """One table row from a ``metrics.json``: SHR and word ratio ×100, averaged over runs where per-run."""
    runs = [v for k, v in metrics.items() if k.startswith("run") and k[3:].isdigit()]
    if not runs:
        raise ValueError("metrics hold no judge run (no 'run1' key)")

    def mean(key: str) -> float:
        values = [r[key] for r in runs]
        return math.nan if any(v is None for v in values) else statistics.fmean(values)

    shr = metrics["mean_hal_ratio"]
    return {
        "SHR (%)": round(100 * shr, 1) if shr is not None else math.nan,
        "hal sents/img": round(mean("hal_sents_per_image"), 2),
        "sents/img": round(mean("sents_per_image"), 2),
        "words/img": round(mean("words_per_image"), 1),
        "hal words (%)": round(100 * mean("hal_words_ratio"), 1),
        "1-gram rep": metrics["gram-1-repetition"],
        "4-gram rep": metrics["gram-4-repetition"],
        "judged": round(mean("num_images"), 1),
        "unjudged": round(mean("num_unjudged"), 1) if "num_unjudged" in runs[0] else 0,
        "skipped": round(mean("num_skipped"), 1) if "num_skipped" in runs[0] else 0,
        "runs": len(runs),
        "complete": {True: "yes", False: "NO", None: "?"}[is_complete(metrics)],
    }


def shr_table(metrics_by_name: Mapping[str, Mapping[str, Any]]) -> Any:
    """A ``pandas.DataFrame`` comparing models (one row per name), SHR ×100 as the papers report it."""
    import pandas as pd

    rows = [{"model": name, **table_row(m)} for name, m in metrics_by_name.items()]
    return pd.DataFrame(rows, columns=["model", *TABLE_COLUMNS]).set_index("model")


def shr_markdown(metrics_by_name: Mapping[str, Mapping[str, Any]]) -> str:
    """The same table as GitHub markdown (no extra dependency)."""
    header = ["model", *TABLE_COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, m in metrics_by_name.items():
        row = table_row(m)
        lines.append("| " + " | ".join([name, *(str(row[c]) for c in TABLE_COLUMNS)]) + " |")
    return "\n".join(lines)
