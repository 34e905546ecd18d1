"""Atomic writes, located JSON errors, resumable JSON-lines appends."""

from __future__ import annotations

import json
import re

import pytest

from hadpo.errors import DataError
from hadpo.io import (
    append_jsonl,
    atomic_write_json,
    read_json,
    read_jsonl,
    read_jsonl_tolerant,
    sha256_file,
    sha256_json,
)


def test_atomic_write_leaves_no_temp_files(tmp_path) -> None:
    path = atomic_write_json(tmp_path / "a" / "b.json", {"x": 1})
    assert read_json(path) == {"x": 1}
    assert [p.name for p in path.parent.iterdir()] == ["b.json"]


def test_read_json_names_line_and_column(tmp_path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{\n  "a": 1,\n  "b": ]\n}\n')
    with pytest.raises(DataError, match=r"bad\.json, line 3: invalid JSON at column 8"):
        read_json(path)
    with pytest.raises(DataError, match="file not found"):
        read_json(tmp_path / "none.json")


def test_read_jsonl_names_line(tmp_path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2\n')
    with pytest.raises(DataError, match=r"q\.jsonl, line 3: invalid JSON"):
        read_jsonl(path)


def test_append_recovers_from_torn_tail(tmp_path) -> None:
    path = tmp_path / "answers.jsonl"
    append_jsonl(path, [{"id": 1}, {"id": 2}])
    with path.open("a") as fh:  # a writer killed mid-line
        fh.write('{"id": 3, "ans')
    assert read_jsonl_tolerant(path) == [{"id": 1}, {"id": 2}]
    append_jsonl(path, [{"id": 3}])
    assert read_jsonl(path) == [{"id": 1}, {"id": 2}, {"id": 3}]


def test_tolerant_reader_rejects_damage_before_the_tail(tmp_path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"id": 1}\nnot json\n{"id": 2}\n')
    with pytest.raises(DataError, match="line 2"):
        read_jsonl_tolerant(path)
    assert read_jsonl_tolerant(tmp_path / "missing.jsonl") == []


def test_hashes(tmp_path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"abc")
    assert sha256_file(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert sha256_json({"b": 1, "a": 2}) == sha256_json({"a": 2, "b": 1})
    assert json.loads(json.dumps({"a": 1})) == {"a": 1}


@pytest.mark.parametrize(
    ("text", "line", "key", "column"),
    [
        ('{\n "7": {"chosen": ["a"]},\n "8": {},\n "7": {"chosen": ["b"]}\n}', 4, "7", 2),  # desc_data's top level
        ('[{"a": 1},\n {"a": 1, "b": {"x": 1,\n "x": 2}}]', 3, "x", 2),  # nested, on its own line
        ('{"a": 1, "a": 1}', 1, "a", 10),  # same value twice is still a repeat
    ],
)
def test_duplicate_key_names_line_and_key(tmp_path, text: str, line: int, key: str, column: int) -> None:
    path = tmp_path / "desc_data.json"
    path.write_text(text)
    with pytest.raises(DataError, match=f"duplicate key '{key}' at column {column}") as err:
        read_json(path)
    assert (err.value.file, err.value.line, err.value.field) == (str(path), line, key)
    assert str(err.value).startswith(f"{path}, line {line}, field '{key}': ")


def test_duplicate_key_in_a_jsonl_line(tmp_path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"a": 1}\n{"a": 2, "b": 1, "a": 3}\n')
    with pytest.raises(DataError, match="duplicate key 'a' at column 18") as err:
        read_jsonl(path)
    assert (err.value.line, err.value.field) == (2, "a")


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("NaN", "non-finite number NaN"),
        ("Infinity", "non-finite number Infinity"),
        ("-Infinity", "non-finite number -Infinity"),
        ("1e400", "number 1e400 at column 8 (too large: it overflows to infinity)"),
        ("-2.5E+999", "number -2.5E+999"),
        ("9" * 5000, "integer of 5000 digits at column 8 (too large)"),
    ],
)
def test_non_finite_and_overflowing_numbers_name_line_and_column(tmp_path, token: str, reason: str) -> None:
    path = tmp_path / "objects.json"
    path.write_text(f'[{{"x": 1}},\n {{"x": {token}}}]')
    with pytest.raises(DataError, match=re.escape(reason)) as err:
        read_json(path)
    assert err.value.line == 2 and str(err.value).startswith(f"{path}, line 2: ")
    lines = tmp_path / "a.jsonl"
    lines.write_text(f'{{"x": 1}}\n\n{{"x": {token}}}\n')
    with pytest.raises(DataError) as err:
        read_jsonl(lines)
    assert err.value.line == 3


def test_non_finite_can_be_allowed_for_the_kits_own_logs(tmp_path) -> None:
    path = tmp_path / "m.json"
    path.write_text('{"grad_norm": NaN, "x": Infinity}')
    data = read_json(path, allow_nonfinite=True)
    assert data["x"] == float("inf") and data["grad_norm"] != data["grad_norm"]
    jsonl = tmp_path / "metrics.jsonl"
    jsonl.write_text('{"step": 1, "grad_norm": NaN}\n')
    assert read_jsonl_tolerant(jsonl)[0]["step"] == 1  # a DeepSpeed run logs NaN when it has no norm


@pytest.mark.parametrize("content", [b"", b"   \n\t\n"])
def test_empty_or_blank_json_file_has_no_records(tmp_path, content: bytes) -> None:
    path = tmp_path / "image_data.json"
    path.write_bytes(content)
    with pytest.raises(DataError, match="no records: the file is empty or blank") as err:
        read_json(path)
    assert err.value.file == str(path)


def test_non_utf8_json_names_line_and_column(tmp_path) -> None:
    path = tmp_path / "desc_data.json"
    path.write_bytes(b'{"1": {"chosen": ["ok"],\n "rejected": ["caf\xe9"]}}')
    with pytest.raises(DataError, match=r"not UTF-8 text: byte 0xe9 at column 19") as err:
        read_json(path)
    assert err.value.line == 2 and str(err.value).startswith(f"{path}, line 2: ")


def test_non_utf8_jsonl_names_line(tmp_path) -> None:
    path = tmp_path / "answers.jsonl"
    path.write_bytes(b'{"question_id": 1, "answer": "yes"}\n{"question_id": 2, "answer": "\xff"}\n')
    with pytest.raises(DataError, match=r"byte 0xff at column 31") as err:
        read_jsonl(path)
    assert err.value.line == 2 and str(err.value).startswith(f"{path}, line 2: not UTF-8 text")


def test_tolerant_reader_drops_a_tail_cut_inside_a_character(tmp_path) -> None:
    path = tmp_path / "descriptions.jsonl"
    # a killed writer can stop between the bytes of one UTF-8 character; U+2028 inside a string is not a line break
    path.write_bytes('{"id": 1, "text": "a\u2028b"}\n'.encode() + b'{"id": 2, "text": "caf\xc3')
    assert read_jsonl_tolerant(path) == [{"id": 1, "text": "a\u2028b"}]
    path.write_bytes(b'{"id": 1, "text": "\xff"}\n{"id": 2}\n')
    with pytest.raises(DataError, match="line 1: not UTF-8 text"):
        read_jsonl_tolerant(path)
