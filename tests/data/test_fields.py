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


@pytest.mark.parametrize(
    ("obj", "call", "reason"),
    [
        ({"name": 2**63}, lambda f: f.integer("name"), "integer of 19 digits does not fit in 64 bits"),
        ({"name": -(2**63) - 1}, lambda f: f.opt_integer("name"), "does not fit in 64 bits"),
        ({"name": 10**400}, lambda f: f.integer("name", minimum=0), "integer of 401 digits does not fit"),
        ({"name": 10**400}, lambda f: f.number("name"), "does not fit in 64 bits"),  # not an OverflowError
        ({"name": 2**64}, lambda f: f.ident("name"), "does not fit in 64 bits"),
        ({"name": 2**64}, lambda f: f.int_id("name"), "does not fit in 64 bits"),
        ({"name": "18446744073709551616"}, lambda f: f.int_id("name"), "does not fit in 64 bits"),
        ({"name": "1" * 5000}, lambda f: f.int_id("name"), "id of 5000 digits does not fit"),
        ({"name": "\u0663"}, lambda f: f.int_id("name"), "expected an integer id"),  # an Arabic-Indic 3
        ({"name": 1_000_001}, lambda f: f.integer("name", maximum=1_000_000), "<= 1000000"),
        ({"name": float("inf")}, lambda f: f.number("name"), "expected a number, got float inf"),
        ({"name": 0}, lambda f: f.number("name", greater_than=0), "expected a number > 0, got 0"),
        ({"name": 2.5}, lambda f: f.number("name", maximum=2), "expected a number <= 2, got 2.5"),
    ],
)
def test_out_of_range_numbers_name_file_record_and_field(obj: dict, call, reason: str) -> None:
    with pytest.raises(DataError) as err:
        call(_fields(obj, record=4))
    assert (err.value.record, err.value.field) == (4, "name")
    assert reason in str(err.value)


def test_box_is_positive_finite_and_bounded() -> None:
    box = ("x", "y", "w", "h")
    assert _fields({"x": -3, "y": 0, "w": 1.5, "h": 2}).box(box) == (-3, 0, 1.5, 2)
    for change, field, reason in [
        ({"w": 0}, "w", "> 0"),
        ({"h": -4}, "h", "> 0"),
        ({"x": -1}, "x", ">= 0"),  # with origin_minimum=0
        ({"y": 1e300}, "y", "<= 1000000"),
        ({"w": float("nan")}, "w", "expected a number"),
    ]:
        with pytest.raises(DataError, match=reason) as err:
            _fields({"x": 0, "y": 0, "w": 1, "h": 1, **change}, record=2).box(box, origin_minimum=0)
        assert (err.value.record, err.value.field) == (2, field)
    # values from a list (COCO's bbox) are named by the keys given
    with pytest.raises(DataError) as err:
        _fields({}, record=0).box([f"bbox[{i}]" for i in range(4)], [0, 0, 5, 0])
    assert err.value.field == "bbox[3]"


@pytest.mark.parametrize("content", ["", "\n", "  \n\t\n  "])
def test_no_records_in_an_empty_or_blank_jsonl_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "answers.jsonl"
    path.write_text(content)
    with pytest.raises(DataError, match=r"no records: expected at least one of answer, got an empty or blank file"):
        list(jsonl_records(path, "answer"))
    assert list(jsonl_records(path, "answer", allow_empty=True)) == []


def test_no_records_in_an_empty_list() -> None:
    with pytest.raises(DataError, match=r"^f\.json: no records: expected at least one of things, got an empty list"):
        list(list_records("f.json", [], "things"))
    assert list(list_records("f.json", [], "things", allow_empty=True)) == []
