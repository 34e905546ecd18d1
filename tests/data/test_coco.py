"""COCO instances: typed records, per-image categories, and dangling or repeated ids."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from hadpo.data.coco import CocoAnnotation, CocoCategory, CocoImage, read_coco_instances
from hadpo.errors import DataError

GOOD = {
    "info": {"description": "shapes"},
    "images": [
        {"id": 42, "file_name": "COCO_val2014_000000000042.jpg", "width": 48, "height": 48},
        {"id": 7, "file_name": "COCO_val2014_000000000007.jpg", "width": 48, "height": 48},
    ],
    "categories": [{"id": 1, "name": "red circle", "supercategory": "shape"}, {"id": 2, "name": "blue square"}],
    "annotations": [
        {"id": 10, "image_id": 42, "category_id": 2, "bbox": [1, 2, 10, 10.5], "iscrowd": 0, "area": 105},
        {"id": 11, "image_id": 42, "category_id": 1, "bbox": [20, 2, 10, 10]},
        {"id": 12, "image_id": 42, "category_id": 2, "bbox": [30, 2, 5, 5], "iscrowd": 1},
    ],
}


def _write(path: Path, obj: object) -> Path:
    path.write_text(json.dumps(obj))
    return path


def test_instances_parse_in_file_order(tmp_path: Path) -> None:
    coco = read_coco_instances(_write(tmp_path / "instances.json", GOOD))
    assert coco.images == (
        CocoImage(42, "COCO_val2014_000000000042.jpg", 48, 48),
        CocoImage(7, "COCO_val2014_000000000007.jpg", 48, 48),
    )
    assert coco.categories == (CocoCategory(1, "red circle", "shape"), CocoCategory(2, "blue square", None))
    assert coco.annotations[0] == CocoAnnotation(10, 42, 2, (1, 2, 10, 10.5), False)
    assert coco.annotations[2].iscrowd is True
    assert coco.category_names() == {1: "red circle", 2: "blue square"}
    assert coco.objects_by_image() == {42: ["blue square", "red circle"], 7: []}


def _broken(section: str, index: int, **change: object) -> dict:
    data = copy.deepcopy(GOOD)
    data[section][index].update(change)
    return data


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        (_broken("annotations", 1, image_id=99), "annotations[1].image_id", "image id 99 is not in 'images'"),
        (_broken("annotations", 1, category_id=5), "annotations[1].category_id", "category id 5 is not in"),
        (_broken("annotations", 1, id=10), "annotations[1].id", "duplicate annotation id 10"),
        (_broken("annotations", 1, bbox=[1, 2, 3]), "annotations[1].bbox", "got a list of 3"),
        (_broken("annotations", 1, bbox=[1, 2, "3", 4]), "annotations[1].bbox[2]", "expected a number"),
        (_broken("annotations", 1, iscrowd=2), "annotations[1].iscrowd", "expected 0 or 1"),
        (_broken("images", 1, id=42), "images[1].id", "duplicate image id 42"),
        (_broken("images", 1, file_name=None), "images[1].file_name", "expected a string"),
        (_broken("categories", 1, id=1), "categories[1].id", "duplicate category id 1"),
        (_broken("categories", 1, name=""), "categories[1].name", "non-empty string"),
        ({k: v for k, v in GOOD.items() if k != "categories"}, "categories", "missing required field"),
        ({**GOOD, "images": {}}, "images", "expected a list"),
        (_broken("annotations", 1, bbox=[1, 2, 0, 4]), "annotations[1].bbox[2]", "expected a number > 0, got 0"),
        (_broken("annotations", 1, bbox=[1, 2, 3, -4]), "annotations[1].bbox[3]", "> 0"),
        (_broken("annotations", 1, bbox=[-1, 2, 3, 4]), "annotations[1].bbox[0]", "expected a number >= 0, got -1"),
        (_broken("annotations", 1, bbox=[1, -0.5, 3, 4]), "annotations[1].bbox[1]", ">= 0"),
        (_broken("annotations", 1, bbox=[1, 2, 1e300, 4]), "annotations[1].bbox[2]", "<= 1000000"),
        (_broken("annotations", 1, id=2**63), "annotations[1].id", "does not fit in 64 bits"),
        (_broken("images", 1, width=1_000_001), "images[1].width", "<= 1000000"),
        (_broken("images", 1, id=-(2**63) - 1), "images[1].id", "does not fit in 64 bits"),
        ({**GOOD, "images": []}, "images", "non-empty list"),
        ({**GOOD, "categories": []}, "categories", "non-empty list"),
        ({**GOOD, "annotations": []}, "annotations", "non-empty list"),
    ],
)
def test_instances_errors_are_located(tmp_path: Path, data: dict, field: str, reason: str) -> None:
    path = _write(tmp_path / "instances.json", data)
    with pytest.raises(DataError, match=reason) as err:
        read_coco_instances(path)
    assert err.value.field == field
    assert str(err.value).startswith(f"{path}, field '{field}'")


def test_instances_must_be_an_object(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="expected a JSON object with images, annotations and categories"):
        read_coco_instances(_write(tmp_path / "instances.json", []))


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("", None, "no records: the file is empty or blank"),
        ('{"images": [], "images": []}', 1, "duplicate key 'images'"),
        ('{"annotations": [{"bbox":\n [1, 2, Infinity, 4]}]}', 2, "non-finite number Infinity"),
    ],
)
def test_raw_json_problems_name_file_and_line(tmp_path: Path, text: str, line: int | None, reason: str) -> None:
    path = tmp_path / "instances.json"
    path.write_text(text)
    with pytest.raises(DataError, match=reason) as err:
        read_coco_instances(path)
    assert (err.value.file, err.value.line) == (str(path), line)
