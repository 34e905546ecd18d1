"""Readers of AMBER's released files (Wang et al., 2023), validated: the queries, the annotations, the word
associations and the safe words, as ``junyangwang0410/AMBER`` ships them under ``data/``.

* ``query/query_*.json`` — ``[{"id", "image": "AMBER_<n>.jpg", "query"}]``;
* ``annotations.json`` — a list whose record ``id - 1`` annotates query ``id``: ``type`` (``generative``,
  ``discriminative-hallucination`` (existence), ``discriminative-attribute-{state,number,action}``,
  ``discriminative-relation`` or ``relation``), ``truth`` (the objects in the image, or ``yes``/``no``) and, for a
  generative item, ``hallu`` (objects a model is likely to hallucinate there);
* ``relation.json`` — each object word → the words associated with it (every annotated object is a key);
* ``safe_words.txt`` — one word per line that is never counted as a hallucination.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hadpo.data.fields import Fields, UniqueIds, describe
from hadpo.errors import DataError
from hadpo.io import read_json

GENERATIVE = "generative"
#: Annotation type → AMBER's discriminative dimension.
DIMENSIONS = {
    "discriminative-hallucination": "existence",
    "discriminative-attribute-state": "attribute",
    "discriminative-attribute-number": "attribute",
    "discriminative-attribute-action": "attribute",
    "discriminative-relation": "relation",
    "relation": "relation",
}
#: The query files of the release, by the evaluation they hold.
QUERY_FILES = {"all": "query_all.json", "generative": "query_generative.json",
               "discriminative": "query_discriminative.json"}


@dataclass(frozen=True)
class AmberQuery:
    """One query: its id, the image file name and the text the model is asked."""

    query_id: int
    image: str
    query: str


@dataclass(frozen=True)
class AmberAnnotation:
    """The annotation of one query: its type, truth (object words, or ``yes``/``no``) and likely hallucinations."""

    query_id: int
    kind: str
    truth: tuple[str, ...] | str
    hallu: tuple[str, ...]

    @property
    def generative(self) -> bool:
        return self.kind == GENERATIVE

    @property
    def dimension(self) -> str:
        """``generative``, or the discriminative dimension: existence, attribute or relation."""
        return GENERATIVE if self.generative else DIMENSIONS[self.kind]


def _list(path: Path) -> list:
    data = read_json(path)
    if not isinstance(data, list) or not data:
        raise DataError(path, f"expected a non-empty JSON list, got {describe(data)}")
    return data


def read_amber_queries(path: str | Path) -> list[AmberQuery]:
    """The queries of a ``query_*.json`` file, in file order (ids unique)."""
    path = Path(path)
    out, ids = [], UniqueIds("query id")
    for index, record in enumerate(_list(path)):
        if not isinstance(record, dict):
            raise DataError(path, f"expected a JSON object, got {describe(record)}", record=index)
        fields = Fields(path, record, record=index)
        query = AmberQuery(fields.integer("id", minimum=1), fields.text("image", nonempty=True),
                           fields.text("query", nonempty=True))
        ids.add(query.query_id, fields, "id")
        out.append(query)
    return out


def read_amber_annotations(path: str | Path) -> dict[int, AmberAnnotation]:
    """Query id → annotation; record ``i`` must carry ``id`` ``i + 1`` (the reference looks records up by position)."""
    path = Path(path)
    out: dict[int, AmberAnnotation] = {}
    for index, record in enumerate(_list(path)):
        if not isinstance(record, dict):
            raise DataError(path, f"expected a JSON object, got {describe(record)}", record=index)
        fields = Fields(path, record, record=index)
        query_id = fields.integer("id", minimum=1)
        if query_id != index + 1:
            raise fields.error(f"record {index} has id {query_id}; the annotations are looked up by position, so it "
                               f"must be {index + 1}", "id")
        kind = fields.text("type", nonempty=True)
        if kind == GENERATIVE:
            truth: tuple[str, ...] | str = tuple(_words(fields, "truth"))
            hallu = tuple(_words(fields, "hallu"))
        elif kind in DIMENSIONS:
            truth = fields.text("truth", nonempty=True).strip().lower()
            if truth not in ("yes", "no"):
                raise fields.error(f"a discriminative truth is 'yes' or 'no', got {truth!r}", "truth")
            hallu = ()
        else:
            raise fields.error(f"unknown type {kind!r} (generative or one of {', '.join(DIMENSIONS)})", "type")
        out[query_id] = AmberAnnotation(query_id, kind, truth, hallu)
    return out


def _words(fields: Fields, key: str) -> list[str]:
    values = fields.items(key)
    if not all(isinstance(v, str) and v.strip() for v in values):
        raise fields.error("expected a list of non-empty words", key)
    return [v.strip().lower() for v in values]


def read_amber_association(path: str | Path) -> dict[str, tuple[str, ...]]:
    """``relation.json``: object word → its associated words."""
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict) or not data:
        raise DataError(path, f"expected a non-empty JSON object of word lists, got {describe(data)}")
    out = {}
    for word, related in data.items():
        if not isinstance(related, list) or not all(isinstance(r, str) for r in related):
            raise DataError(path, f"expected a list of words, got {describe(related)}", record=word)
        out[word.strip().lower()] = tuple(r.strip().lower() for r in related)
    return out


def read_safe_words(path: str | Path) -> frozenset[str]:
    """``safe_words.txt``: one word per line (blank lines ignored)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not UTF-8 text: {exc}") from None
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


def check_amber(queries: list[AmberQuery], annotations: dict[int, AmberAnnotation],
                association: dict[str, tuple[str, ...]], *, annotation_file: str | Path,
                association_file: str | Path) -> None:
    """Every query is annotated, and every object word of a generative annotation has its associations listed."""
    for query in queries:
        annotation = annotations.get(query.query_id)
        if annotation is None:
            raise DataError(annotation_file, "query has no annotation", record=query.query_id)
        if annotation.generative:
            for key, words in (("truth", annotation.truth), ("hallu", annotation.hallu)):
                missing = [w for w in words if w not in association]
                if missing:
                    raise DataError(association_file, f"object word {missing[0]!r} of query {query.query_id}'s "
                                    f"{key} is not a key", record=missing[0])
