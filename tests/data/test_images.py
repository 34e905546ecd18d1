"""``preflight_images``: every image decoded up front, one error listing each unreadable file and why."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from hadpo.data import images as images_module
from hadpo.data.images import (
    LISTED_IMAGES,
    ImageRef,
    find_unreadable_images,
    image_problem,
    preflight_images,
    unreadable_images_error,
)
from hadpo.errors import DataError


def _good(path: Path) -> Path:
    Image.new("RGB", (8, 6), (10, 200, 30)).save(path)
    return path


def _truncated(path: Path) -> Path:
    """A PNG whose header is intact but whose pixel data stops half way: PIL opens it, ``load()`` fails."""
    Image.effect_noise((64, 64), 50).save(path, format="PNG")  # noise: the pixel data is most of the file
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """good.png, empty.png (0 bytes), cut.png (truncated), text.png (a text file), and no missing.png."""
    _good(tmp_path / "good.png")
    (tmp_path / "empty.png").write_bytes(b"")
    _truncated(tmp_path / "cut.png")
    (tmp_path / "text.png").write_text("this is not an image\n")
    return tmp_path


def test_each_kind_of_failure_has_its_reason(folder: Path) -> None:
    assert image_problem(folder / "good.png") is None
    assert image_problem(folder / "missing.png") == "missing"
    assert image_problem(folder / "empty.png") == "0 bytes"
    assert image_problem(folder / "cut.png") == "cannot decode: image file is truncated"
    assert image_problem(folder / "text.png") == "cannot decode: not an image format PIL can read"
    assert image_problem(folder) == "not a file"


def test_error_lists_every_failure_in_input_order_on_one_line(folder: Path) -> None:
    source = folder / "pairs.json"
    refs = [ImageRef(str(folder / name), record=i, field="image") for i, name in
            enumerate(["text.png", "good.png", "missing.png", "cut.png", "empty.png", "text.png"])]
    with pytest.raises(DataError) as err:
        preflight_images(refs, source=source, progress=False)
    message = str(err.value)
    assert "\n" not in message
    assert message == (
        f"{source}, field 'image': 4 unreadable images: "
        f"{folder / 'text.png'} (cannot decode: not an image format PIL can read; record 0), "
        f"{folder / 'missing.png'} (missing; record 2), "
        f"{folder / 'cut.png'} (cannot decode: image file is truncated; record 3), "
        f"{folder / 'empty.png'} (0 bytes; record 4)"
    )
    assert (err.value.file, err.value.record) == (str(source), None)


def test_a_single_failure_is_located_at_its_record(folder: Path) -> None:
    ref = ImageRef(str(folder / "empty.png"), record="42", field="image_id", file="desc_data.json")
    with pytest.raises(DataError) as err:
        preflight_images([folder / "good.png", ref], progress=False)
    empty = folder / "empty.png"
    assert str(err.value) == f"desc_data.json, record '42', field 'image_id': unreadable image {empty}: 0 bytes"
    missing = ImageRef(str(folder / "missing.png"), record=3, field="image", file="q.json")
    with pytest.raises(DataError, match=r"^q\.json, record 3, field 'image': image not found: .*missing\.png$"):
        preflight_images([missing], progress=False)


def test_good_images_pass_and_are_counted_once(folder: Path) -> None:
    second = _good(folder / "second.png")
    assert preflight_images([folder / "good.png", str(second), ImageRef(str(folder / "good.png"), record=7)],
                            progress=False) == 2
    assert preflight_images([], progress=False) == 0


def test_images_from_several_files_name_each_file(folder: Path) -> None:
    refs = [ImageRef(str(folder / "empty.png"), record="1", field="image_id", file="/d/desc_data.json"),
            ImageRef(str(folder / "cut.png"), record="0", field="image_id", file="/d/pope_data.json")]
    with pytest.raises(DataError) as err:
        preflight_images(refs, progress=False)
    assert str(err.value).startswith("/d/desc_data.json, /d/pope_data.json, field 'image_id': 2 unreadable images: ")
    assert "(0 bytes; desc_data.json, record '1')" in str(err.value)
    assert "(cannot decode: image file is truncated; pope_data.json, record '0')" in str(err.value)


def test_long_lists_are_capped_but_counted_in_full(tmp_path: Path) -> None:
    refs = [ImageRef(str(tmp_path / f"{i:03d}.png"), record=i) for i in range(LISTED_IMAGES + 5)]
    problems = find_unreadable_images(refs, workers=4)
    assert [p.ref.record for p in problems] == list(range(LISTED_IMAGES + 5))  # threads, yet input order
    message = str(unreadable_images_error(problems, source="q.json"))
    assert message.startswith(f"q.json: {LISTED_IMAGES + 5} unreadable images: ")
    assert message.endswith(f"{tmp_path / '019.png'} (missing; record 19), and 5 more")
    assert "020.png" not in message


def test_a_large_set_shows_a_bar_only_when_progress_is_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _good(tmp_path / "good.png")
    # 200 distinct paths to one small image (links), so the set reaches the bar's threshold cheaply
    paths = []
    for i in range(images_module.PROGRESS_MIN_IMAGES):
        link = tmp_path / f"{i}.png"
        os.link(good, link)
        paths.append(link)
    assert preflight_images(paths, progress=False, desc="check images") == len(paths)
    assert "check images" not in "".join(capsys.readouterr())
    assert preflight_images(paths, progress=True, desc="check images") == len(paths)
    # not a terminal here: the bar's summary line, on stdout (hadpo.progress)
    out, err = capsys.readouterr()
    assert out.startswith(f"check images: {len(paths)}/{len(paths)} images in ") and err == ""


def test_a_verified_image_is_decoded_once_until_it_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.png"
    Image.effect_noise((64, 64), 50).save(path)
    assert preflight_images([path], progress=False) == 1

    def no_open(*args: object, **kwargs: object) -> None:
        raise AssertionError("a verified, unchanged image was decoded again")

    with monkeypatch.context() as patch:
        patch.setattr(Image, "open", no_open)
        assert preflight_images([path], progress=False) == 1
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # a new size: the remembered success no longer applies
    with pytest.raises(DataError, match="cannot decode: image file is truncated"):
        preflight_images([path], progress=False)


def test_no_unreadable_images_is_not_an_error() -> None:
    with pytest.raises(ValueError, match="no unreadable images"):
        unreadable_images_error([])
