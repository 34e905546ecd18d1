"""SHR decodes every image it still has to describe before the judge is asked or the model loads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hadpo.errors import DataError
from hadpo.eval.shr import stage
from hadpo.eval.shr.config import ShrConfig
from hadpo.eval.shr.inputs import load_shr_inputs
from hadpo.models import loading


class ModelLoaded(Exception):
    """Raised in place of loading the model: the run got past the image check."""


def _load_model(*args: object, **kwargs: object) -> None:
    raise ModelLoaded


def _cfg(root: Path, model: Path, run_dir: Path) -> ShrConfig:
    return ShrConfig.from_dict(dict(data_root=str(root), model=str(model), run_dir=str(run_dir), judge="oracle",
                                    max_new_tokens=4, device="cpu", progress=False))


@pytest.fixture
def root(shr_world: Path, tmp_path: Path) -> Path:
    """A private copy of the SHR world (the shared one is read-only)."""
    return shutil.copytree(shr_world, tmp_path / "data")


def test_bad_images_fail_before_the_judge_and_the_model(root: Path, tiny_model_dir: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    inputs = load_shr_inputs(root)
    inputs[1].image_path.write_bytes(b"")
    data = inputs[3].image_path.read_bytes()
    inputs[3].image_path.write_bytes(data[:40])  # the PNG header survives, the pixels do not

    def no_judge(*args: object, **kwargs: object) -> None:
        raise AssertionError("the judge was built before the images were checked")

    monkeypatch.setattr(stage, "build_judge", no_judge)
    monkeypatch.setattr(loading, "load_model", _load_model)
    run_dir = tmp_path / "shr"
    with pytest.raises(DataError) as err:
        stage.run_shr(_cfg(root, tiny_model_dir, run_dir))
    assert str(err.value).startswith(
        f"{root / 'shr' / 'val_images_final.json'}, field 'image_id': 2 unreadable images: "
        f"{inputs[1].image_path} (0 bytes; record '{inputs[1].image_id}'), {inputs[3].image_path} (cannot decode")
    assert not (run_dir / "descriptions.jsonl").exists()


def test_images_already_described_are_not_read_again(root: Path, tiny_model_dir: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    inputs = load_shr_inputs(root)
    inputs[0].image_path.write_text("no longer an image")
    run_dir = tmp_path / "shr"
    run_dir.mkdir()
    record = {"image_id": inputs[0].image_id, "response": "A red circle.", "num_tokens": 4}
    (run_dir / "descriptions.jsonl").write_text(json.dumps(record) + "\n")
    monkeypatch.setattr(loading, "load_model", _load_model)
    # the broken image has its description: the check lets the run through to the model for the other four
    with pytest.raises(ModelLoaded):
        stage.run_shr(_cfg(root, tiny_model_dir, run_dir))
