"""AMBER's measures, LLM-free, as its reference evaluation (``inference.py`` of the release) counts them.

**Generative** (one description per image). The description's *object words* are its words that are entries of
AMBER's vocabulary (:mod:`hadpo.eval.amber.words`), each occurrence counted. Each object word, in order:

1. a global safe word (``safe_words.txt``) is skipped: never a hallucination, covers nothing, but still counted
   among the object words;
2. a word among the image's ``truth`` objects or their associated words covers one truth object and is no
   hallucination. Which one: the first match in the reference's search order, every truth object's associated
   words (truth object by truth object) before the truth objects themselves — so "tree" covers "forest" when the
   truth is ``[forest, tree]`` and "forest" lists "tree" among its associations;
3. any other word is a hallucination; when it is among the ``hallu`` objects or their associated words (same
   search order), that likely hallucination is also *named*.

Over the descriptions (sums, not means of per-description rates):

* ``chair`` — hallucinated object words ÷ object words;
* ``cover`` — truth objects covered ÷ truth objects;
* ``hal`` — descriptions with at least one hallucinated object word ÷ descriptions;
* ``cog`` — ``hallu`` objects named ÷ ``hallu`` objects: how often a model names the objects it is expected to
  hallucinate by association. **Lower is better**, like CHAIR and Hal (the paper marks it ``Cog↓``: a higher Cog
  is more cognition-like hallucination, not more cognition).

**Discriminative** (yes/no questions), over all of them, per dimension (existence, attribute, relation) and per
attribute kind (state, number, action), with AMBER's positive class **"no"** (the reference counts precision over
the answers "No" and recall over the questions whose truth is "no"): precision = questions answered "no" whose
truth is "no" ÷ questions answered "no"; recall = the same ÷ questions whose truth is "no"; F1 their harmonic mean;
accuracy = answers equal to the truth ÷ questions. An unreadable answer is wrong and is not a "no".

**AMBER score** = (100 − CHAIR + F1) / 2, with CHAIR and the F1 over every discriminative question in percent (it
reproduces the release's results table: LLaVA-1.5's CHAIR 7.8 and F1 74.7 give 83.5).

Where the kit's reading differs from the reference's:

* the reference keeps only the words NLTK's part-of-speech tagger reads as nouns and lemmatises them with WordNet;
  the kit (no NLTK data can be downloaded where it runs) keeps every vocabulary word whatever its part of speech —
  "orange" as a colour, "line" or "sign" as verbs, "light" as an adjective count here — and folds plurals with
  ``inflect`` onto vocabulary words (:func:`hadpo.eval.words.fold_word`), which agrees with WordNet on regular and
  the common irregular plurals ("men", "mice", "knives") but may differ on rare ones;
* the reference does not lower-case, so a noun written with a capital ("Dogs play") is no vocabulary word there;
  the kit lower-cases;
* the reference also takes a word whose spaCy vector lies within 0.8 cosine of a truth word (or of its
  associations) as covering it, and of a ``hallu`` word as naming it; the kit has no word vectors and matches
  exactly (after plural folding), so a near-synonym outside the vocabulary's associations counts as a
  hallucination here where the reference may not;
* the reference rounds precision and recall to 0.1 % before the F1 and adds 0.0001 (0.001 for existence) to its
  denominator; the kit's F1 is exact;
* a yes/no answer is read with the stage's ``rule``: ``exact`` is the reference's (the answer is exactly "Yes" or
  "No"), ``pope`` POPE's reading of a free answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hadpo.data.amber_files import ATTRIBUTE_KINDS, AmberAnnotation
from hadpo.eval.amber.words import Vocabulary

#: The discriminative dimensions, in AMBER's order.
DIMENSION_NAMES = ("existence", "attribute", "relation")
#: The attribute kinds, in AMBER's order (keys ``attribute_<kind>`` of the discriminative metrics).
ATTRIBUTE_KIND_NAMES = tuple(ATTRIBUTE_KINDS.values())
#: How a yes/no answer may be read.
RULES = ("pope", "exact")


@dataclass(frozen=True)
class GenerativeItem:
    """One description's counts (a ``scores.jsonl`` record of kind ``generative``)."""

    query_id: int
    #: The object words, in order; the hallucinated ones among them.
    object_words: tuple[str, ...]
    hallucinated_words: tuple[str, ...]
    #: Truth objects, and how many of them the description covers; likely hallucinations, and how many it names.
    truth: int
    covered: int
    hallu: int
    named: int

    @property
    def objects(self) -> int:
        """Object words (safe words included)."""
        return len(self.object_words)

    @property
    def hallucinated(self) -> int:
        """Hallucinated object words."""
        return len(self.hallucinated_words)

    def record(self) -> dict[str, Any]:
        """The ``scores.jsonl`` record: the counts the set's measures (and their bootstrap) sum."""
        return {"id": self.query_id, "kind": "generative", "objects": self.objects,
                "hallucinated": self.hallucinated, "truth": self.truth, "covered": self.covered,
                "hallu": self.hallu, "named": self.named, "object_words": list(self.object_words),
                "hallucinated_words": list(self.hallucinated_words)}


def owners(objects: Sequence[str], association: Mapping[str, tuple[str, ...]]) -> dict[str, int]:
    """Word → index of the annotated object it stands for, in the reference's search order: every object's
    associated words first (object by object), then the objects themselves; the first match wins."""
    found: dict[str, int] = {}
    for index, word in enumerate(objects):
        for related in association.get(word, ()):
            found.setdefault(related, index)
    for index, word in enumerate(objects):
        found.setdefault(word, index)
    return found


