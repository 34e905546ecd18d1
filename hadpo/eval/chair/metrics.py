"""CHAIR (Rohrbach et al., 2018) over a set of descriptions, and the length figures reported beside it.

For each description, its object mentions (:func:`hadpo.eval.chair.mentions.find_mentions`) are checked against
the image's ground-truth categories (COCO: the union of the instance annotations and the categories its human
captions mention). A mention of a category not in the ground truth is a hallucination.

* ``chair_i`` — hallucinated mentions ÷ all mentions, over the whole set (a category named twice counts twice);
* ``chair_s`` — descriptions with at least one hallucinated mention ÷ descriptions;
* ``recall`` — ground-truth categories mentioned ÷ ground-truth categories, summed over the set (the coverage
  that fewer hallucinations can cost);
* ``words`` / ``mentions`` / ``objects`` per description — length in words, object mentions, and distinct
  categories mentioned.

Ratios are fractions in ``metrics.json`` (the tables show percent); an empty set of mentions gives a CHAIR_i of
0 with ``mentions`` 0 beside it, never a silent NaN.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hadpo.eval.chair.mentions import find_mentions
from hadpo.eval.chair.synonyms import SynonymTable


@dataclass(frozen=True)
class ChairItem:
    """One description's CHAIR counts (the per-item record of ``scores.jsonl``)."""

    image_id: str
    words: int
    mentions: tuple[str, ...]
    hallucinated: tuple[str, ...]
    truth: tuple[str, ...]
    covered: tuple[str, ...]

    @property
    def hallucinates(self) -> bool:
        """Whether the description names at least one object that is not there (CHAIR_s's numerator)."""
        return bool(self.hallucinated)

    def record(self) -> dict[str, Any]:
        """The item as a JSON record."""
        return {"image_id": self.image_id, "words": self.words, "mentions": list(self.mentions),
                "hallucinated": list(self.hallucinated), "truth": list(self.truth), "covered": list(self.covered)}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ChairItem:
        """Inverse of :meth:`record`."""
        return cls(image_id=str(record["image_id"]), words=int(record["words"]),
                   mentions=tuple(record["mentions"]), hallucinated=tuple(record["hallucinated"]),
                   truth=tuple(record["truth"]), covered=tuple(record["covered"]))


def score_description(image_id: str, text: str, truth: Collection[str], table: SynonymTable) -> ChairItem:
    """One description's mentions checked against its image's ground-truth categories."""
    mentions = [m.category for m in find_mentions(text, table)]
    truth_set = set(truth)
    return ChairItem(
        image_id=image_id,
        words=len(text.split()),
        mentions=tuple(mentions),
        hallucinated=tuple(c for c in mentions if c not in truth_set),
        truth=tuple(sorted(truth_set)),
        covered=tuple(sorted(truth_set.intersection(mentions))),
    )


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def chair_metrics(items: Sequence[ChairItem]) -> dict[str, Any]:
    """The set's CHAIR_i, CHAIR_s, recall and length figures (see the module docstring)."""
    n = len(items)
    mentions = sum(len(i.mentions) for i in items)
    hallucinated = sum(len(i.hallucinated) for i in items)
    truth = sum(len(i.truth) for i in items)
    covered = sum(len(i.covered) for i in items)
    return {
        "images": n,
        "chair_i": _ratio(hallucinated, mentions),
        "chair_s": _ratio(sum(1 for i in items if i.hallucinates), n),
        "recall": _ratio(covered, truth),
        "mentions": mentions,
        "hallucinated_mentions": hallucinated,
        "words_per_description": _ratio(sum(i.words for i in items), n),
        "mentions_per_description": _ratio(mentions, n),
        "objects_per_description": _ratio(sum(len(set(i.mentions)) for i in items), n),
    }


def score_descriptions(descriptions: Mapping[str, str], truth: Mapping[str, Iterable[str]],
                       table: SynonymTable) -> list[ChairItem]:
    """Every description scored, in ``descriptions`` order (each image id must have its ground truth)."""
    return [score_description(image_id, text, list(truth[image_id]), table)
            for image_id, text in descriptions.items()]


#: The columns of a CHAIR table row, from ``metrics.json``'s keys (ratios in percent).
TABLE_COLUMNS: tuple[tuple[str, str, float], ...] = (
    ("CHAIR_s (%)", "chair_s", 100.0),
    ("CHAIR_i (%)", "chair_i", 100.0),
    ("recall (%)", "recall", 100.0),
    ("words/desc", "words_per_description", 1.0),
    ("objects/desc", "objects_per_description", 1.0),
    ("images", "images", 1.0),
)


def table_row(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """A table row of ``metrics.json``: the rates in percent, the lengths per description, the image count."""
    row: dict[str, Any] = {}
    for column, key, factor in TABLE_COLUMNS:
        value = metrics[key]
        row[column] = int(value) if key == "images" else factor * float(value)
    return row


#: How the row's numbers are shown.
TABLE_FORMATS = {"CHAIR_s (%)": "{:.1f}", "CHAIR_i (%)": "{:.1f}", "recall (%)": "{:.1f}", "words/desc": "{:.1f}",
                 "objects/desc": "{:.2f}", "images": "{:d}"}
