"""CHAIR's synonym table: which words and phrases name which object category.

The file format (the kit's own table, ``coco_synonyms.txt`` beside this module, and any user-supplied file) is
one category per line, ``category: word, word, phrase, ...``; ``#`` comments and blank lines are ignored. The
reserved category ``-`` (:data:`NOT_AN_OBJECT`) lists phrases that contain a category's word but name no object of
it ("tennis court", "bus stop"): the matcher reads them as one unit and sets them aside, so their words are not
counted. A phrase may name one category only; a file that gives it two is an error naming both lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from hadpo.errors import DataError

#: The category of phrases that name no object.
NOT_AN_OBJECT = "-"
#: The kit's table for the 80 COCO categories.
COCO_TABLE = "coco_synonyms.txt"
#: The ``synonyms`` parameter's value naming the kit's COCO table.
BUILTIN = "coco"

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def phrase_words(text: str) -> tuple[str, ...]:
    """A phrase as the matcher sees it: lower-case words (letters, digits, an inner apostrophe)."""
    return tuple(_WORD.findall(text.lower()))


@dataclass(frozen=True)
class SynonymTable:
    """Phrases (as word tuples) → category, the categories in file order, and where the table came from."""

    phrases: dict[tuple[str, ...], str]
    categories: tuple[str, ...]
    source: str

    @property
    def longest(self) -> int:
        """Words in the longest phrase (how far the matcher looks ahead)."""
        return max((len(p) for p in self.phrases), default=1)

    @property
    def words(self) -> frozenset[str]:
        """Every word of every phrase: a plural is folded to its singular only when that lands on one of these."""
        return frozenset(w for p in self.phrases for w in p)

    def to_text(self) -> str:
        """The table in its file format (reads back equal)."""
        by_category: dict[str, list[str]] = {c: [] for c in (*self.categories, NOT_AN_OBJECT)}
        for phrase, category in self.phrases.items():
            by_category[category].append(" ".join(phrase))
        return "".join(f"{c}: {', '.join(p)}\n" for c, p in by_category.items() if p)


def parse_synonyms(text: str, source: str) -> SynonymTable:
    """Read a table in the file format (``source`` names it in errors)."""
    phrases: dict[tuple[str, ...], str] = {}
    first_line: dict[tuple[str, ...], int] = {}
    categories: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        category, colon, rest = line.partition(":")
        category = " ".join(category.split())
        if not colon or not category:
            raise DataError(source, "expected 'category: word, phrase, ...'", record=f"line {number}")
        if category != NOT_AN_OBJECT:
            if category in categories:
                raise DataError(source, f"category {category!r} listed twice", record=f"line {number}")
            categories.append(category)
        for item in rest.split(","):
            words = phrase_words(item)
            if not words:
                if item.strip():
                    raise DataError(source, f"phrase {item.strip()!r} has no word", record=f"line {number}")
                continue
            known = phrases.get(words)
            if known is not None and known != category:
                raise DataError(source, f"phrase {' '.join(words)!r} names {known!r} (line {first_line[words]}) and "
                                f"{category!r}", record=f"line {number}")
            phrases[words] = category
            first_line.setdefault(words, number)
    if not categories:
        raise DataError(source, "no category in the synonym table")
    return SynonymTable(phrases=phrases, categories=tuple(categories), source=source)


def load_synonyms(spec: str | Path) -> SynonymTable:
    """The table ``spec`` names: ``coco`` (the kit's table for the 80 COCO categories) or a file in the format."""
    if str(spec) == BUILTIN:
        text = resources.files("hadpo.eval.chair").joinpath(COCO_TABLE).read_text(encoding="utf-8")
        return parse_synonyms(text, f"{BUILTIN} (hadpo/eval/chair/{COCO_TABLE})")
    path = Path(spec)
    if not path.is_file():
        raise DataError(path, "synonym table not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not UTF-8 text: {exc}") from None
    return parse_synonyms(text, str(path))


def category_table(names: list[str] | tuple[str, ...], extra: dict[str, list[str]] | None = None) -> SynonymTable:
    """A table whose phrases are the category names themselves, plus ``extra`` phrases per category."""
    extra = extra or {}
    lines = [f"{name}: {', '.join([name, *extra.get(name, [])])}" for name in names]
    return parse_synonyms("\n".join(lines), "category names")
