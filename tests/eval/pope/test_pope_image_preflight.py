"""POPE decodes every image it still has to answer before the model loads, and lists every bad one at once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hadpo.data.layout import DataLayout
from hadpo.data.pope_files import read_pope_questions
from hadpo.errors import DataError
from hadpo.eval.pope.config import PopeConfig
from hadpo.eval.pope.stage import run_pope
from hadpo.models import loading


def _cfg(root: Path, model: Path, run_dir: Path, **kw: object) -> PopeConfig:
    base = {"data_root": str(root), "model": str(model), "run_dir": str(run_dir), "max_new_tokens": 2,
            "batch_size": 8, "device": "cpu", "progress": False}
    return PopeConfig.from_dict({**base, **kw})


def _no_model(*args: object, **kwargs: object) -> None:
    raise AssertionError("the model was loaded before the images were checked")


@pytest.fixture
def root(pope_root: Path, tmp_path: Path) -> Path:
    """A private copy of the POPE data root (the shared one is read-only)."""
    return shutil.copytree(pope_root, tmp_path / "data")


def _images(root: Path, pope_set: str) -> list[str]:
    return list(dict.fromkeys(q.image for q in read_pope_questions(DataLayout(root).pope_file(pope_set))))


def test_bad_images_fail_every_set_before_the_model_loads(root: Path, varied_model_dir: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    folder = DataLayout(root).coco_images
    first, second = _images(root, "random")[:2]
    (folder / first).write_bytes(b"")
    (folder / second).unlink()
    monkeypatch.setattr(loading, "load_model", _no_model)
    run_dir = tmp_path / "run"
    with pytest.raises(DataError) as err:
        run_pope(_cfg(root, varied_model_dir, run_dir, set="all"))
    message = str(err.value)
    random_file = DataLayout(root).pope_file("random")
    # each image once, at its first question, in question order
    first_q = next(q for q in read_pope_questions(random_file) if q.image == first)
    assert message.startswith(f"{random_file}, field 'image': 2 unreadable images: "
                              f"{folder / first} (0 bytes; record {first_q.question_id}), {folder / second} (missing; ")
    assert not list(run_dir.glob("*/answers*.jsonl"))


def test_only_images_left_to_answer_are_checked(root: Path, varied_model_dir: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = tmp_path / "run"
    finished = run_pope(_cfg(root, varied_model_dir, run_dir, set="random"))
    image = _images(root, "random")[0]
    (DataLayout(root).coco_images / image).write_text("no longer an image")
    monkeypatch.setattr(loading, "load_model", _no_model)
    # every random question is answered: its images are not read again, so a rescoring rerun passes
    assert run_pope(_cfg(root, varied_model_dir, run_dir, set="random")) == finished
    with pytest.raises(DataError, match=rf"coco_pope_popular\.json, record \d+, field 'image': unreadable image "
                                        rf".*{image}: cannot decode"):
        run_pope(_cfg(root, varied_model_dir, run_dir, set="popular"))
    assert not (run_dir / "popular" / "answers.jsonl").exists()
