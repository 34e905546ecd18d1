"""AMBER's measures, LLM-free, as its reference evaluation defines them (``inference.py`` of the release).

**Generative** (one description per image). The description's object words are its words that belong to AMBER's
object vocabulary (every key and associated word of ``relation.json``), plurals folded to the singular, each
occurrence counted. An object word is *safe* when it is a global safe word; *covered* when it is one of the
image's ``truth`` objects or a word associated with one (the truth object is then covered); otherwise it is
*hallucinated*, and when it is one of the ``hallu`` objects or associated with one, that likely hallucination is
*named*. Over the set:

* ``chair`` — hallucinated object words ÷ object words (safe words count in the denominator, as in the reference);
* ``cover`` — truth objects covered ÷ truth objects;
* ``hal`` — descriptions with at least one hallucinated object word ÷ descriptions;
* ``cog`` — ``hallu`` objects named ÷ ``hallu`` objects: how often the model names the objects it is expected to
  hallucinate by association. **Lower is better**, like CHAIR and Hal (a higher Cog means more cognition-driven
  hallucination, not more cognition).

**Discriminative** (yes/no questions), per dimension (existence, attribute, relation) and over all of them, with
AMBER's positive class **"no"**: precision = questions answered "no" whose truth is "no" ÷ answers "no"; recall =
answers "no" among questions whose truth is "no" ÷ those questions; F1 their harmonic mean; accuracy.

**AMBER score** = (100 − CHAIR + F1) / 2, CHAIR and the overall discriminative F1 in percent.

Where the kit's reading differs from the reference: the reference keeps the nouns of NLTK's part-of-speech tagger
and WordNet lemmatiser and also accepts a word whose spaCy vector is within 0.8 cosine of an annotated one; the kit
(no NLTK or spaCy data can be downloaded where it runs) keeps every vocabulary word whatever its part of speech
and folds plurals with ``inflect`` (:func:`hadpo.eval.words.fold_word`), with no vector similarity. The
reference's F1 adds 0.0001 (0.001 for existence) to its denominator; the kit's F1 is exact. A yes/no answer is
read with the ``rule`` of the stage (``exact``: the reference's exact "Yes" / "No").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hadpo.data.amber_files import AmberAnnotation
from hadpo.eval.words import fold_word

_WORD = re.compile(r"[a-z]+")
#: The discriminative dimensions, in AMBER's order.
DIMENSION_NAMES = ("existence", "attribute", "relation")


@dataclass(frozen=True)
class Vocabulary:
    """AMBER's object vocabulary: the word associations and the global safe words."""

    association: Mapping[str, tuple[str, ...]]
    safe_words: frozenset[str]

    @property
    def words(self) -> frozenset[str]:
        """Every word that can be an object word: the keys of the associations and their associated words."""
        return frozenset(self.association) | frozenset(w for related in self.association.values() for w in related)

    def object_words(self, text: str) -> list[str]:
        """The object words of ``text``, in order, each occurrence (plurals folded onto vocabulary words)."""
        vocabulary = self.words
        folded = (fold_word(w, vocabulary) for w in _WORD.findall(text.lower()))
        return [w for w in folded if w in vocabulary]


@dataclass(frozen=True)
class GenerativeItem:
    """One description's counts (a ``scores.jsonl`` record of kind ``generative``)."""

    query_id: int
    objects: int
    hallucinated: int
    truth: int
    covered: int
    hallu: int
    named: int

    def record(self) -> dict[str, Any]:
        return {"id": self.query_id, "kind": "generative", "objects": self.objects,
                "hallucinated": self.hallucinated, "truth": self.truth, "covered": self.covered,
                "hallu": self.hallu, "named": self.named}


def _owners(objects: Sequence[str], association: Mapping[str, tuple[str, ...]]) -> dict[str, int]:
    """Word → index of the first annotated object it names (the object itself, or a word associated with it)."""
    owners: dict[str, int] = {}
    for index, word in enumerate(objects):
        owners.setdefault(word, index)
    for index, word in enumerate(objects):
        for related in association.get(word, ()):
            owners.setdefault(related, index)
    return owners


def score_generative(query_id: int, text: str, annotation: AmberAnnotation, vocabulary: Vocabulary
                     ) -> GenerativeItem:
    """One description against its annotation (see the module docstring)."""
    truth, hallu = list(annotation.truth), list(annotation.hallu)
    truth_owner = _owners(truth, vocabulary.association)
    hallu_owner = _owners(hallu, vocabulary.association)
    covered: set[int] = set()
    named: set[int] = set()
    words = vocabulary.object_words(text)
    hallucinated = 0
    for word in words:
        if word in vocabulary.safe_words:
            continue
        if word in truth_owner:
            covered.add(truth_owner[word])
            continue
        if word in hallu_owner:
            named.add(hallu_owner[word])
        hallucinated += 1
    return GenerativeItem(query_id, len(words), hallucinated, len(truth), len(covered), len(hallu), len(named))


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def generative_metrics(items: Sequence[GenerativeItem]) -> dict[str, Any]:
    """CHAIR, Cover, Hal and Cog (fractions) over the descriptions."""
    return {
        "descriptions": len(items),
        "chair": _ratio(sum(i.hallucinated for i in items), sum(i.objects for i in items)),
        "cover": _ratio(sum(i.covered for i in items), sum(i.truth for i in items)),
        "hal": _ratio(sum(1 for i in items if i.hallucinated), len(items)),
        "cog": _ratio(sum(i.named for i in items), sum(i.hallu for i in items)),
        "objects_per_description": _ratio(sum(i.objects for i in items), len(items)),
    }


def read_yes_no(answer: str, rule: str) -> str | None:
    """``yes``, ``no`` or None (unreadable): ``exact`` is the reference's (the answer is exactly "Yes" or "No");
    ``pope`` is POPE's reading (no / not among the first sentence's words → no, anything else → yes)."""
    if rule == "exact":
        return {"Yes": "yes", "No": "no"}.get(answer)
    if rule == "pope":
        from hadpo.eval.pope.score import parse_pope

        return parse_pope(answer)
    raise ValueError(f"unknown yes/no rule {rule!r}; expected exact or pope")


def discriminative_counts(pairs: Iterable[tuple[str, str | None]]) -> dict[str, Any]:
    """Accuracy, precision, recall and F1 with "no" as the positive class, from ``(truth, prediction)`` pairs."""
    pairs = list(pairs)
    tp = sum(1 for t, p in pairs if t == "no" and p == "no")
    answered_no = sum(1 for _, p in pairs if p == "no")
    truth_no = sum(1 for t, _ in pairs if t == "no")
    precision, recall = _ratio(tp, answered_no), _ratio(tp, truth_no)
    return {"questions": len(pairs), "accuracy": _ratio(sum(1 for t, p in pairs if t == p), len(pairs)),
            "precision": precision, "recall": recall, "f1": _ratio(2 * precision * recall, precision + recall),
            "unreadable": sum(1 for _, p in pairs if p is None)}


def discriminative_metrics(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The discriminative measures overall and per dimension from ``scores.jsonl``'s discriminative records."""
    out: dict[str, Any] = {"all": discriminative_counts((r["truth"], r["prediction"]) for r in records)}
    for dimension in DIMENSION_NAMES:
        chosen = [(r["truth"], r["prediction"]) for r in records if r["dimension"] == dimension]
        if chosen:
            out[dimension] = discriminative_counts(chosen)
    return out


def amber_score(chair: float, f1: float) -> float:
    """AMBER's single number, in percent: (100 − CHAIR + F1) / 2 from fractions."""
    return 100.0 * (1.0 - chair + f1) / 2.0
