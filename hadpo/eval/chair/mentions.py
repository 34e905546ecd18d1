"""Object mentions in a text, for CHAIR: tokenise, fold plurals, match the synonym table's longest phrase.

No tagger is used (NLTK's data cannot be downloaded where the kit runs): a text is split into lower-case words,
a word is folded to its singular (:func:`hadpo.eval.words.fold_word`) only when the singular is a word of the
table and the word itself is not (so "buses" becomes "bus", while "glass" and "bus" stay as they are and a verb
such as "is" is never touched), and the table's phrases are matched greedily, longest first, left to right. Every
match is a mention; a phrase of the table's "not an object" category is consumed and dropped.

Where this differs from the usual NLTK pipeline (its part-of-speech tagger and WordNet lemmatiser): a word is
matched whatever its part of speech, so "to orange" or "a mouse click" count as mentions of orange and mouse,
where a tagger might read a verb or a modifier; and plurals fold through ``inflect``'s rules, which agree with
WordNet on regular and the listed irregular nouns but may differ on rare ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from hadpo.eval.chair.synonyms import NOT_AN_OBJECT, SynonymTable, phrase_words
from hadpo.eval.words import fold_word


@dataclass(frozen=True)
class Mention:
    """One object mention: the category, the words as written (folded to singular) and their word position."""

    category: str
    phrase: str
    start: int


def text_words(text: str, table: SynonymTable) -> list[str]:
    """The words of ``text`` as the matcher reads them (lower case, plurals folded)."""
    vocabulary = table.words
    return [fold_word(w, vocabulary) for w in phrase_words(text)]


def find_mentions(text: str, table: SynonymTable) -> list[Mention]:
    """Every object mention in ``text``, in order (a category named twice is mentioned twice)."""
    words = text_words(text, table)
    out: list[Mention] = []
    i = 0
    while i < len(words):
        for n in range(min(table.longest, len(words) - i), 0, -1):
            phrase = tuple(words[i : i + n])
            category = table.phrases.get(phrase)
            if category is not None:
                if category != NOT_AN_OBJECT:
                    out.append(Mention(category, " ".join(phrase), i))
                i += n
                break
        else:
            i += 1
    return out


def mentioned_categories(text: str, table: SynonymTable) -> set[str]:
    """The distinct categories ``text`` mentions (how a caption adds to the ground truth)."""
    return {m.category for m in find_mentions(text, table)}
