"""Readers of AMBER's released files (Wang et al., 2023), validated: the queries, the annotations, the word
associations, the safe words and a model's answers, as ``junyangwang0410/AMBER`` ships them under ``data/``.

* ``query/query_*.json`` — ``[{"id", "image": "AMBER_<n>.jpg", "query"}]``: ``query_all.json`` (ids 1–15220),
  ``query_generative.json`` (1–1004, each "Describe this image."), ``query_discriminative.json`` and its three
  parts ``query_discriminative-{existence,attribute,relation}.json``;
* ``annotations.json`` — a list whose record ``i`` annotates query ``i + 1`` (the reference evaluation looks a
  query up by position): ``type`` (``generative``; ``discriminative-hallucination``, the existence questions;
  ``discriminative-attribute-{state,number,action}``; ``discriminative-relation`` for relation questions whose
  truth is yes and ``relation`` for those whose truth is no), ``truth`` (the objects in the image, or ``yes`` /
  ``no``) and, for a generative item, ``hallu`` (objects a model is likely to hallucinate there);
* ``relation.json`` — each object word → the words associated with it (every annotated object is a key);
* ``safe_words.txt`` — one word per line that is never counted as a hallucination;
* a model's answers, the reference's input — ``[{"id", "response"}]``.

Words are read in lower case (the release's vocabulary has one upper-case entry, "TV"). An image name is taken as
written, whatever its extension (the shapes world's images are PNG files).
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
#: Attribute annotation type → the attribute kind the reference also reports on its own.
ATTRIBUTE_KINDS = {
    "discriminative-attribute-state": "state",
    "discriminative-attribute-number": "number",
    "discriminative-attribute-action": "action",
}
#: The release's query files, by the part of the benchmark they hold.
QUERY_FILES = {
    "all": "query_all.json",
    "generative": "query_generative.json",
    "discriminative": "query_discriminative.json",
    "existence": "query_discriminative-existence.json",
    "attribute": "query_discriminative-attribute.json",
    "relation": "query_discriminative-relation.json",
}
YES_NO = ("yes", "no")


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
    hallu: tuple[str, ...] = ()

    @property
    def generative(self) -> bool:
        """Whether the query asks for a description."""
        return self.kind == GENERATIVE

    @property
    def dimension(self) -> str:
        """``generative``, or the discriminative dimension: existence, attribute or relation."""
        return GENERATIVE if self.generative else DIMENSIONS[self.kind]

    @property
    def attribute_kind(self) -> str | None:
        """``state``, ``number`` or ``action`` for an attribute question, else None."""
        return ATTRIBUTE_KINDS.get(self.kind)


def release_files(data_dir: str | Path, queries: str = "all") -> dict[str, Path]:
    """Where the release's files lie under its ``data/`` folder: ``queries`` (the query file of ``queries``, a key
    of :data:`QUERY_FILES`), ``annotations``, ``association`` (``relation.json``) and ``safe_words``."""
    data = Path(data_dir)
    return {"queries": data / "query" / QUERY_FILES[queries], "annotations": data / "annotations.json",
            "association": data / "relation.json", "safe_words": data / "safe_words.txt"}


def _records(path: Path) -> list[Fields]:
    """The records of a file holding a non-empty JSON list of objects."""
    data = read_json(path)
    if not isinstance(data, list) or not data:
        raise DataError(path, f"expected a non-empty JSON list of objects, got {describe(data)}")
    return [Fields.of(path, record, record=index) for index, record in enumerate(data)]


def read_amber_queries(path: str | Path) -> list[AmberQuery]:
    """The queries of a ``query_*.json`` file, in file order (ids unique)."""
    path = Path(path)
    out, ids = [], UniqueIds("query id")
    for fields in _records(path):
        query_id = fields.integer("id", minimum=1)
        ids.add(query_id, fields, "id")
        out.append(AmberQuery(query_id, fields.text("image", nonempty=True), fields.text("query", nonempty=True)))
    return out


def read_amber_annotations(path: str | Path) -> dict[int, AmberAnnotation]:
    """Query id → annotation; record ``i`` must carry ``id`` ``i + 1`` (the reference looks records up by position)."""
    path = Path(path)
    out: dict[int, AmberAnnotation] = {}
    for index, fields in enumerate(_records(path)):
        query_id = fields.integer("id", minimum=1)
        if query_id != index + 1:
            raise fields.error(f"record {index} has id {query_id}; the annotations are looked up by position, so it "
                               f"must be {index + 1}", "id")
        kind = fields.text("type", nonempty=True)
        if kind == GENERATIVE:
            out[query_id] = AmberAnnotation(query_id, kind, _words(fields, "truth"), _words(fields, "hallu"))
        elif kind in DIMENSIONS:
            out[query_id] = AmberAnnotation(query_id, kind, fields.choice("truth", YES_NO))
        else:
            raise fields.error(f"unknown type {kind!r} (generative or one of {', '.join(DIMENSIONS)})", "type")
    return out


def _words(fields: Fields, key: str) -> tuple[str, ...]:
    return tuple(w.strip().lower() for w in fields.strings(key, nonempty=False))


def read_amber_association(path: str | Path) -> dict[str, tuple[str, ...]]:
    """``relation.json``: object word → its associated words."""
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, dict) or not data:
        raise DataError(path, f"expected a non-empty JSON object of word lists, got {describe(data)}")
    out = {}
    for word, related in data.items():
        if not word.strip():
            raise DataError(path, "an object word must not be empty", record=word)
        if not isinstance(related, list):
            raise DataError(path, f"expected a list of words, got {describe(related)}", record=word)
        for i, other in enumerate(related):
            if not isinstance(other, str) or not other.strip():
                raise DataError(path, f"expected a non-empty word, got {describe(other)}", record=word,
                                field=f"[{i}]")
        out[word.strip().lower()] = tuple(r.strip().lower() for r in related)
    return out


def read_safe_words(path: str | Path) -> frozenset[str]:
    """``safe_words.txt``: one word per line (blank lines ignored)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(path.absolute(), "file not found") from None
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not UTF-8 text: {exc}") from None
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


def read_amber_responses(path: str | Path) -> dict[int, str]:
    """A model's answers in the reference's input format, ``[{"id": <query id>, "response": <text>}]``."""
    path = Path(path)
    out: dict[int, str] = {}
    ids = UniqueIds("query id")
    for fields in _records(path):
        query_id = fields.integer("id", minimum=1)
        ids.add(query_id, fields, "id")
        out[query_id] = fields.text("response")
    return out


def check_amber(queries: list[AmberQuery], annotations: dict[int, AmberAnnotation],
                association: dict[str, tuple[str, ...]], *, annotation_file: str | Path,
                association_file: str | Path) -> None:
    """Every query is annotated, and every object word of a generative annotation is a key of the associations
    (the reference fails on one that is not)."""
    for query in queries:
        annotation = annotations.get(query.query_id)
        if annotation is None:
            raise DataError(annotation_file, f"query {query.query_id} has no annotation (the file has "
                            f"{len(annotations)} records)")
        if annotation.generative:
            for key, words in (("truth", annotation.truth), ("hallu", annotation.hallu)):
                missing = [w for w in words if w not in association]
                if missing:
                    raise DataError(association_file, f"object {missing[0]!r} of annotation {query.query_id}'s "
                                    f"{key} has no entry")
