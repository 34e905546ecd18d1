"""HA-DPO preference data: both desc_data.json shapes, pope_data.json with either rejected key, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hadpo.data.hadpo_files import DescRecord, PopeRecord, read_desc_data, read_pope_data
from hadpo.errors import DataError


def _write(path: Path, obj: object) -> Path:
    path.write_text(json.dumps(obj))
    return path


def _located(err: DataError, path: Path, *, record: object, field: str | None) -> None:
    assert err.file == str(path)
    assert err.record == record
    assert err.field == field
    assert path.name in str(err) and (field is None or f"field '{field}'" in str(err))


def test_desc_dict_keeps_file_order_and_ignores_extra_keys(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "desc_data.json",
        {
            "20": {"chosen": ["a red circle"], "rejected": ["a blue square"], "source": "gpt"},
            "3": {"chosen": ["c1", "c2"], "rejected": ["r1", "r2", "r3"]},
        },
    )
    assert read_desc_data(path) == [
        DescRecord("20", ("a red circle",), ("a blue square",)),
        DescRecord("3", ("c1", "c2"), ("r1", "r2", "r3")),
    ]


def test_desc_list_variant(tmp_path: Path) -> None:
    path = _write(tmp_path / "desc_data.json", [{"image_id": 5, "chosen": ["c"], "rejected": ["r"]}])
    assert read_desc_data(path) == [DescRecord("5", ("c",), ("r",))]


@pytest.mark.parametrize(
    ("data", "record", "field", "reason"),
    [
        ({"7": {"chosen": ["c"]}}, "7", "rejected", "missing required field"),
        ({"7": {"chosen": "c", "rejected": ["r"]}}, "7", "chosen", "expected a list"),
        ({"7": {"chosen": [], "rejected": ["r"]}}, "7", "chosen", "non-empty list"),
        ({"7": {"chosen": ["c", 4], "rejected": ["r"]}}, "7", "chosen[1]", "expected a string"),
        ({"7": ["c"]}, "7", None, "expected an object with 'chosen' and 'rejected'"),
        ([{"image_id": 1, "chosen": ["c"], "rejected": ["r"]}, {"image_id": 1, "chosen": ["c"], "rejected": ["r"]}],
         1, "image_id", "duplicate image id '1'"),
        ([{"chosen": ["c"], "rejected": ["r"]}], 0, "image_id", "missing required field"),
        ([{"image_id": 1.5, "chosen": ["c"], "rejected": ["r"]}], 0, "image_id", "expected an integer or"),
        ([["c"]], 0, None, "expected a JSON object"),
        ({"7": {"chosen": [" "], "rejected": ["r"]}}, "7", "chosen[0]", "non-empty string"),
        ([{"image_id": 2**64, "chosen": ["c"], "rejected": ["r"]}], 0, "image_id", "does not fit in 64 bits"),
    ],
)
def test_desc_errors_are_located(tmp_path: Path, data: object, record: object, field: str | None, reason: str) -> None:
    path = _write(tmp_path / "desc_data.json", data)
    with pytest.raises(DataError, match=reason) as err:
        read_desc_data(path)
    _located(err.value, path, record=record, field=field)


def test_desc_wrong_container_and_bad_json(tmp_path: Path) -> None:
    path = _write(tmp_path / "desc_data.json", "text")
    with pytest.raises(DataError, match="keyed by image id or a list of records, got str"):
        read_desc_data(path)
    path.write_text('{"1": {"chosen": ["c"],\n "rejected": [}')
    with pytest.raises(DataError) as err:
        read_desc_data(path)
    assert err.value.line == 2 and "invalid JSON" in str(err.value)


def test_pope_data_reads_both_rejected_spellings(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "pope_data.json",
        [
            {"image_id": 12, "question": "Is there a cat?", "answer": "no", "chosen": "No.", "reject": "Yes.",
             "correct": False},
            {"image_id": "13", "question": "Is there a dog?", "chosen": "Yes.", "rejected": "No."},
        ],
    )
    assert read_pope_data(path) == [
        PopeRecord("12", "Is there a cat?", "no", "No.", "Yes.", False),
        PopeRecord("13", "Is there a dog?", None, "Yes.", "No.", None),
    ]


_GOOD = {"image_id": 1, "question": "Is there a cat?", "chosen": "No.", "reject": "Yes.", "correct": False}


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"rejected": "Yes."}, "rejected", "both 'reject' and 'rejected'"),
        ({"reject": None}, "reject", "expected a string, got null"),
        ({"correct": "false"}, "correct", "expected true or false"),
        ({"question": 3}, "question", "expected a string"),
        ({"answer": 1}, "answer", "expected a string"),
        ({"image_id": None}, "image_id", "integer or non-empty string id"),
        ({"question": " \n "}, "question", "non-empty string"),
        ({"answer": ""}, "answer", "non-empty string"),
        ({"chosen": ""}, "chosen", "non-empty string"),
    ],
)
def test_pope_data_errors_are_located(tmp_path: Path, change: dict, field: str, reason: str) -> None:
    path = _write(tmp_path / "pope_data.json", [_GOOD, {**_GOOD, **change}])
    with pytest.raises(DataError, match=reason) as err:
        read_pope_data(path)
    _located(err.value, path, record=1, field=field)


def test_pope_data_needs_a_rejected_response(tmp_path: Path) -> None:
    bad = {k: v for k, v in _GOOD.items() if k != "reject"}
    path = _write(tmp_path / "pope_data.json", [bad])
    with pytest.raises(DataError, match="missing required field") as err:
        read_pope_data(path)
    _located(err.value, path, record=0, field="rejected")


def test_pope_data_must_be_a_list(tmp_path: Path) -> None:
    path = _write(tmp_path / "pope_data.json", {"1": _GOOD})
    with pytest.raises(DataError, match="expected a JSON list of QA preference records, got dict"):
        read_pope_data(path)


def test_desc_key_repeated_in_the_object_names_line_and_key(tmp_path: Path) -> None:
    # json.load would keep the second "7" and silently drop the first image's rewrites
    path = tmp_path / "desc_data.json"
    path.write_text('{\n"7": {"chosen": ["a"], "rejected": ["b"]},\n"7": {"chosen": ["c"], "rejected": ["d"]}\n}')
    with pytest.raises(DataError, match="duplicate key '7' at column 1") as err:
        read_desc_data(path)
    assert (err.value.file, err.value.line, err.value.field) == (str(path), 3, "7")


@pytest.mark.parametrize(("reader", "empty"), [(read_desc_data, {}), (read_desc_data, []), (read_pope_data, [])])
def test_no_records_is_allowed_only_when_asked(tmp_path: Path, reader, empty: object) -> None:
    # mining writes {} / [] when it found nothing of one kind, and the trainer refuses zero pairs in total
    path = _write(tmp_path / "data.json", empty)
    assert reader(path) == []
    with pytest.raises(DataError, match="no records") as err:
        reader(path, allow_empty=False)
    assert err.value.file == str(path)


@pytest.mark.parametrize("reader", [read_desc_data, read_pope_data])
@pytest.mark.parametrize("content", [b"", b"  \n", b'[{"image_id": 1, "question": "Is it\xff?"}]'])
def test_empty_blank_or_non_utf8_file_is_an_error(tmp_path: Path, reader, content: bytes) -> None:
    path = tmp_path / "data.json"
    path.write_bytes(content)
    with pytest.raises(DataError, match=r"no records|not UTF-8 text: byte 0xff at column 36") as err:
        reader(path)
    assert err.value.file == str(path)
