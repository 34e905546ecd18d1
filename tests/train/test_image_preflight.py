"""Training checks every image before the model loads: a corrupt one fails the run before its first step."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hadpo.data.layout import DataLayout
from hadpo.data.vg import read_vg_images
from hadpo.distributed import DistContext
from hadpo.errors import DataError
from hadpo.train import objectives
from hadpo.train.config import TrainConfig
from hadpo.train.launch import TrainingFailed
from hadpo.train.stage import LOG_FILE, launch_training

CPU = DistContext(rank=0, local_rank=0, world_size=1, device="cpu")


def _cfg(tmp_path: Path, model: Path, data: Path, **overrides: object) -> TrainConfig:
    base = dict(objective="dpo", model=str(model), data_root=str(data), output_dir=str(tmp_path / "run"),
                template="vicuna_v1", per_device_batch_size=2, max_steps=2, save_steps=1, launcher="python",
                deepspeed_config=None, device="cpu", lora_r=4, lora_alpha=8)
    return TrainConfig.from_dict({**base, **overrides})


def _vg_path(root: Path, image_id: str) -> Path:
    layout = DataLayout(root)
    return next(im.path(layout) for im in read_vg_images(layout.image_data) if str(im.image_id) == image_id)


@pytest.fixture
def broken_world(train_world: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    """A copy of the training world (the shared one is read-only) with a description pair's image (one no QA pair
    uses) emptied and the first QA pair's image truncated; returns (data root, empty image, truncated image)."""
    root = shutil.copytree(train_world, tmp_path / "data")
    folder = root / "hadpo" / "llava-v1.5"
    qa_ids = [str(r["image_id"]) for r in json.loads((folder / "pope_data.json").read_text())]
    desc_id = next(i for i in json.loads((folder / "desc_data.json").read_text()) if i not in qa_ids)
    qa_id = qa_ids[0]
    empty, cut = _vg_path(root, desc_id), _vg_path(root, qa_id)
    empty.write_bytes(b"")
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    return root, empty, cut


def _no_model(*args: object, **kwargs: object) -> None:
    raise AssertionError("the model was loaded before the images were checked")


def test_dpo_fails_before_the_model_loads_listing_both_images(
    broken_world: tuple[Path, Path, Path], tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, empty, cut = broken_world
    monkeypatch.setattr(objectives, "_load", _no_model)
    with pytest.raises(DataError) as err:
        objectives.build_dpo(_cfg(tmp_path, tiny_model_dir, root), CPU)
    message = str(err.value)
    # QA pairs come first in the training list, so pope_data.json and its truncated image are named first
    assert message.startswith(f"{root / 'hadpo' / 'llava-v1.5' / 'pope_data.json'}, "
                              f"{root / 'hadpo' / 'llava-v1.5' / 'desc_data.json'}, field 'image_id': "
                              "2 unreadable images: ")
    assert f"{cut} (cannot decode: " in message and "pope_data.json, record '0')" in message
    assert f"{empty} (0 bytes; desc_data.json, record " in message
    assert message.index(str(cut)) < message.index(str(empty))


def test_sft_fails_before_the_model_loads(train_world: Path, tiny_model_dir: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    root = shutil.copytree(train_world, tmp_path / "data")
    sft = root / "llava" / "llava_instruct.json"
    first = json.loads(sft.read_text())[0]["image"]
    (root / "VG" / first).write_text("not an image")
    monkeypatch.setattr(objectives, "_load", _no_model)
    with pytest.raises(DataError) as err:
        objectives.build_sft(_cfg(tmp_path, tiny_model_dir, root, objective="sft"), CPU)
    assert str(err.value).startswith(f"{sft}, record 0, field 'image': unreadable image {root / 'VG' / first}: "
                                     "cannot decode")


def test_launched_run_fails_before_its_first_step(broken_world: tuple[Path, Path, Path], tiny_model_dir: Path,
                                                  tmp_path: Path) -> None:
    root, empty, cut = broken_world
    cfg = _cfg(tmp_path, tiny_model_dir, root)
    with pytest.raises(TrainingFailed) as err:
        launch_training(cfg, echo=None)
    assert "2 unreadable images" in str(err.value) and str(empty) in str(err.value) and str(cut) in str(err.value)
    out = Path(cfg.output_dir)
    assert "DataError" in (out / LOG_FILE).read_text()
    # nothing trained: no metrics line, no checkpoint, no summary
    assert not (out / "metrics.jsonl").exists() or (out / "metrics.jsonl").read_text() == ""
    assert not (out / "checkpoints").exists() and not (out / "train_done.json").exists()
