"""Typed field getters: values come back typed, and every failure names the file, record and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hadpo.data.fields import Fields, UniqueIds, describe, expect_list, jsonl_records, list_records
from hadpo.errors import DataError


def _fields(obj: object, **where: object) -> Fields:
    return Fields.of("data/x.json", obj, **where)  # type: ignore[arg-type]


def test_typed_getters_return_values() -> None:
    f = _fields(
        {"s": "a", "i": 3, "n": 1.5, "b": False, "id": 7, "sid": "12", "l": ["x", "y"], "c": "yes", "o": {"k": 1}},
        record=0,
    )
    assert f.text("s") == "a"
    assert f.integer("i", minimum=0) == 3
    assert f.number("n") == 1.5
    assert f.number("i") == 3
    assert f.boolean("b") is False
    assert f.ident("id") == "7"
    assert f.int_id("sid") == 12
    assert f.strings("l") == ("x", "y")
    assert f.choice("c", ("yes", "no")) == "yes"
    assert f.child("o").integer("k") == 1
    assert f.opt_text("absent") is None
    assert f.opt_integer("absent") is None
    assert f.opt_boolean("absent") is None


def test_optional_null_is_none() -> None:
    f = _fields({"coco_id": None, "answer": None})
    assert f.opt_integer("coco_id") is None
    assert f.opt_text("answer") is None


@pytest.mark.parametrize(
    ("obj", "call", "reason"),
    [
        ({}, lambda f: f.text("name"), "missing required field"),
        ({"name": 3}, lambda f: f.text("name"), "expected a string, got int 3"),
        ({"name": "  "}, lambda f: f.text("name", nonempty=True), "non-empty string"),
        ({"name": True}, lambda f: f.integer("name"), "expected an integer, got bool True"),
        ({"name": 1.0}, lambda f: f.integer("name"), "expected an integer, got float"),
        ({"name": -1}, lambda f: f.integer("name", minimum=0), ">= 0"),
        ({"name": "1"}, lambda f: f.number("name"), "expected a number"),
        ({"name": float("nan")}, lambda f: f.number("name"), "expected a number"),
        ({"name": 1}, lambda f: f.boolean("name"), "expected true or false"),
        ({"name": ""}, lambda f: f.ident("name"), "integer or non-empty string id"),
        ({"name": "a1"}, lambda f: f.int_id("name"), "expected an integer id"),
        ({"name": "maybe"}, lambda f: f.choice("name", ("yes", "no")), "one of 'yes', 'no'"),
        ({"name": {}}, lambda f: f.items("name"), "expected a list"),
        ({"name": []}, lambda f: f.items("name", nonempty=True), "non-empty list"),
        ({"name": "x"}, lambda f: f.child("name"), "expected a JSON object"),
    ],
)
def test_bad_values_name_file_record_and_field(obj: dict, call, reason: str) -> None:
    with pytest.raises(DataError) as err:
        call(_fields(obj, record=4))
    assert (err.value.record, err.value.field) == (4, "name")
    assert str(err.value).startswith("data/x.json, record 4, field 'name': ")
    assert reason in str(err.value)


def test_nested_fields_carry_their_path() -> None:
    f = _fields({"regions": [{"phrase": "a"}, {"phrase": 5}]}, record=2)
    regions = list(f.objects("regions"))
    assert regions[0].text("phrase") == "a"
    with pytest.raises(DataError) as err:
        regions[1].text("phrase")
    assert err.value.field == "regions[1].phrase"
    assert err.value.record == 2


def test_list_items_are_checked_one_by_one() -> None:
    with pytest.raises(DataError) as err:
        _fields({"chosen": ["ok", 3]}, record="17").strings("chosen")
    assert err.value.field == "chosen[1]"
    assert "record '17'" in str(err.value)


def test_unique_ids_point_at_the_first_occurrence() -> None:
    ids = UniqueIds("image id")
    ids.add(1, _fields({}, record=0), "image_id")
    assert 1 in ids and len(ids) == 1
    with pytest.raises(DataError) as err:
        ids.add(1, _fields({}, record=3), "image_id")
    assert err.value.record == 3
    assert "duplicate image id 1 (first seen at x.json, record 0)" in str(err.value)


def test_containers(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="expected a JSON list of things, got dict"):
        expect_list("f.json", {}, "things")
    with pytest.raises(DataError) as err:
        list(list_records("f.json", [{}, 3], "things"))
    assert err.value.record == 1
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": 1}\n\n[1]\n')
    with pytest.raises(DataError) as err:
        list(jsonl_records(path, "answer"))
    assert err.value.line == 3
    assert "expected a JSON object (answer), got list" in str(err.value)
    path.write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(DataError, match="line 2: invalid JSON"):
        list(jsonl_records(path, "answer"))


def test_describe_is_short() -> None:
    assert describe(None) == "null"
    assert describe([1, 2]) == "list of 2 item(s)"
    assert len(describe("x" * 500)) < 80
    assert json.loads(json.dumps(describe({"a": 1}))) == "dict of 1 item(s)"
