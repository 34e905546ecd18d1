"""MMHal-Bench's question file read as released, each item mapped to its local image, and every bad value named by
file, record and field."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from hadpo.data.images import preflight_images
from hadpo.data.mmhal_files import image_path, image_refs, read_mmhal, type_order
from hadpo.errors import DataError

#: One record as the release writes it (the template's model_answer is empty).
RECORD = {"question_type": "attribute", "question_topic": "animal", "image_id": "cb47c9ce4c5ce6ef",
          "image_src": "https://c5.staticflickr.com/8/7283/8747592697_0ea0ec3d08_o.jpg",
          "image_content": ["Bird", "Tree"], "question": "What colour is the bird?",
          "gt_answer": "The bird is blue.", "model_answer": ""}


def _write(tmp_path: Path, records: object) -> Path:
    path = tmp_path / "response_template.json"
    path.write_text(json.dumps(records))
    return path


def test_an_item_is_read_as_released_and_named_by_its_position(tmp_path):
    filled = {**RECORD, "question_type": "counting", "model_answer": "There is one bird."}
    first, second = read_mmhal(_write(tmp_path, [RECORD, filled]))
    assert (first.index, first.question_type, first.question_topic, first.image_id) == (
        0, "attribute", "animal", "cb47c9ce4c5ce6ef")
    assert first.image_content == ("Bird", "Tree") and first.gt_answer == "The bird is blue."
    assert first.model_answer is None  # the template's empty answer
    assert (second.index, second.model_answer) == (1, "There is one bird.")  # the same image_id, its own item
    # The local image is the last component of image_src, in the images folder.
    assert first.image_file == "8747592697_0ea0ec3d08_o.jpg"
    assert image_path(first, tmp_path / "images") == tmp_path / "images" / "8747592697_0ea0ec3d08_o.jpg"


def test_types_report_in_the_releases_order_and_a_users_own_type_is_kept(tmp_path):
    items = read_mmhal(_write(tmp_path, [{**RECORD, "question_type": t} for t in ("other", "mood", "attribute")]))
    assert [i.question_type for i in items] == ["other", "mood", "attribute"]
    assert type_order(i.question_type for i in items) == ["attribute", "other", "mood"]


@pytest.mark.parametrize("records,where,says", [
    ({"questions": []}, r"response_template\.json: ", "expected a non-empty JSON list of questions, got dict"),
    ([], r"response_template\.json: ", "expected a non-empty JSON list of questions"),
    ([RECORD, "What is this?"], r"record 1: ", "expected a JSON object, got str 'What is this\\?'"),
    ([{k: v for k, v in RECORD.items() if k != "question"}], r"record 0, field 'question'", "missing required field"),
    ([{**RECORD, "question_type": ""}], r"record 0, field 'question_type'", "expected a non-empty string"),
    ([{**RECORD, "image_content": "Bird, Tree"}], r"record 0, field 'image_content'", "expected a list, got"),
    ([{**RECORD, "image_content": ["Bird", 3]}], r"record 0, field 'image_content'", "at position 1"),
    ([{**RECORD, "image_id": ["a"]}], r"record 0, field 'image_id'", "expected a string, got list"),
    ([{**RECORD, "image_src": "images/"}], r"record 0, field 'image_src'", r"no file name in 'images/'"),
    ([RECORD, {**RECORD, "gt_answer": " "}], r"record 1, field 'gt_answer'", "expected a non-empty string"),
    ([{**RECORD, "model_answer": 5}], r"record 0, field 'model_answer'", "expected a string, got"),
], ids=["not-a-list", "empty", "not-an-object", "no-question", "empty-type", "content-not-a-list",
        "content-not-strings", "id-a-list", "src-no-file", "empty-answer", "answer-not-a-string"])
def test_a_bad_value_is_named_by_file_record_and_field(tmp_path, records, where, says):
    path = _write(tmp_path, records)
    with pytest.raises(DataError, match=where + ".*" + says) as caught:
        read_mmhal(path)
    assert caught.value.file == str(path)


def test_a_missing_image_is_named_by_the_question_file_its_record_and_image_src(tmp_path):
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 0, 0)).save(buffer, format="JPEG")
    other = {**RECORD, "image_src": "https://example.invalid/a/present.jpg"}
    path = _write(tmp_path, [other, RECORD])
    images = tmp_path / "images"
    images.mkdir()
    (images / "present.jpg").write_bytes(buffer.getvalue())
    items = read_mmhal(path)
    assert preflight_images(image_refs(items[:1], images, path), progress=False) == 1
    with pytest.raises(DataError) as caught:
        preflight_images(image_refs(items, images, path), progress=False)
    error = caught.value
    assert (error.file, error.record, error.field) == (str(path), 1, "image_src")
    assert f"image not found: {images / '8747592697_0ea0ec3d08_o.jpg'}" in str(error)
