"""Visual Genome files: image records, objects and region descriptions, in both key spellings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hadpo.data.layout import DataLayout
from hadpo.data.vg import Region, VGImage, VGObject, read_vg_images, read_vg_objects, read_vg_regions, vg_image_index
from hadpo.errors import DataError


def _write(path: Path, obj: object) -> Path:
    path.write_text(json.dumps(obj))
    return path


def _img(image_id: int, **extra: object) -> dict:
    return {"image_id": image_id, "url": f"https://cs.stanford.edu/VG_100K/{image_id}.jpg", "width": 48,
            "height": 40, "coco_id": None, **extra}


def test_image_data_records_and_local_path(tmp_path: Path) -> None:
    path = _write(tmp_path / "image_data.json", [_img(2, flickr_id=9), {**_img(1), "coco_id": 139}])
    images = read_vg_images(path)
    assert images == [
        VGImage(2, "https://cs.stanford.edu/VG_100K/2.jpg", 48, 40, None),
        VGImage(1, "https://cs.stanford.edu/VG_100K/1.jpg", 48, 40, 139),
    ]
    assert images[0].path(DataLayout(tmp_path)) == tmp_path / "VG" / "VG_100K" / "2.jpg"
    assert list(vg_image_index(images)) == [2, 1]


def test_image_data_accepts_v12_id_key(tmp_path: Path) -> None:
    rec = _img(4)
    rec["id"] = rec.pop("image_id")
    assert read_vg_images(_write(tmp_path / "image_data.json", [rec]))[0].image_id == 4


@pytest.mark.parametrize(
    ("record", "field", "reason"),
    [
        (_img(1), "image_id", "duplicate image id 1"),
        ({**_img(2), "width": "48"}, "width", "expected an integer"),
        ({**_img(2), "height": 0}, "height", ">= 1"),
        ({**_img(2), "url": "x.jpg"}, "url", "two path components"),
        ({k: v for k, v in _img(2).items() if k != "url"}, "url", "missing required field"),
        ({**_img(2), "coco_id": "5"}, "coco_id", "expected an integer"),
        ({**_img(2), "width": 1_000_001}, "width", "<= 1000000"),
        ({**_img(2), "height": 10**30}, "height", "does not fit in 64 bits"),
        (_img(2**63), "image_id", "does not fit in 64 bits"),
        ({**_img(2), "coco_id": -(2**64)}, "coco_id", "does not fit in 64 bits"),
    ],
)
def test_image_data_errors(tmp_path: Path, record: dict, field: str, reason: str) -> None:
    path = _write(tmp_path / "image_data.json", [_img(1), record])
    with pytest.raises(DataError, match=reason) as err:
        read_vg_images(path)
    assert (err.value.file, err.value.record, err.value.field) == (str(path), 1, field)
    assert f"image_data.json, record 1, field '{field}'" in str(err.value)


def test_image_data_must_be_a_list(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="expected a JSON list of VG image records"):
        read_vg_images(_write(tmp_path / "image_data.json", {"1": _img(1)}))


def _obj(object_id: int, **extra: object) -> dict:
    return {"object_id": object_id, "x": 1, "y": 2, "w": 10, "h": 12, "names": ["red circle"], **extra}


def test_objects_by_image_in_file_order(tmp_path: Path) -> None:
    legacy = {"object_id": 9, "x": 0, "y": 0, "w": 5.5, "h": 5, "name": "tree"}
    path = _write(tmp_path / "objects.json", [{"image_id": 3, "objects": [_obj(1), legacy]},
                                              {"id": 1, "objects": []}])
    assert read_vg_objects(path) == {
        3: [VGObject(1, "red circle", 1, 2, 10, 12), VGObject(9, "tree", 0, 0, 5.5, 5)],
        1: [],
    }


@pytest.mark.parametrize(
    ("entry", "field", "reason"),
    [
        ({"image_id": 3, "objects": []}, "image_id", "duplicate image id 3"),
        ({"image_id": 4, "objects": {}}, "objects", "expected a list"),
        ({"image_id": 4, "objects": [_obj(1, names=[])]}, "objects[0].names", "non-empty list"),
        ({"image_id": 4, "objects": [_obj(1, w=-1)]}, "objects[0].w", "> 0"),
        ({"image_id": 4, "objects": [_obj(1, w=0)]}, "objects[0].w", "expected a number > 0, got 0"),
        ({"image_id": 4, "objects": [_obj(1, h=0.0)]}, "objects[0].h", "> 0"),
        ({"image_id": 4, "objects": [_obj(1, x=1e300)]}, "objects[0].x", "<= 1000000"),
        ({"image_id": 4, "objects": [_obj(2**70)]}, "objects[0].object_id", "does not fit in 64 bits"),
        ({"image_id": 4, "objects": [{"object_id": 1, "x": 0, "y": 0, "w": 1, "h": 1}]}, "objects[0].name",
         "missing required field"),
        ({"objects": []}, "image_id", "missing required field"),
    ],
)
def test_objects_errors(tmp_path: Path, entry: dict, field: str, reason: str) -> None:
    path = _write(tmp_path / "objects.json", [{"image_id": 3, "objects": [_obj(1)]}, entry])
    with pytest.raises(DataError, match=reason) as err:
        read_vg_objects(path)
    assert (err.value.record, err.value.field) == (1, field)
    assert "objects.json, record 1" in str(err.value)


def _region(region_id: int, image_id: int, phrase: str = "a red circle") -> dict:
    return {"region_id": region_id, "image_id": image_id, "phrase": phrase, "x": 3, "y": 4, "width": 10,
            "height": 8}


def test_regions_indexed_by_id_or_first_region(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "region_descriptions.json",
        [{"id": 7, "regions": [_region(1, 7), _region(2, 7, "")]}, {"regions": [_region(3, 5)]}],
    )
    assert read_vg_regions(path) == {
        7: [Region(1, 7, "a red circle", 3, 4, 10, 8), Region(2, 7, "", 3, 4, 10, 8)],
        5: [Region(3, 5, "a red circle", 3, 4, 10, 8)],
    }


@pytest.mark.parametrize(
    ("entry", "field", "reason"),
    [
        ({"regions": []}, "regions", "non-empty list"),
        ({"id": 7, "regions": []}, "id", "duplicate image id 7"),
        ({"regions": [_region(3, 7)]}, "regions[0].image_id", "duplicate image id 7"),
        ({"id": 8, "regions": [_region(3, 9)]}, "regions[0].image_id", "region of image 9 listed under image 8"),
        ({"id": 8, "regions": [{**_region(3, 8), "phrase": None}]}, "regions[0].phrase", "expected a string"),
        ({"id": 8, "regions": [{**_region(3, 8), "height": "8"}]}, "regions[0].height", "expected a number"),
        ({"id": 8, "regions": [{**_region(3, 8), "width": 0}]}, "regions[0].width", "> 0"),
        ({"id": 8, "regions": [{**_region(3, 8), "height": -2}]}, "regions[0].height", "> 0"),
        ({"id": 8, "regions": [{**_region(3, 8), "y": -2e6}]}, "regions[0].y", ">= -1000000"),
    ],
)
def test_regions_errors(tmp_path: Path, entry: dict, field: str, reason: str) -> None:
    path = _write(tmp_path / "region_descriptions.json", [{"id": 7, "regions": [_region(1, 7)]}, entry])
    with pytest.raises(DataError, match=reason) as err:
        read_vg_regions(path)
    assert (err.value.record, err.value.field) == (1, field)
    assert "region_descriptions.json, record 1" in str(err.value)


def test_region_boxes_may_start_outside_the_image(tmp_path: Path) -> None:
    # VG 1.2 has thousands of regions with a negative x or y (e.g. y = -904); they are kept, not refused
    path = _write(tmp_path / "region_descriptions.json", [{"id": 7, "regions": [{**_region(1, 7), "y": -904}]}])
    assert read_vg_regions(path)[7][0].y == -904


@pytest.mark.parametrize("reader", [read_vg_images, read_vg_objects, read_vg_regions])
@pytest.mark.parametrize(("content", "reason"), [("[]", "no records"), ("", "no records"), (" \n ", "no records")])
def test_files_without_records_are_errors(tmp_path: Path, reader, content: str, reason: str) -> None:
    path = tmp_path / "vg.json"
    path.write_text(content)
    with pytest.raises(DataError, match=reason) as err:
        reader(path)
    assert err.value.file == str(path)


@pytest.mark.parametrize(
    ("text", "line", "field", "reason"),
    [
        ('[{"image_id": 1, "objects": [\n{"object_id": 1, "x": NaN, "y": 0, "w": 1, "h": 1, "name": "a"}]}]', 2, None,
         "non-finite number NaN"),
        ('[{"image_id": 1,\n "objects": [], "image_id": 2}]', 2, "image_id", "duplicate key 'image_id'"),
        ('[{"image_id": 1, "objects": [\n{"object_id": 1, "x": 0, "y": 0, "w": 1e400, "h": 1, "name": "a"}]}]', 2,
         None, "number 1e400"),
    ],
)
def test_raw_json_problems_name_file_and_line(tmp_path: Path, text: str, line: int, field: str | None,
                                              reason: str) -> None:
    path = tmp_path / "objects.json"
    path.write_text(text)
    with pytest.raises(DataError, match=reason) as err:
        read_vg_objects(path)
    assert (err.value.file, err.value.line, err.value.field) == (str(path), line, field)
