"""SHR files: the evaluation image list (with embedded VG records) and the merged factual parts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hadpo.data.shr_files import ShrImage, read_shr_factual, read_shr_images
from hadpo.data.vg import VGImage
from hadpo.errors import DataError


def _write(path: Path, obj: object) -> Path:
    path.write_text(json.dumps(obj))
    return path


def _lines(path: Path, *records: object) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


_VG = {"image_id": 5, "url": "http://x/VG_100K_2/5.jpg", "width": 48, "height": 48, "coco_id": None}


def test_val_images_with_and_without_embedded_record(tmp_path: Path) -> None:
    entries = [{"image_id": 5, "image": _VG}, {"image_id": "9", "split": "val"}]
    path = _write(tmp_path / "val_images_final.json", entries)
    assert read_shr_images(path) == [
        ShrImage(5, VGImage(5, "http://x/VG_100K_2/5.jpg", 48, 48, None)),
        ShrImage(9, None),
    ]


@pytest.mark.parametrize(
    ("entry", "field", "reason"),
    [
        ({"image_id": 5}, "image_id", "duplicate image id 5"),
        ({"image_id": "five"}, "image_id", "expected an integer id"),
        ({"image_id": 6, "image": {**_VG, "image_id": 6, "url": 3}}, "image.url", "expected a string"),
        ({"image_id": 6, "image": _VG}, "image.image_id", "embedded image record has id 5, entry has 6"),
        ({"image_id": 6, "image": "6.jpg"}, "image", "expected a VG image record"),
        ({"image_id": 2**63}, "image_id", "does not fit in 64 bits"),
        ({"image_id": "99999999999999999999"}, "image_id", "does not fit in 64 bits"),
        ({"image_id": 6, "image": {**_VG, "image_id": 6, "width": 10**7}}, "image.width", "<= 1000000"),
    ],
)
def test_val_images_errors(tmp_path: Path, entry: dict, field: str, reason: str) -> None:
    path = _write(tmp_path / "val_images_final.json", [{"image_id": 5}, entry])
    with pytest.raises(DataError, match=reason) as err:
        read_shr_images(path)
    assert (err.value.record, err.value.field) == (1, field)
    assert f"val_images_final.json, record 1, field '{field}'" in str(err.value)


def test_val_images_must_be_a_list(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="expected a JSON list of SHR image records, got dict"):
        read_shr_images(_write(tmp_path / "val_images_final.json", {"image_id": 5}))


def test_factual_parts_merge_in_order(tmp_path: Path) -> None:
    part1 = _lines(tmp_path / "shr_factual_part1.jsonl", {"5": ["The sky is dark."]}, {"9": []})
    part2 = _lines(tmp_path / "shr_factual_part2.jsonl", {"3": ["There are two shapes.", "One is red."]})
    facts = read_shr_factual([part1, part2])
    assert facts == {"5": ["The sky is dark."], "9": [], "3": ["There are two shapes.", "One is red."]}
    assert list(facts) == ["5", "9", "3"]
    assert read_shr_factual(part2) == {"3": ["There are two shapes.", "One is red."]}


def test_factual_duplicate_across_parts_names_both(tmp_path: Path) -> None:
    part1 = _lines(tmp_path / "shr_factual_part1.jsonl", {"5": ["a"]})
    part2 = _lines(tmp_path / "shr_factual_part2.jsonl", {"4": ["b"]}, {"5": ["c"]})
    with pytest.raises(DataError) as err:
        read_shr_factual([part1, part2])
    assert (err.value.file, err.value.line, err.value.field) == (str(part2), 2, "5")
    assert "duplicate image id '5' (first seen at shr_factual_part1.jsonl, line 1)" in str(err.value)


@pytest.mark.parametrize(
    ("line", "field", "reason"),
    [
        ({"5": ["a"], "6": ["b"]}, None, "exactly one key"),
        ({}, None, "exactly one key"),
        ({"5": "a"}, "5", "expected a list"),
        ({"5": ["a", None]}, "5[1]", "expected a string"),
        (["5", ["a"]], None, "expected a JSON object"),
        ({"5": ["a", " "]}, "5[1]", "non-empty string"),
    ],
)
def test_factual_errors(tmp_path: Path, line: object, field: str | None, reason: str) -> None:
    path = _lines(tmp_path / "shr_factual_part1.jsonl", {"1": ["ok"]}, line)
    with pytest.raises(DataError, match=reason) as err:
        read_shr_factual([path])
    assert (err.value.line, err.value.field) == (2, field)
    assert "shr_factual_part1.jsonl, line 2" in str(err.value)


def test_factual_bad_json_line(tmp_path: Path) -> None:
    path = tmp_path / "shr_factual_part1.jsonl"
    path.write_text('{"1": ["ok"]}\n{"2": ["x"]\n')
    with pytest.raises(DataError, match=r"shr_factual_part1\.jsonl, line 2: invalid JSON"):
        read_shr_factual(path)


@pytest.mark.parametrize("content", ["[]", "", "\n \n"])
def test_val_images_without_records_are_an_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "val_images_final.json"
    path.write_text(content)
    with pytest.raises(DataError, match="no records") as err:
        read_shr_images(path)
    assert err.value.file == str(path)


def test_factual_parts_need_a_record_between_them(tmp_path: Path) -> None:
    part1 = _lines(tmp_path / "shr_factual_part1.jsonl", {"5": ["a"]})
    part2 = tmp_path / "shr_factual_part2.jsonl"
    part2.write_text("\n")
    # a one-image world writes an empty second part: that is fine while the other part has the image
    assert read_shr_factual([part1, part2]) == {"5": ["a"]}
    with pytest.raises(DataError, match="no records: expected at least one of single-key object") as err:
        read_shr_factual(part2)
    assert err.value.file == str(part2)
    part1.write_text("")
    with pytest.raises(DataError, match="no records") as err:
        read_shr_factual([part1, part2])
    assert err.value.file == f"{part1}, {part2}"


def test_factual_repeated_key_in_a_line(tmp_path: Path) -> None:
    path = tmp_path / "shr_factual_part1.jsonl"
    path.write_text('{"1": ["ok"]}\n{"2": ["a"], "2": ["b"]}\n')
    with pytest.raises(DataError, match="duplicate key '2'") as err:
        read_shr_factual(path)
    assert (err.value.line, err.value.field) == (2, "2")
