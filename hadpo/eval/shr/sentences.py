"""Sentence splitting for SHR, exactly as the original: the unit a judge labels and the metrics count.

A description is split on every ``.`` (so "e.g." or "3.5" split too, as in the original), pieces are stripped,
empty ones dropped, and a piece is dropped when it is contained in a piece already kept (this covers exact
repeats, which beam search produces often). The judge sees the kept sentences numbered ``1. ...``; the
metrics count the same sentences with a ``.`` appended.
"""

from __future__ import annotations


def split_sentences(text: str) -> list[str]:
    """Kept sentences of ``text``, in order, without their final period."""
    kept: list[str] = []
    for piece in text.split("."):
        sentence = piece.strip()
        if not sentence or any(sentence in earlier for earlier in kept):
            continue
        kept.append(sentence)
    return kept


def judged_sentences(text: str) -> list[str]:
    """The sentences as recorded next to their judgement: each with a ``.`` appended."""
    return [f"{s}." for s in split_sentences(text)]


def numbered_sentences(sentences: list[str]) -> str:
    """``"1. first.\\n2. second."``: the block the judge is asked about."""
    return "\n".join(f"{i}. {s}" for i, s in enumerate(sentences, start=1))


def word_count(sentence: str) -> int:
    """Words in a sentence as the original counts them: pieces of a split on single spaces."""
    return len(sentence.split(" "))
