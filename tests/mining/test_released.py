"""The released-data path: validation, drops with reasons, leak exclusion, training files and counts."""

from __future__ import annotations

import json
import shutil

import pytest

from hadpo.data.hadpo_files import read_desc_data, read_pope_data
from hadpo.data.pairs import build_hadpo_pairs
from hadpo.errors import DataError
from hadpo.io import read_json
from hadpo.mining.config import DataConfig
from hadpo.mining.released import prepare_released
from hadpo.mining.stage import run as prepare_data
from hadpo.mining.stage import training_files
from hadpo.world import load_world


@pytest.fixture
def released(mining_world, tmp_path):
    """A world copy with released-style files: train images t0..t3 and one SHR image; t2's file is deleted."""
    root = tmp_path / "data"
    shutil.copytree(mining_world, root)
    world = load_world(root)
    t = [str(i) for i in world.splits["train"][:4]]
    shr = str(world.splits["shr"][0])
    folder = root / "hadpo" / "llava-v1.5"
    folder.mkdir(parents=True)
    desc = {i: {"chosen": [f"c{i}a", f"c{i}b"], "rejected": [f"r{i}a", f"r{i}b"], "extra": i} for i in [*t, shr]}
    (folder / "desc_data.json").write_text(json.dumps(desc))
    record = {"question": "Is there a x in the image?", "answer": "no", "chosen": "No.", "reject": "Yes."}
    pope = [{"image_id": int(t[0]), **record, "correct": False}, {"image_id": int(t[1]), **record, "correct": True},
            {"image_id": int(t[2]), **record, "correct": False}, {"image_id": int(shr), **record, "correct": False}]
    (folder / "pope_data.json").write_text(json.dumps(pope))
    world.images[int(t[2])].path.unlink()
    cfg = DataConfig.from_dict(dict(source="released", data_root=str(root), run_dir=str(tmp_path / "run")))
    return cfg, t, shr


def test_records_are_dropped_with_their_reason_and_missing_images_listed(released):
    cfg, t, shr = released
    stats = prepare_released(cfg)
    assert stats["records"]["desc"] == {"total": 5, "kept": 3, "dropped": {"leak": 1, "missing_image": 1}}
    assert stats["records"]["pope"] == {"total": 4, "kept": 2,
                                        "dropped": {"correct": 1, "leak": 1, "missing_image": 1}}
    assert [m["image_id"] for m in stats["missing_images"]] == [t[2]]
    assert stats["missing_images"][0]["used_by"] == ["desc", "pope"]
    assert stats["missing_images"][0]["path"].endswith(f"VG_100K/{t[2]}.png")
    assert stats["leaks"]["shr"] == 1 and stats["leaks"]["image_ids"] == [int(shr)]
    assert stats["images"] == {"desc": 5, "pope": 4, "total": 5, "missing": 1, "training": 3}
    assert stats["pairs"]["offline"] == {"desc": 6, "qa": 1, "total": 7}
    assert stats["pairs"]["all"] == {"desc": 6, "qa": 1, "total": 7}
    assert stats["pairs_as_released"]["offline"] == {"desc": 10, "qa": 3, "total": 13}
    assert stats["validation"]["pope"]["counts"] == {"pairs": 3, "skipped_correct": 1}
    assert read_json(cfg.run_dir + "/data_stats.json") == json.loads(json.dumps(stats))


def test_an_undecodable_image_is_dropped_like_a_missing_one(released):
    cfg, t, _ = released
    world = load_world(cfg.data_root)
    world.images[int(t[3])].path.write_bytes(b"")  # a download that never arrived
    stats = prepare_released(cfg)
    assert [(m["image_id"], m["reason"], m["used_by"]) for m in stats["missing_images"]] == [
        (t[2], "missing", ["desc", "pope"]), (t[3], "0 bytes", ["desc"])]
    assert stats["records"]["desc"]["dropped"] == {"leak": 1, "missing_image": 2}
    assert t[3] not in read_json(cfg.run_dir + "/desc_data.json")


def test_training_files_keep_released_fields_and_load_for_training(released):
    cfg, t, _ = released
    prepare_data(cfg)
    desc_path, pope_path = training_files(cfg)
    raw = read_json(desc_path)
    assert list(raw) == [t[0], t[1], t[3]] and raw[t[0]]["extra"] == t[0]
    assert [r["image_id"] for r in read_json(pope_path)] == [int(t[0]), int(t[1])]
    pairs = build_hadpo_pairs(read_desc_data(desc_path), read_pope_data(pope_path))
    assert len(pairs) == 1 + 2 * 3


def test_leaks_can_be_kept_and_malformed_files_are_located(released):
    cfg, _, _ = released
    kept = prepare_released(cfg.replace(exclude_leaks=False))
    assert kept["records"]["desc"]["kept"] == 4 and kept["leaks"]["excluded"] is False
    folder = cfg.data_root + "/hadpo/llava-v1.5"
    data = read_json(folder + "/pope_data.json")
    data[1]["chosen"] = 3
    with open(folder + "/pope_data.json", "w") as fh:
        json.dump(data, fh)
    with pytest.raises(DataError, match=r"pope_data.json.*record 1.*field 'chosen'"):
        prepare_released(cfg)


def test_one_empty_file_is_a_partial_release_both_empty_is_an_error(released):
    cfg, _, _ = released
    folder = cfg.data_root + "/hadpo/llava-v1.5"
    with open(folder + "/pope_data.json", "w") as fh:
        fh.write("[]")
    stats = prepare_released(cfg)
    assert stats["records"]["pope"]["total"] == 0 and list(stats["validation"]) == ["desc"]
    with open(folder + "/desc_data.json", "w") as fh:
        fh.write("{}")
    with pytest.raises(DataError, match="no records: both preference files are empty"):
        prepare_released(cfg)