def score_generative(query_id: int, text: str, annotation: AmberAnnotation, vocabulary: Vocabulary
                     ) -> GenerativeItem:
    """One description against its annotation (see the module docstring)."""
    truth, hallu = tuple(annotation.truth), annotation.hallu
    truth_owner = owners(truth, vocabulary.association)
    hallu_owner = owners(hallu, vocabulary.association)
    covered: set[int] = set()
    named: set[int] = set()
    words = vocabulary.object_words(text)
    hallucinated: list[str] = []
    for word in words:
        if word in vocabulary.safe_words:
            continue
        if word in truth_owner:
            covered.add(truth_owner[word])
            continue
        if word in hallu_owner:
            named.add(hallu_owner[word])
        hallucinated.append(word)
    return GenerativeItem(query_id, tuple(words), tuple(hallucinated), len(truth), len(covered), len(hallu),
                          len(named))


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def generative_metrics(items: Sequence[GenerativeItem]) -> dict[str, Any]:
    """CHAIR, Cover, Hal and Cog (fractions) over the descriptions, with the counts behind them."""
    objects = sum(i.objects for i in items)
    hallucinated = sum(i.hallucinated for i in items)
    return {
        "descriptions": len(items),
        "chair": _ratio(hallucinated, objects),
        "cover": _ratio(sum(i.covered for i in items), sum(i.truth for i in items)),
        "hal": _ratio(sum(1 for i in items if i.hallucinated), len(items)),
        "cog": _ratio(sum(i.named for i in items), sum(i.hallu for i in items)),
        "object_words": objects,
        "hallucinated_words": hallucinated,
        "object_words_per_description": _ratio(objects, len(items)),
    }


def read_yes_no(answer: str, rule: str) -> str | None:
    """``yes``, ``no`` or None (unreadable). ``exact`` is the reference's reading (the answer is exactly "Yes" or
    "No", anything else unreadable); ``pope`` is POPE's (no / not among the first sentence's words → no, else
    yes)."""
    if rule == "exact":
        return {"Yes": "yes", "No": "no"}.get(answer)
    if rule == "pope":
        from hadpo.eval.pope.score import parse_pope

        return parse_pope(answer)
    raise ValueError(f"unknown yes/no rule {rule!r}; expected one of {', '.join(RULES)}")


def discriminative_counts(pairs: Iterable[tuple[str, str | None]]) -> dict[str, Any]:
    """Accuracy, precision, recall and F1 with "no" as the positive class, from ``(truth, prediction)`` pairs."""
    pairs = list(pairs)
    tp = sum(1 for t, p in pairs if t == "no" and p == "no")
    answered_no = sum(1 for _, p in pairs if p == "no")
    truth_no = sum(1 for t, _ in pairs if t == "no")
    precision, recall = _ratio(tp, answered_no), _ratio(tp, truth_no)
    return {"questions": len(pairs), "accuracy": _ratio(sum(1 for t, p in pairs if t == p), len(pairs)),
            "precision": precision, "recall": recall, "f1": _ratio(2 * precision * recall, precision + recall),
            "truth_no": truth_no, "answered_no": answered_no, "unreadable": sum(1 for _, p in pairs if p is None)}


def discriminative_metrics(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The discriminative measures from ``scores.jsonl``'s discriminative records: ``all``, each dimension present
    and each attribute kind present (``attribute_state``, ``attribute_number``, ``attribute_action``)."""
    out: dict[str, Any] = {"all": discriminative_counts((r["truth"], r["prediction"]) for r in records)}
    groups = [(d, lambda r, d=d: r["dimension"] == d) for d in DIMENSION_NAMES]
    groups += [(f"attribute_{k}", lambda r, k=k: ATTRIBUTE_KINDS.get(r["type"]) == k) for k in ATTRIBUTE_KIND_NAMES]
    for name, member in groups:
        chosen = [(r["truth"], r["prediction"]) for r in records if member(r)]
        if chosen:
            out[name] = discriminative_counts(chosen)
    return out


def amber_score(chair: float, f1: float) -> float:
    """AMBER's single number in percent, (100 − CHAIR + F1) / 2, from CHAIR and F1 as fractions."""
    return 100.0 * (1.0 - chair + f1) / 2.0


def table_row(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The headline numbers of a run's ``metrics.json`` in percent: the generative measures, accuracy and F1 over
    every question, F1 per dimension, the AMBER score (absent parts are left out)."""
    row: dict[str, float] = {}
    generative = metrics.get("generative")
    if generative:
        row.update({"CHAIR (%)": 100 * generative["chair"], "Cover (%)": 100 * generative["cover"],
                    "Hal (%)": 100 * generative["hal"], "Cog (%)": 100 * generative["cog"]})
    discriminative = metrics.get("discriminative")
    if discriminative:
        row["Acc (%)"] = 100 * discriminative["all"]["accuracy"]
        row["F1 (%)"] = 100 * discriminative["all"]["f1"]
        for dimension in DIMENSION_NAMES:
            if dimension in discriminative:
                row[f"F1 {dimension} (%)"] = 100 * discriminative[dimension]["f1"]
    if metrics.get("amber_score") is not None:
        row["AMBER score"] = metrics["amber_score"]
    return row
