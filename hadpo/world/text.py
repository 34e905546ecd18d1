"""The shapes world's sentence grammar: captions, existence questions and answers, and their parsers.

Everything that writes or reads world text goes through here (the corpus generator, the offline oracle judge,
hallucination mining), so the three always agree on what a sentence means. Objects are named by category name
("red circle") and placed by column index: 0 = left, 1 = middle, 2 = right.

The functions are pure and cheap; the parsers tolerate case, extra whitespace and a missing final period,
since model output is rarely exact.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

#: Column names, by column index.
COLUMNS: tuple[str, ...] = ("left", "middle", "right")

#: How a caption places an object in each column.
COLUMN_PHRASES: tuple[str, ...] = ("on the left", "in the middle", "on the right")

_COUNT_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

# Words that turn a mention into a denial ("There is no red circle", "There is not a red circle").
_NEGATION = re.compile(r"\b(no|not|without|none)\b|n't\b")

# Column words a free-form sentence may use; "center"/"centre" are accepted for the middle.
_COLUMN_WORDS = (
    (0, re.compile(r"\bleft\b")),
    (1, re.compile(r"\b(middle|center|centre)\b")),
    (2, re.compile(r"\bright\b")),
)

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def article(name: str) -> str:
    """``"an"`` before a vowel sound, else ``"a"`` (``article("orange circle") == "an"``)."""
    return "an" if name[:1].lower() in "aeiou" else "a"


def with_article(name: str) -> str:
    """The name with its indefinite article: ``"an orange circle"``."""
    return f"{article(name)} {name}"


def column_phrase(column: int) -> str:
    """``"on the left"`` / ``"in the middle"`` / ``"on the right"`` for column 0 / 1 / 2."""
    if not 0 <= column < len(COLUMN_PHRASES):
        raise ValueError(f"column must be 0, 1 or 2, got {column!r}")
    return COLUMN_PHRASES[column]


def object_phrase(name: str, column: int) -> str:
    """A region phrase such as ``"a red circle on the left"`` (the VG region-description style)."""
    return f"{with_article(name)} {column_phrase(column)}"


def object_sentence(name: str, column: int) -> str:
    """One caption sentence: ``"There is a red circle on the left."``."""
    return f"There is {object_phrase(name, column)}."


#: Alternative phrasings of a caption sentence, as ``(with a column, without one)`` templates; ``{obj}`` is the
#: name with its article and ``{where}`` the column phrase (capitalised forms: ``{Obj}``, ``{Where}``). Style 0 is
#: :func:`object_sentence`. Every style reads back to the same ``(name, column)`` with :func:`parse_sentence`,
#: so a description can be reworded without changing what it claims.
SENTENCE_STYLES: tuple[tuple[str, str], ...] = (
    ("There is {obj} {where}.", "There is {obj}."),
    ("{Where}, there is {obj}.", "The image contains {obj}."),
    ("{Obj} is {where}.", "{Obj} is in the image."),
    ("I can see {obj} {where}.", "I can see {obj}."),
    ("The image shows {obj} {where}.", "The image shows {obj}."),
)


def styled_sentence(name: str, column: int | None, style: int = 0) -> str:
    """One sentence claiming ``name`` (at ``column``, or nowhere in particular when None) in phrasing ``style``.

    ``styled_sentence("red circle", 0, 1) == "On the left, there is a red circle."``; style 0 with a column is
    :func:`object_sentence`.
    """
    if not 0 <= style < len(SENTENCE_STYLES):
        raise ValueError(f"style must be in [0, {len(SENTENCE_STYLES) - 1}], got {style!r}")
    with_column, without_column = SENTENCE_STYLES[style]
    obj = with_article(name)
    where = column_phrase(column) if column is not None else ""
    template = with_column if column is not None else without_column
    return template.format(obj=obj, Obj=obj[0].upper() + obj[1:], where=where, Where=where[:1].upper() + where[1:])


def describe(objects: Iterable[tuple[str, int]]) -> str:
    """A caption: one :func:`object_sentence` per ``(name, column)``, ordered left to right."""
    return " ".join(object_sentence(name, column) for name, column in sorted(objects, key=lambda o: o[1]))


def question(name: str) -> str:
    """The existence question, as POPE asks it: ``"Is there a red circle in the image?"``."""
    return f"Is there {with_article(name)} in the image?"


def yes_answer(name: str) -> str:
    """The full-sentence positive answer: ``"Yes, there is a red circle in the image."``."""
    return f"Yes, there is {with_article(name)} in the image."


def no_answer(name: str) -> str:
    """The full-sentence negative answer: ``"No, there is no red circle in the image."``."""
    return f"No, there is no {name} in the image."


def count_fact(count: int) -> str:
    """A factual statement on the number of objects: ``"The image contains exactly two objects."``."""
    noun = "object" if count == 1 else "objects"
    word = _COUNT_WORDS[count] if 0 <= count < len(_COUNT_WORDS) else str(count)
    return f"The image contains exactly {word} {noun}."


def presence_fact(name: str, column: int) -> str:
    """A factual statement placing a present object: ``"A red circle is on the left."``."""
    phrase = f"{with_article(name)} is {column_phrase(column)}."
    return phrase[0].upper() + phrase[1:]


def absence_fact(name: str) -> str:
    """A factual statement denying an object: ``"There is no yellow cross in the image."``."""
    return f"There is no {name} in the image."


def split_sentences(text: str) -> list[str]:
    """Split a description into sentences at ``.``/``!``/``?`` followed by whitespace; blanks dropped."""
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


def _normalise(text: str) -> str:
    return " ".join(text.lower().split()).rstrip(".!? ")


def _first_mention(text: str, names: Sequence[str]) -> tuple[int, str] | None:
    """``(start, name)`` of the earliest category mention in normalised ``text`` (longest name wins a tie)."""
    best: tuple[int, str] | None = None
    for name in sorted(names, key=len, reverse=True):
        match = re.search(rf"\b{re.escape(name.lower())}\b", text)
        if match and (best is None or match.start() < best[0]):
            best = (match.start(), name)
    return best


def parse_sentence(sentence: str, categories: Iterable[str]) -> tuple[str, int | None] | None:
    """The object a sentence claims is present, as ``(name, column)``.

    ``column`` is None when the sentence names no column, or names more than one. The result is None when
    the sentence claims no known object: no category is named, or the first one is denied ("There is no
    red circle in the image."). Names come back spelled as in ``categories``.
    """
    names = list(categories)
    text = _normalise(sentence)
    mention = _first_mention(text, names)
    if mention is None:
        return None
    start, name = mention
    if _NEGATION.search(text[:start]):
        return None
    columns = [col for col, pattern in _COLUMN_WORDS if pattern.search(text)]
    return name, (columns[0] if len(columns) == 1 else None)


def parse_description(text: str, categories: Iterable[str]) -> list[tuple[str, tuple[str, int | None] | None]]:
    """``[(sentence, parse_sentence(sentence))]`` for every sentence of a description."""
    names = list(categories)
    return [(s, parse_sentence(s, names)) for s in split_sentences(text)]


def parse_question(text: str, categories: Iterable[str]) -> str | None:
    """The category an existence question asks about, or None if it names none."""
    mention = _first_mention(_normalise(text), list(categories))
    return mention[1] if mention else None
