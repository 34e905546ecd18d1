"""AMBER's released files read as they are: records in the release's shapes, and one-line errors naming the file,
the record and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hadpo.data.amber_files import (
    AmberAnnotation,
    AmberQuery,
    check_amber,
    read_amber_annotations,
    read_amber_association,
    read_amber_queries,
    read_amber_responses,
    read_safe_words,
    release_files,
)
from hadpo.errors import DataError

# Records as the release has them (the first generative item, an attribute question, a relation question).
GENERATIVE = {"id": 1, "type": "generative", "truth": ["sky", "forest", "person"], "hallu": ["cloud", "dog"]}
ATTRIBUTE = {"id": 2, "type": "discriminative-attribute-number", "truth": "no"}
RELATION = {"id": 3, "type": "relation", "truth": "no"}


def _json(path: Path, value: object) -> Path:
    path.write_text(json.dumps(value))
    return path


def _error(call, *args, **kwargs) -> DataError:
    with pytest.raises(DataError) as err:
        call(*args, **kwargs)
    assert "\n" not in str(err.value)  # one line
    return err.value


def test_queries_and_annotations_read_as_released(tmp_path: Path) -> None:
    queries = _json(tmp_path / "query_all.json", [
        {"id": 1, "image": "AMBER_1.jpg", "query": "Describe this image."},
        {"id": 2, "image": "AMBER_1.jpg", "query": "Are there two persons in this image?"},
        {"id": 3, "image": "AMBER_1.png", "query": "Is there direct contact between the person and grass?"}])
    assert read_amber_queries(queries)[2] == AmberQuery(3, "AMBER_1.png", "Is there direct contact between the "
                                                       "person and grass?")
    annotations = read_amber_annotations(_json(tmp_path / "annotations.json", [GENERATIVE, ATTRIBUTE, RELATION]))
    assert annotations[1] == AmberAnnotation(1, "generative", ("sky", "forest", "person"), ("cloud", "dog"))
    assert annotations[1].dimension == "generative" and annotations[1].attribute_kind is None
    assert (annotations[2].dimension, annotations[2].attribute_kind, annotations[2].truth) == ("attribute", "number",
                                                                                               "no")
    assert annotations[3].dimension == "relation" and not annotations[3].generative


def test_association_safe_words_and_responses(tmp_path: Path) -> None:
    association = read_amber_association(_json(tmp_path / "relation.json", {"sky": [], "TV": ["television"],
                                                                             "person": ["man", "woman"]}))
    assert association == {"sky": (), "tv": ("television",), "person": ("man", "woman")}  # read in lower case
    (tmp_path / "safe_words.txt").write_text("orange\n\nsign\nindividual")  # the release ends without a newline
    assert read_safe_words(tmp_path / "safe_words.txt") == {"orange", "sign", "individual"}
    responses = _json(tmp_path / "responses.json", [{"id": 1, "response": "A lake."}, {"id": 5, "response": "No"}])
    assert read_amber_responses(responses) == {1: "A lake.", 5: "No"}
    files = release_files(tmp_path / "AMBER" / "data", "relation")
    assert files["queries"] == tmp_path / "AMBER" / "data" / "query" / "query_discriminative-relation.json"
    assert files["association"].name == "relation.json" and files["annotations"].name == "annotations.json"


@pytest.mark.parametrize(("records", "record", "field", "reason"), [
    ([GENERATIVE, {**ATTRIBUTE, "id": 3}], 1, "id", "must be 2"),  # looked up by position
    ([GENERATIVE, {**ATTRIBUTE, "type": "discriminative-colour"}], 1, "type", "unknown type"),
    ([GENERATIVE, {**ATTRIBUTE, "truth": "Yes"}], 1, "truth", "expected one of 'yes', 'no'"),
    ([{**GENERATIVE, "truth": "sky"}], 0, "truth", "expected a list"),
    ([{**GENERATIVE, "hallu": ["cloud", ""]}], 0, "hallu[1]", "non-empty string"),
    ([{"id": 1, "type": "generative", "truth": ["sky"]}], 0, "hallu", "missing required field"),
])
def test_annotation_errors_name_record_and_field(tmp_path: Path, records, record, field, reason) -> None:
    path = _json(tmp_path / "annotations.json", records)
    err = _error(read_amber_annotations, path)
    assert (err.record, err.field) == (record, field) and reason in err.reason
    assert str(err).startswith(f"{path}, record {record}, field '{field}': ")


@pytest.mark.parametrize(("records", "record", "field", "reason"), [
    ([{"id": 1, "image": "AMBER_1.jpg", "query": "Describe this image."},
      {"id": 1, "image": "AMBER_2.jpg", "query": "Describe this image."}], 1, "id", "duplicate query id 1"),
    ([{"id": 1, "query": "Describe this image."}], 0, "image", "missing required field"),
    ([{"id": "1", "image": "AMBER_1.jpg", "query": "Describe this image."}], 0, "id", "expected an integer"),
    ([{"id": 1, "image": "AMBER_1.jpg", "query": " "}], 0, "query", "non-empty string"),
    (["Describe this image."], 0, None, "expected a JSON object"),
])
def test_query_errors_name_record_and_field(tmp_path: Path, records, record, field, reason) -> None:
    err = _error(read_amber_queries, _json(tmp_path / "query_all.json", records))
    assert (err.record, err.field) == (record, field) and reason in err.reason


def test_file_level_errors(tmp_path: Path) -> None:
    assert "non-empty JSON list" in _error(read_amber_queries, _json(tmp_path / "q.json", {"id": 1})).reason
    assert "non-empty JSON list" in _error(read_amber_annotations, _json(tmp_path / "a.json", [])).reason
    err = _error(read_amber_association, _json(tmp_path / "relation.json", {"sky": [], "person": "man"}))
    assert err.record == "person" and "expected a list of words" in err.reason
    err = _error(read_amber_association, _json(tmp_path / "relation.json", {"person": ["man", 3]}))
    assert (err.record, err.field) == ("person", "[1]")
    assert "file not found" in _error(read_safe_words, tmp_path / "missing.txt").reason
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9\n")
    assert "not UTF-8" in _error(read_safe_words, tmp_path / "latin1.txt").reason
    err = _error(read_amber_responses, _json(tmp_path / "r.json", [{"id": 1, "response": "A."}, {"id": 1,
                                                                                                 "response": "B."}]))
    assert (err.record, err.field) == (1, "id") and "duplicate" in err.reason
    err = _error(read_amber_responses, _json(tmp_path / "r.json", [{"id": 1, "response": None}]))
    assert (err.record, err.field) == (0, "response")


def test_check_amber_needs_every_query_annotated_and_every_object_associated(tmp_path: Path) -> None:
    queries = [AmberQuery(1, "AMBER_1.jpg", "Describe this image."), AmberQuery(2, "AMBER_1.jpg", "Is it?")]
    annotations = {1: AmberAnnotation(1, "generative", ("sky", "dog"), ("cat",))}
    association = {"sky": (), "dog": (), "cat": ()}
    err = _error(check_amber, queries, annotations, association, annotation_file="a.json",
                 association_file="relation.json")
    assert err.file == "a.json" and "query 2 has no annotation" in err.reason
    with pytest.raises(DataError, match=r"relation\.json: object 'cat' of annotation 1's hallu has no entry"):
        check_amber(queries[:1], annotations, {"sky": (), "dog": ()}, annotation_file="a.json",
                    association_file="relation.json")
    check_amber(queries[:1], annotations, association, annotation_file="a.json", association_file="relation.json")
