"""Plural folding for object-word matching (CHAIR's mentions, AMBER's object words), without NLTK.

NLTK's tagger and WordNet data cannot be downloaded where the kit runs, so plurals are folded with ``inflect``'s
rules, and only onto a known vocabulary: a word becomes its singular when the singular is a vocabulary word and the
word itself is not ("buses" → "bus", while "bus" and "glass" stay, and a verb such as "is" is never touched, where
``inflect`` alone would make "is" into "i").
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from typing import Any


@functools.lru_cache(maxsize=1)
def _engine() -> Any:
    import inflect

    return inflect.engine()


@functools.lru_cache(maxsize=65536)
def singular(word: str) -> str | None:
    """``inflect``'s singular of ``word``, or None when it reads the word as singular already."""
    folded = _engine().singular_noun(word)
    return folded if isinstance(folded, str) else None


def fold_word(word: str, vocabulary: Collection[str]) -> str:
    """``word``, or its singular when that is in ``vocabulary`` and ``word`` is not."""
    if word in vocabulary:
        return word
    folded = singular(word)
    return folded if folded is not None and folded in vocabulary else word
