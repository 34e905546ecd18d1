"""Counts of a preference data set for notebook 01 and the dashboard (``<run_dir>/data_stats.json``).

Both sources report the training pairs by kind under both samplings of :func:`hadpo.data.pairs.build_hadpo_pairs`
(``offline``: the released code, one pair per image twice; ``all``: every style-matched rewrite once); mining adds
what the model did (hallucinated-sentence rate, questions it already answered right) and what was skipped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hadpo.data.hadpo_files import DescRecord, PopeRecord
from hadpo.data.pairs import build_hadpo_pairs

if TYPE_CHECKING:
    from hadpo.display import Table

STATS_FILE = "data_stats.json"

#: Skipped images listed per step and reason in the stats (the counts are always complete).
_LISTED_SKIPS = 20


def _ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def pair_counts(desc: Sequence[DescRecord], pope: Sequence[PopeRecord], seed: int = 42) -> dict[str, dict[str, int]]:
    """Training pairs by kind (``desc``, ``qa``, ``total``) for the ``offline`` and ``all`` samplings."""
    out = {}
    for sampling in ("offline", "all"):
        kinds = Counter(p.kind for p in build_hadpo_pairs(desc, pope, sampling, seed))  # type: ignore[arg-type]
        out[sampling] = {"desc": kinds["desc"], "qa": kinds["qa"], "total": kinds["desc"] + kinds["qa"]}
    return out


def failure_reason(record: Mapping[str, Any]) -> str:
    """``no reply`` or ``unusable reply``: why a step record failed."""
    return str(record.get("reason") or "unknown")


def skip_summary(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Failed records of one step: counts by reason class and the first few image ids with their errors."""
    failed = [r for r in records if r.get("status") == "failed"]
    reasons = Counter(failure_reason(r) for r in failed)
    return {
        "count": len(failed),
        "by_reason": dict(sorted(reasons.items())),
        "images": [{"image_id": r["image_id"], "error": r.get("error")} for r in failed[:_LISTED_SKIPS]],
    }


def judge_step_counts(
    corrections: Mapping[str, Mapping[str, Any]],
    rewrites: Mapping[str, Mapping[str, Any]],
    qa_items: Mapping[str, Mapping[str, Any]],
) -> dict[str, dict[str, int]]:
    """Per judge step: images asked, re-asks, unusable replies, and images failed by reason (no reply, unusable)."""
    out = {}
    for step, records in (("correct", corrections), ("rewrite", rewrites), ("qa", qa_items)):
        asked = [r for r in records.values() if r.get("attempts", 0) > 0]
        failed = Counter(failure_reason(r) for r in asked if r.get("status") == "failed")
        out[step] = {
            "images": len(asked),
            "reasks": sum(int(r["attempts"]) - 1 for r in asked),
            "unusable_replies": sum(int(r.get("unusable", 0)) for r in asked),
            "failed_no_reply": failed["no reply"],
            "failed_unusable": failed["unusable reply"],
        }
    return out


def mining_stats(
    selection: Mapping[str, Any],
    descriptions: Mapping[str, str],
    corrections: Mapping[str, Mapping[str, Any]],
    rewrites: Mapping[str, Mapping[str, Any]],
    qa_items: Mapping[str, Mapping[str, Any]],
    desc: Sequence[DescRecord],
    pope: Sequence[PopeRecord],
    *,
    rewrites_asked: int,
) -> dict[str, Any]:
    """The stats of a mining run from its step records and its two output files (as read back)."""
    judged = [r for r in corrections.values() if r["status"] == "ok"]
    sentences = sum(len(r["sentences"]) for r in judged)
    labels = Counter(label for r in judged for label in r["labels"])
    with_hal = sum(1 for r in judged if r["hallucinated"])
    empty = sum(1 for r in judged if not r["sentences"])
    correct_flags = [r.correct is True for r in pope]
    answers = Counter(r.answer for r in pope)
    return {
        "source": "mine",
        "selection": dict(selection["counts"]),
        "leaks": {**selection["leaks"], "selected": selection.get("selected_leaks", 0)},
        "images": {
            "selected": len(selection["images"]),
            "described": len(descriptions),
            "judged": len(judged),
            "with_hallucination": with_hal,
            "without_hallucination": len(judged) - with_hal - empty,
            "empty_description": empty,
            "description_pairs": sum(1 for r in judged if r["pair"]),
            "in_desc_data": len(desc),
            "in_pope_data": len({r.image_id for r in pope}),
        },
        "sentences": {
            "judged": sentences,
            "hallucination": labels["hallucination"],
            "correct": labels["correct"],
            "cannot_judge": labels["cannot judge"],
            # As SHR counts it: "cannot judge" sentences stay in the denominator.
            "hallucination_rate": _ratio(labels["hallucination"], sentences),
            "images_with_hallucination_rate": _ratio(with_hal, len(judged)),
        },
        "rewrites": {
            "asked_per_image": rewrites_asked,
            "images": len(desc),
            "chosen": sum(len(r.chosen) for r in desc),
            "rejected": sum(len(r.rejected) for r in desc),
            "mean_per_image": _ratio(sum(len(r.chosen) for r in desc), len(desc)),
        },
        "qa": {
            "items": len(pope),
            "yes": answers["yes"],
            "no": answers["no"],
            "model_correct": sum(correct_flags),
            "model_correct_rate": _ratio(sum(correct_flags), len(pope)),
            "trainable": len(pope) - sum(correct_flags),
        },
        "pairs": pair_counts(desc, pope),
        "skipped": {
            "correct": skip_summary(corrections.values()),
            "rewrite": skip_summary(rewrites.values()),
            "qa": skip_summary(qa_items.values()),
        },
    }


def _shown(key: str, value: Any) -> str:
    """One stats value as the table shows it: counts as integers, every rate (a ``*_rate`` fraction) in %,
    per-image means with two decimals, lists by their length, paths relative to the checkout."""
    from hadpo.display import shown_value

    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if key.endswith("_rate"):
            return f"{100 * value:.1f} %"
        if key.endswith("_s"):
            return f"{value:,.1f} s"
        return f"{value:,.2f}"
    if isinstance(value, (list, tuple)):
        return f"{len(value):,} listed"
    return shown_value(value)


def stats_rows(stats: Mapping[str, Any]) -> list[dict[str, str]]:
    """Every value of the stats as a row: ``Section`` (the top-level key, on its first row only), ``Count`` (the
    nested keys, readable) and ``Value`` (formatted by :func:`_shown`). Nothing is left out."""
    rows: list[dict[str, str]] = []

    def walk(section: str, path: list[str], value: Any) -> None:
        if isinstance(value, Mapping) and value:
            for key, inner in value.items():
                walk(section, [*path, str(key)], inner)
            return
        shown = "—" if isinstance(value, Mapping) else _shown(path[-1] if path else section, value)
        label = " · ".join(p.replace("_", " ") for p in path)  # empty for a top-level value such as source
        first = not rows or rows[-1]["_section"] != section
        rows.append({"_section": section, "Section": section.replace("_", " ") if first else "", "Count": label,
                     "Value": shown})

    for key, value in stats.items():
        walk(str(key), [], value)
    return [{k: v for k, v in row.items() if k != "_section"} for row in rows]


def stats_table(stats: Mapping[str, Any]) -> Table:
    """The stats as a three-column table (:func:`stats_rows`) for a notebook cell: every row, no index column,
    rates in %."""
    from hadpo.display import table

    rows = stats_rows(stats)
    return table(rows, caption=f"{len(rows)} values of data_stats.json; rates in %, counts as integers.")
