"""Mining decodes every selected image before the judge is asked or the model describes anything."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hadpo.errors import DataError
from hadpo.mining import mine as mine_module
from hadpo.mining.annotations import load_annotations
from hadpo.mining.config import DataConfig
from hadpo.mining.leak import load_eval_images
from hadpo.mining.select import select_images
from hadpo.models import loading


def _fail(what: str):
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"{what} before the images were checked")

    return fail


def test_a_corrupt_selected_image_fails_before_the_judge_and_the_model(
    mining_world: Path, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = shutil.copytree(mining_world, tmp_path / "data")  # the shared world is read-only
    run_dir = tmp_path / "run"
    cfg = DataConfig.from_dict({"source": "mine", "data_root": str(root), "run_dir": str(run_dir),
                                "model": str(tiny_model_dir), "judge": "oracle", "n_images": 6, "min_objects": 1,
                                "max_objects": 3, "min_regions": 1, "device": "cpu", "progress": False,
                                "name": "mined"})
    selected = select_images(cfg, load_annotations(root), load_eval_images(root))["images"]
    bad = selected[2]
    Path(bad["path"]).write_text("not an image")
    monkeypatch.setattr(mine_module, "build_judge", _fail("the judge was built"))
    monkeypatch.setattr(loading, "load_model", _fail("the model was loaded"))
    with pytest.raises(DataError) as err:
        mine_module.mine(cfg)
    assert str(err.value).startswith(f"{run_dir / 'selection.json'}, record {bad['image_id']!r}, field 'path': "
                                     f"unreadable image {Path(bad['path']).absolute()}: cannot decode")
    assert not (run_dir / "descriptions.jsonl").exists()
