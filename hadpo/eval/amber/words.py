"""AMBER's object words in a description, read without NLTK: tokenise, fold plurals, match the vocabulary.

The vocabulary is every key and every associated word of ``relation.json``. A description is split into lower-case
words (letters and digits; a hyphen splits, so "e-book" and "e book" read alike), a word is folded to its singular
(:func:`hadpo.eval.words.fold_word`) when that singular is a vocabulary word and the word itself is not, and the
vocabulary's entries are matched greedily, longest first, left to right. Every match is one object word.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

from hadpo.eval.words import fold_word

_TOKEN = re.compile(r"[a-z0-9]+")


def tokens(text: str) -> tuple[str, ...]:
    """The lower-case words of ``text``."""
    return tuple(_TOKEN.findall(text.lower()))


@dataclass(frozen=True)
class Vocabulary:
    """AMBER's object vocabulary: each object word → its associated words, and the global safe words."""

    association: Mapping[str, tuple[str, ...]]
    safe_words: frozenset[str] = frozenset()

    @cached_property
    def words(self) -> frozenset[str]:
        """Every entry that can be an object word: the association keys and their associated words."""
        return frozenset(self.association) | frozenset(w for related in self.association.values() for w in related)

    @cached_property
    def _phrases(self) -> dict[tuple[str, ...], str]:
        """Entry as words → entry (an entry that reads as no word at all is left out)."""
        return {words: entry for entry in sorted(self.words) if (words := tokens(entry))}

    @cached_property
    def _token_words(self) -> frozenset[str]:
        return frozenset(w for phrase in self._phrases for w in phrase)

    @cached_property
    def _longest(self) -> int:
        return max((len(p) for p in self._phrases), default=1)

    def object_words(self, text: str) -> list[str]:
        """The vocabulary entries ``text`` names, in order, one per occurrence."""
        words = [fold_word(w, self._token_words) for w in tokens(text)]
        out: list[str] = []
        i = 0
        while i < len(words):
            for n in range(min(self._longest, len(words) - i), 0, -1):
                entry = self._phrases.get(tuple(words[i : i + n]))
                if entry is not None:
                    out.append(entry)
                    i += n
                    break
            else:
                i += 1
        return out
