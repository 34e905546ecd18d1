"""Atomic writes, located JSON errors, resumable JSON-lines appends."""

from __future__ import annotations

import json

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
