"""Evaluation images: POPE question files (or COCO val2014), SHR images, and the leak report."""

from __future__ import annotations

import json
import shutil

import pytest

from hadpo.data.layout import DataLayout
from hadpo.errors import DataError
from hadpo.mining.leak import EvalImages, coco_id_of, leak_report, load_eval_images
from hadpo.world import load_world


def test_coco_id_is_read_from_the_file_name():
    assert coco_id_of("COCO_val2014_000000310196.jpg") == 310196
    assert coco_id_of("no-digits.png") is None


def test_pope_question_files_take_precedence_over_the_coco_pool(mining_world, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(mining_world, root)
    world = load_world(root)
    pool = sorted(world.by_coco_id())
    layout = DataLayout(root)
    layout.pope_dir.mkdir(parents=True)
    asked = pool[:2]
    layout.pope_file("random").write_text("".join(
        json.dumps({"question_id": i + 1, "image": f"COCO_val2014_{c:012d}.png", "text": "Is there a x?",
                    "label": "yes"}) + "\n" for i, c in enumerate(asked)))
    evals = load_eval_images(root)
    assert evals.pope_coco_ids == frozenset(asked)
    assert evals.sources["pope"] == [str(layout.pope_file("random"))]
    assert evals.shr_image_ids == frozenset(world.splits["shr"])


def test_unreadable_pope_image_name_is_located(mining_world, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(mining_world, root)
    layout = DataLayout(root)
    layout.pope_dir.mkdir(parents=True)
    layout.pope_file("adversarial").write_text(json.dumps({"question_id": 7, "image": "cat.png", "text": "q"}) + "\n")
    with pytest.raises(DataError, match=r"record 7.*field 'image'"):
        load_eval_images(root)


def test_report_counts_each_kind_and_names_missing_sources(tmp_path):
    evals = EvalImages(frozenset({900001}), frozenset({5}), {"pope": ["p"], "shr": []})
    report = leak_report([(1, 900001), (5, None), (6, 900002), (7, None)], evals, excluded=True)
    assert (report["checked"], report["pope"], report["shr"], report["total"]) == (4, 1, 1, 2)
    assert report["image_ids"] == [1, 5] and report["missing_sources"] == ["shr"]
    empty = load_eval_images(tmp_path)
    assert empty.pope_coco_ids == frozenset() and empty.sources == {"pope": [], "shr": []}
