"""``validate``: counts for every kind, and image look-ups under an images root."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from hadpo.data.layout import DataLayout
from hadpo.data.validate import KINDS, validate
from hadpo.errors import DataError


def _write(path: Path, obj: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return path


def _lines(path: Path, *records: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _image(path: Path) -> Path:
    """A real 8x8 image (validate decodes every image, so placeholder bytes would be unreadable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (200, 30, 30)).save(path, format="JPEG" if path.suffix == ".jpg" else "PNG")
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A data root with two VG images on disk (ids 1 and 2) and image 3 listed but absent."""
    layout = DataLayout(tmp_path / "data")
    _write(layout.image_data, [
        {"image_id": i, "url": f"http://vg/VG_100K/{i}.png", "width": 48, "height": 48, "coco_id": None}
        for i in (1, 2, 3)
    ])
    for i in (1, 2):
        _image(layout.vg_dir / "VG_100K" / f"{i}.png")
    return layout.root


def test_every_kind_has_a_description() -> None:
    assert set(KINDS) == {"desc", "pope-data", "vg-images", "vg-objects", "vg-regions", "coco", "pope",
                          "pope-answers", "shr-images", "shr-factual", "llava"}
    assert all(KINDS.values())


def test_desc_counts_and_images(root: Path) -> None:
    path = _write(root / "hadpo" / "desc_data.json", {
        "1": {"chosen": ["c1", "c2", "c3"], "rejected": ["r1", "r2", "r3"]},
        "2": {"chosen": ["c"], "rejected": ["r1", "r2"]},
    })
    report = validate("desc", path, images_root=root)
    assert (report.records, report.images, report.ok) == (2, 2, True)
    assert report.counts == {"chosen": 4, "rejected": 5, "pairs_sampled": 2, "pairs_all_combinations": 11}
    assert report.to_dict()["files"] == [str(path)]


def test_desc_missing_image_names_record_field_and_path(root: Path) -> None:
    path = _write(root / "desc_data.json", {"1": {"chosen": ["c"], "rejected": ["r"]},
                                            "3": {"chosen": ["c"], "rejected": ["r"]}})
    with pytest.raises(DataError) as err:
        validate("desc", path, images_root=root)
    missing = root / "VG" / "VG_100K" / "3.png"
    assert (err.value.record, err.value.field) == ("3", "image_id")
    assert str(err.value) == f"{path}, record '3', field 'image_id': image not found: {missing}"


def test_desc_id_unknown_to_image_data(root: Path) -> None:
    path = _write(root / "desc_data.json", {"77": {"chosen": ["c"], "rejected": ["r"]}})
    with pytest.raises(DataError, match=r"image id '77' is not in .*image_data\.json") as err:
        validate("desc", path, images_root=root)
    assert err.value.record == "77"


def test_pope_data_counts_trainable_pairs(root: Path) -> None:
    rec = {"image_id": 1, "question": "Is there a cat?", "chosen": "No.", "reject": "Yes."}
    path = _write(root / "pope_data.json", [{**rec, "correct": True}, rec, {**rec, "image_id": "2", "correct": False}])
    report = validate("pope-data", path, images_root=root)
    assert report.counts == {"pairs": 2, "skipped_correct": 1}
    assert (report.records, report.images) == (3, 2)
    with pytest.raises(DataError, match="image not found") as err:
        validate("pope-data", _write(root / "p2.json", [rec, {**rec, "image_id": 3}]), images_root=root)
    assert (err.value.record, err.value.field) == (1, "image_id")


def test_vg_images_missing_are_listed_when_allowed(root: Path) -> None:
    report = validate("vg-images", DataLayout(root).image_data, images_root=root, allow_missing=True)
    assert (report.records, report.ok) == (3, False)
    assert report.to_dict()["missing_images"] == [
        {"path": str(root / "VG" / "VG_100K" / "3.png"), "record": 2, "field": "url"}
    ]
    with pytest.raises(DataError, match=r"image_data.json, record 2, field 'url': image not found: .*3\.png$"):
        validate("vg-images", DataLayout(root).image_data, images_root=root)
    assert validate("vg-images", DataLayout(root).image_data).counts == {"with_coco_id": 0}


def test_vg_objects_and_regions(tmp_path: Path) -> None:
    objects = _write(tmp_path / "objects.json", [
        {"image_id": 1, "objects": [{"object_id": 1, "x": 0, "y": 0, "w": 4, "h": 4, "names": ["red circle"]},
                                    {"object_id": 2, "x": 0, "y": 0, "w": 4, "h": 4, "names": ["red circle"]}]},
        {"image_id": 2, "objects": []},
    ])
    report = validate("vg-objects", objects)
    assert (report.records, report.counts) == (2, {"objects": 2, "object_names": 1})
    region = {"region_id": 1, "image_id": 1, "phrase": "", "x": 0, "y": 0, "width": 1, "height": 1}
    regions = _write(tmp_path / "region_descriptions.json", [{"id": 1, "regions": [region, {**region, "phrase": "a"}]}])
    assert validate("vg-regions", regions).counts == {"regions": 2, "empty_phrases": 1}


def test_coco_images_under_root(tmp_path: Path) -> None:
    images = tmp_path / "val2014"
    images.mkdir()
    _image(images / "a.jpg")
    path = _write(tmp_path / "instances.json", {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 4, "height": 4},
                   {"id": 2, "file_name": "b.jpg", "width": 4, "height": 4}],
        "categories": [{"id": 1, "name": "cat"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}],
    })
    assert validate("coco", path).counts == {"annotations": 1, "categories": 1}
    with pytest.raises(DataError, match=r"field 'images\[1\].file_name': image not found: .*b\.jpg"):
        validate("coco", path, images_root=images)


def _q(qid: int, image: str, label: str | None) -> dict:
    rec = {"question_id": qid, "image": image, "text": "Is there a cat in the image?"}
    return rec if label is None else {**rec, "label": label}


def test_pope_counts_labels_and_missing_images_once_per_file(tmp_path: Path) -> None:
    _image(tmp_path / "a.jpg")
    path = _lines(tmp_path / "coco_pope_random.json",
                  _q(1, "a.jpg", "yes"), _q(2, "a.jpg", "no"), _q(3, "b.jpg", "yes"), _q(4, "b.jpg", "no"),
                  _q(5, "c.jpg", "no"))
    report = validate("pope", path, images_root=tmp_path, allow_missing=True)
    assert report.counts == {"yes": 2, "no": 3, "unlabelled": 0}
    assert (report.records, report.images) == (5, 3)
    assert [(m.record, Path(m.path).name) for m in report.missing_images] == [(3, "b.jpg"), (5, "c.jpg")]
    with pytest.raises(DataError) as err:
        validate("pope", path, images_root=tmp_path)
    # one error for both, each with its record; the field is common to both
    assert str(err.value) == (f"{path}, field 'image': 2 unreadable images: {tmp_path / 'b.jpg'} (missing; record 3), "
                              f"{tmp_path / 'c.jpg'} (missing; record 5)")
    assert (err.value.record, err.value.field) == (None, "image")


def test_pope_bare_and_partly_labelled(tmp_path: Path) -> None:
    bare = _lines(tmp_path / "bare.json", _q(1, "a.jpg", None), _q(2, "a.jpg", None))
    assert validate("pope", bare).counts == {"yes": 0, "no": 0, "unlabelled": 2}
    mixed = _lines(tmp_path / "mixed.json", _q(1, "a.jpg", "yes"), _q(2, "a.jpg", None))
    with pytest.raises(DataError, match="some questions are labelled and this one is not") as err:
        validate("pope", mixed)
    assert (err.value.record, err.value.field) == (2, "label")


def test_pope_answers(tmp_path: Path) -> None:
    path = _lines(tmp_path / "answers.jsonl", {"question_id": 1, "answer": "Yes"}, {"question_id": 2, "answer": " "})
    report = validate("pope-answers", path)
    assert (report.records, report.images, report.counts) == (2, 0, {"empty_answers": 1})


def test_shr_images_embedded_or_by_id(root: Path) -> None:
    path = _write(root / "shr" / "val_images_final.json", [
        {"image_id": 1, "image": {"image_id": 1, "url": "http://vg/VG_100K/1.png", "width": 48, "height": 48}},
        {"image_id": 2},
    ])
    report = validate("shr-images", path, images_root=root)
    assert (report.records, report.images, report.counts) == (2, 2, {"with_image_record": 1})
    _write(path, [{"image_id": 3}])
    with pytest.raises(DataError, match=r"record 0, field 'image_id': image not found: .*3\.png"):
        validate("shr-images", path, images_root=root)


def test_shr_factual_takes_both_parts(tmp_path: Path) -> None:
    part1 = _lines(tmp_path / "shr_factual_part1.jsonl", {"1": ["a", "b"]})
    part2 = _lines(tmp_path / "shr_factual_part2.jsonl", {"2": []})
    report = validate("shr-factual", [part1, part2])
    assert (report.records, report.counts) == (2, {"statements": 2, "images_without_statements": 1})
    assert report.files == (str(part1), str(part2))


def test_llava_counts_kinds_and_checks_images(tmp_path: Path) -> None:
    _image(tmp_path / "1.png")
    turns = [{"from": "human", "value": "<image>\nDescribe."}, {"from": "gpt", "value": "A circle."}]
    path = _write(tmp_path / "llava_instruct.json", [
        {"id": "a", "image": "1.png", "conversations": turns, "kind": "description"},
        {"id": "b", "image": "1.png", "conversations": turns + turns[:1] + turns[1:], "kind": "qa"},
        {"id": "c", "image": "2.png", "conversations": turns},
    ])
    report = validate("llava", path, images_root=tmp_path, allow_missing=True)
    assert report.counts == {"exchanges": 4, "kind:description": 1, "kind:qa": 1}
    assert [(m.record, m.field) for m in report.missing_images] == [(2, "image")]


def test_bad_arguments(tmp_path: Path) -> None:
    path = _lines(tmp_path / "a.jsonl", {"question_id": 1, "answer": "Yes"})
    with pytest.raises(ValueError, match="unknown kind 'nope'"):
        validate("nope", path)
    with pytest.raises(ValueError, match="takes one file, got 2"):
        validate("pope-answers", [path, path])
    with pytest.raises(DataError, match="images root is not a folder"):
        validate("pope-answers", path, images_root=tmp_path / "absent")
    with pytest.raises(DataError, match="file not found"):
        validate("desc", tmp_path / "absent.json")


def _truncated_png(path: Path) -> Path:
    """A PNG cut off in the middle of its pixel data: it opens (the header is intact) but cannot be decoded."""
    full = _image(path.with_name("full_" + path.name))
    Image.effect_noise((64, 64), 50).save(full)  # noise compresses badly, so the pixel data spans the cut
    data = full.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_images_are_decoded_and_every_unreadable_one_is_listed(tmp_path: Path) -> None:
    _image(tmp_path / "a.jpg")
    (tmp_path / "b.jpg").write_bytes(b"")
    (tmp_path / "c.jpg").write_text("not an image")
    _truncated_png(tmp_path / "e.jpg")
    path = _lines(tmp_path / "coco_pope_random.json", _q(1, "a.jpg", "yes"), _q(2, "b.jpg", "no"),
                  _q(3, "c.jpg", "no"), _q(4, "d.jpg", "yes"), _q(5, "e.jpg", "no"), _q(6, "b.jpg", "yes"))
    report = validate("pope", path, images_root=tmp_path, allow_missing=True)
    assert not report.ok
    assert [(m.record, Path(m.path).name) for m in report.missing_images] == [(4, "d.jpg")]  # as before: missing only
    assert [(u.ref.record, Path(u.ref.path).name, u.reason.split(":")[0]) for u in report.unreadable_images] == [
        (2, "b.jpg", "0 bytes"), (3, "c.jpg", "cannot decode"), (5, "e.jpg", "cannot decode")]
    assert report.to_dict()["unreadable_images"][0] == {"path": str(tmp_path / "b.jpg"), "record": 2,
                                                        "field": "image", "reason": "0 bytes"}
    with pytest.raises(DataError) as err:
        validate("pope", path, images_root=tmp_path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{path}, field 'image': 4 unreadable images: {tmp_path / 'b.jpg'} (0 bytes; record 2), "
                              f"{tmp_path / 'c.jpg'} (cannot decode: ")
    # file order, each image once (b.jpg is asked about twice)
    assert [name for name in ("b.jpg", "c.jpg", "d.jpg (missing; record 4)", "e.jpg") if name in message] == [
        "b.jpg", "c.jpg", "d.jpg (missing; record 4)", "e.jpg"]
    assert message.count("b.jpg") == 1
    # decode=False looks images up only, as before
    assert validate("pope", path, images_root=tmp_path, allow_missing=True, decode=False).unreadable_images == ()


def test_one_corrupt_vg_image_names_record_field_and_reason(root: Path) -> None:
    corrupt = _truncated_png(root / "VG" / "VG_100K" / "2.png")
    path = _write(root / "desc_data.json", {"1": {"chosen": ["c"], "rejected": ["r"]},
                                            "2": {"chosen": ["c"], "rejected": ["r"]}})
    with pytest.raises(DataError) as err:
        validate("desc", path, images_root=root)
    assert (err.value.record, err.value.field) == ("2", "image_id")
    assert str(err.value).startswith(f"{path}, record '2', field 'image_id': unreadable image {corrupt}: cannot decode")


def test_cli_fails_on_a_corrupt_image_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hadpo.cli import main

    (tmp_path / "a.jpg").write_bytes(b"")
    path = _lines(tmp_path / "coco_pope_random.json", _q(1, "a.jpg", "yes"))
    assert main(["validate", "--kind", "pope", str(path), "--images-root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err == f"error: {path}, record 1, field 'image': unreadable image {tmp_path / 'a.jpg'}: 0 bytes\n"


#: one file that holds no record, in each kind's own container
_NO_RECORDS = {"desc": "{}", "pope-data": "[]", "vg-images": "[]", "vg-objects": "[]", "vg-regions": "[]",
               "coco": '{"images": [], "categories": [], "annotations": []}', "pope": "", "pope-answers": "\n",
               "shr-images": "[]", "shr-factual": "", "llava": "[]"}


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("content", ["", " \n\t\n", None])
def test_every_kind_rejects_a_file_without_records(tmp_path: Path, kind: str, content: str | None) -> None:
    # None: the kind's empty container ({} / [] / blank lines); each used to validate with 0 records and exit 0
    path = tmp_path / "input.json"
    path.write_text(_NO_RECORDS[kind] if content is None else content)
    with pytest.raises(DataError) as err:
        validate(kind, path)
    assert err.value.file == str(path)
    assert "no records" in str(err.value) or "non-empty list" in str(err.value)
    assert "\n" not in str(err.value)


def test_desc_repeated_key_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "desc_data.json"
    path.write_text('{"1": {"chosen": ["c"], "rejected": ["r"]},\n "1": {"chosen": ["d"], "rejected": ["s"]}}')
    with pytest.raises(DataError, match="duplicate key '1'") as err:
        validate("desc", path)
    assert (err.value.line, err.value.field) == (2, "1")


def test_non_utf8_jsonl_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "answers.jsonl"
    path.write_bytes(b'{"question_id": 1, "answer": "yes"}\n{"question_id": 2, "answer": "\xff"}\n')
    with pytest.raises(DataError, match="not UTF-8 text") as err:
        validate("pope-answers", path)
    assert (err.value.file, err.value.line) == (str(path), 2)
