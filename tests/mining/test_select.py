"""Image selection: annotation thresholds, seeded draw, leak exclusion, missing files."""

from __future__ import annotations

import shutil

from hadpo.mining.annotations import load_annotations
from hadpo.mining.config import DataConfig
from hadpo.mining.leak import load_eval_images
from hadpo.mining.select import select_images
from hadpo.world import load_world


def config(root, **kw) -> DataConfig:
    base = {"source": "mine", "data_root": str(root), "min_objects": 1, "max_objects": 3, "min_regions": 1,
            "n_images": 8}
    return DataConfig.from_dict(dict(**{**base, **kw}))


def test_thresholds_decide_eligibility_and_are_counted(mining_world):
    annotations = load_annotations(mining_world)
    sizes = {i: a.num_objects for i, a in annotations.items()}
    cfg = config(mining_world, min_objects=2, max_objects=2, n_images=1000, exclude_leaks=False)
    selection = select_images(cfg, annotations, load_eval_images(mining_world))
    counts = selection["counts"]
    assert counts["too_few_objects"] == sum(1 for n in sizes.values() if n < 2)
    assert counts["too_many_objects"] == sum(1 for n in sizes.values() if n > 2)
    assert counts["eligible"] == counts["selected"] == sum(1 for n in sizes.values() if n == 2)
    assert all(im["objects"] == 2 for im in selection["images"])
    # every image has one region per object plus the background region
    assert all(im["regions"] == 3 for im in selection["images"])
    fewer = select_images(config(mining_world, min_regions=4, n_images=1000), annotations,
                          load_eval_images(mining_world))
    assert fewer["counts"]["too_few_regions"] == sum(1 for n in sizes.values() if n + 1 < 4)
    assert fewer["counts"]["selected"] == sum(1 for n in sizes.values() if n == 3) - fewer["counts"]["leaks_excluded"]


def test_draw_is_seeded_and_never_takes_an_evaluation_image(mining_world):
    annotations = load_annotations(mining_world)
    evals = load_eval_images(mining_world)
    world = load_world(mining_world)
    a = select_images(config(mining_world, seed=1), annotations, evals)
    assert a == select_images(config(mining_world, seed=1), annotations, evals)
    assert [im["image_id"] for im in a["images"]] != [im["image_id"]
                                                       for im in select_images(config(mining_world, seed=2),
                                                                               annotations, evals)["images"]]
    assert len(a["images"]) == 8
    train = set(world.splits["train"])
    everyone = select_images(config(mining_world, n_images=1000), annotations, evals)
    assert {im["image_id"] for im in everyone["images"]} == train  # POPE pool and SHR images are all excluded
    leaks = everyone["leaks"]
    assert (leaks["pope"], leaks["shr"], leaks["total"]) == (4, 3, 7)
    assert everyone["counts"]["leaks_excluded"] == 7 and everyone["selected_leaks"] == 0
    assert leaks["sources"]["pope"][0].endswith("instances_val2014.json")  # no POPE question file yet


def test_leaks_are_counted_but_kept_when_asked(mining_world):
    kept = select_images(config(mining_world, n_images=1000, exclude_leaks=False), load_annotations(mining_world),
                         load_eval_images(mining_world))
    assert kept["leaks"]["total"] == 7 and kept["leaks"]["excluded"] is False
    assert kept["selected_leaks"] == 7 and kept["counts"]["leaks_excluded"] == 0
    assert kept["counts"]["selected"] == 24 + 4 + 3


def test_images_missing_on_disk_are_skipped_and_counted(mining_world, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(mining_world, root)
    world = load_world(root)
    gone = world.splits["train"][:3]
    for image_id in gone:
        world.images[image_id].path.unlink()
    selection = select_images(config(root, n_images=1000), load_annotations(root), load_eval_images(root))
    assert selection["counts"]["missing_file"] == 3 and sorted(selection["missing_files"]) == sorted(gone)
    assert not set(gone) & {im["image_id"] for im in selection["images"]}
    assert selection["counts"]["selected"] == 21
