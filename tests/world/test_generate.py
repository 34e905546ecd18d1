"""Writing a world: formats, determinism, splits, reruns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hadpo.data.layout import DataLayout
from hadpo.errors import DataError, ParamsError
from hadpo.io import atomic_write_json, read_json, read_jsonl
from hadpo.world import WorldConfig, generate_world, verify_world
from hadpo.world.generate import COCO_ID_BASE, coco_file_name
from hadpo.world.text import object_phrase

#: The benchmark writers' folders under a world's root.
BENCH_FOLDERS = ("chair/", "AMBER/", "MMHal-Bench/")
TINY = WorldConfig(seed=3, train_images=40, pope_images=8, shr_images=6, bench_images=4)


def all_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    first = all_files(generate_world(tmp_path / "a", TINY))
    again = all_files(generate_world(tmp_path / "b", TINY))
    other = all_files(generate_world(tmp_path / "c", TINY.replace(seed=4)))
    assert first == again
    # VG copies plus COCO copies of the POPE pool; the benchmark images live in the benchmarks' folders only.
    assert sum(name.endswith(".png") and name.startswith(("VG/", "coco2014/")) for name in first) == 40 + 8 + 6 + 8
    assert sum(name.startswith("chair/images/") for name in first) == 4
    assert set(first) == set(other)
    changed = [name for name in first if first[name] != other[name]]
    assert "VG/VG_100K/1.png" in changed and "llava/llava_instruct.json" in changed


def test_the_benchmark_split_leaves_every_other_file_as_it_was(tmp_path: Path) -> None:
    with_bench = all_files(generate_world(tmp_path / "a", TINY))
    without = all_files(generate_world(tmp_path / "b", TINY.replace(bench_images=0)))
    # world.json records the settings and the benchmark files; everything the other splits wrote is byte-identical.
    shared = [name for name in without if name != "world.json" and not name.startswith(BENCH_FOLDERS)]
    assert shared and all(with_bench[name] == without[name] for name in shared)
    assert not any(name.startswith("chair/images/") for name in without)


def test_splits_are_disjoint_and_every_image_is_in_vg(small_world: Path) -> None:
    layout = DataLayout(small_world)
    meta = read_json(layout.world_meta)
    splits = {name: set(ids) for name, ids in meta["splits"].items()}
    assert {name: len(ids) for name, ids in splits.items()} == {"train": 1000, "pope": 40, "shr": 20, "bench": 10}
    assert not splits["train"] & splits["pope"] and not splits["train"] & splits["shr"]
    assert not splits["pope"] & splits["shr"]
    assert not splits["bench"] & (splits["train"] | splits["pope"] | splits["shr"])
    records = read_json(layout.image_data)
    assert {r["image_id"] for r in records} == splits["train"] | splits["pope"] | splits["shr"]
    for record in records:
        assert set(record) == {"image_id", "url", "width", "height", "coco_id", "flickr_id"}
        assert (record["coco_id"] is not None) == (record["image_id"] in splits["pope"])
        path = layout.vg_image_path(record["url"])
        assert path == layout.vg_dir / "VG_100K" / f"{record['image_id']}.png" and path.is_file()


def test_pope_pool_is_coco_with_three_objects_matching_vg(small_world: Path) -> None:
    layout = DataLayout(small_world)
    meta = read_json(layout.world_meta)
    vg_objects = {r["image_id"]: r["objects"] for r in read_json(layout.objects)}
    coco_to_vg = {r["coco_id"]: r["image_id"] for r in read_json(layout.image_data) if r["coco_id"] is not None}
    instances = read_json(layout.coco_instances)
    names = {c["id"]: c["name"] for c in instances["categories"]}
    assert list(names.values()) == [c["name"] for c in meta["categories"]]
    assert sorted(coco_to_vg.values()) == meta["splits"]["pope"]
    assert all(cid > COCO_ID_BASE for cid in coco_to_vg)
    by_image: dict[int, list[tuple[str, list[float]]]] = {}
    for ann in instances["annotations"]:
        assert ann["iscrowd"] == 0 and 0 < ann["area"] <= ann["bbox"][2] * ann["bbox"][3]
        by_image.setdefault(ann["image_id"], []).append((names[ann["category_id"]], ann["bbox"]))
    assert {i["id"] for i in instances["images"]} == set(coco_to_vg)
    for image in instances["images"]:
        vg_id = coco_to_vg[image["id"]]
        assert image["file_name"] == coco_file_name(image["id"])
        vg = [(o["names"][0], [float(o["x"]), float(o["y"]), float(o["w"]), float(o["h"])]) for o in vg_objects[vg_id]]
        assert len(vg) == 3 and len({name for name, _ in vg}) == 3
        assert sorted(by_image[image["id"]]) == sorted(vg)
        coco_png = layout.coco_images / image["file_name"]
        assert coco_png.read_bytes() == (layout.vg_dir / "VG_100K" / f"{vg_id}.png").read_bytes()


def test_pope_pool_mixes_unpaired_and_ordinary_scenes(small_world: Path, small_world_config) -> None:
    """The first pope_unpaired_share of the pool holds objects of three different pairs (three absent partners
    to ask about); the rest are ordinary 3-object scenes, so pairs co-occur in the pool as POPE's adversarial
    sampling needs."""
    layout = DataLayout(small_world)
    meta = read_json(layout.world_meta)
    pair_of = {name: k for k, pair in enumerate(meta["pairs"]) for name in pair}
    objects = {r["image_id"]: [o["names"][0] for o in r["objects"]] for r in read_json(layout.objects)}
    pool = meta["splits"]["pope"]
    n_unpaired = round(small_world_config.pope_unpaired_share * len(pool))
    unpaired = [len({pair_of[n] for n in objects[i]}) == 3 for i in pool]
    assert all(unpaired[:n_unpaired])
    assert not all(unpaired[n_unpaired:]), "the ordinary part should contain co-occurring pairs"


def test_regions_describe_every_object_plus_the_background(small_world: Path) -> None:
    layout = DataLayout(small_world)
    objects = {r["image_id"]: r["objects"] for r in read_json(layout.objects)}
    for record in read_json(layout.region_descriptions):
        regions = record["regions"]
        assert all(r["image_id"] == record["id"] for r in regions)
        assert len(regions) == len(objects[record["id"]]) + 1
        assert regions[-1]["phrase"] == "a dark noisy background" and regions[-1]["width"] == 48
        for region, obj in zip(regions, objects[record["id"]], strict=False):
            column = (obj["x"] + obj["w"] // 2) // 16
            assert region["phrase"] == object_phrase(obj["names"][0], column)
            box = (region["x"], region["y"], region["width"], region["height"])
            assert box == (obj["x"], obj["y"], obj["w"], obj["h"])


def test_shr_files_parse_and_cover_the_shr_split(small_world: Path) -> None:
    layout = DataLayout(small_world)
    shr_ids = read_json(layout.world_meta)["splits"]["shr"]
    image_data = {r["image_id"]: r for r in read_json(layout.image_data)}
    val = read_json(layout.shr_val_images)
    assert [e["image_id"] for e in val] == shr_ids
    assert all(e["image"] == image_data[e["image_id"]] for e in val)
    part1, part2 = (read_jsonl(p) for p in layout.shr_factual)
    assert len(part1) == len(part2) == 10
    facts: dict[str, list[str]] = {}
    for line in part1 + part2:
        assert len(line) == 1
        facts.update(line)
    assert sorted(int(k) for k in facts) == shr_ids
    objects = {r["image_id"]: r["objects"] for r in read_json(layout.objects)}
    for key, statements in facts.items():
        count = len(objects[int(key)])
        assert statements[0] == f"The image contains exactly {['one', 'two', 'three'][count - 1]} object" + (
            "s." if count > 1 else "."
        )
        assert all(isinstance(s, str) and s.endswith(".") for s in statements)


def test_world_json_records_config_categories_and_hashes(small_world: Path) -> None:
    meta = read_json(DataLayout(small_world).world_meta)
    assert meta["seed"] == 7 and meta["config"]["train_images"] == 1000
    assert meta["pairs"][0] == ["red circle", "blue square"]
    assert meta["categories"][5] == {
        "id": 6,
        "name": "orange ring",
        "colour": "orange",
        "shape": "ring",
        "rgb": [245, 140, 30],
    }
    assert set(meta["files"]) >= {"VG/image_data.json", "llava/llava_instruct.json", "shr/shr_factual_part2.jsonl"}
    assert meta["image_folders"]["VG/VG_100K"]["count"] == 1060
    assert meta["image_folders"]["coco2014/val2014"]["count"] == 40
    assert verify_world(small_world) == []
    assert not (small_world / ".hadpo-world-incomplete").exists()


def test_rerun_with_same_config_skips(tmp_path: Path) -> None:
    root = generate_world(tmp_path / "w", TINY)
    png = root / "VG" / "VG_100K" / "1.png"
    png.write_bytes(b"tampered")  # a regeneration would overwrite this
    assert generate_world(root, WorldConfig.from_dict(TINY.to_dict())) == root
    assert png.read_bytes() == b"tampered"
    assert verify_world(root) == ["VG/VG_100K: the images' hashes differ from world.json (54 found, 54 recorded)"]


def test_rerun_with_other_config_names_the_difference(tmp_path: Path) -> None:
    root = generate_world(tmp_path / "w", TINY)
    with pytest.raises(ParamsError, match=r"different config \(p_hal: 0\.9 there, 0\.5 asked\).*another output folder"):
        generate_world(root, TINY.replace(p_hal=0.5))


def test_world_written_with_other_categories_is_refused(tmp_path: Path) -> None:
    root = generate_world(tmp_path / "w", TINY)
    meta = read_json(root / "world.json")
    meta["categories"][4]["shape"] = "square"  # as drawn by a kit whose categories shared shapes
    atomic_write_json(root / "world.json", meta)
    with pytest.raises(DataError, match=r"world\.json.*categories.*other categories.*new folder"):
        generate_world(root, TINY)


def test_rerun_with_missing_files_is_an_error(tmp_path: Path) -> None:
    root = generate_world(tmp_path / "w", TINY)
    (root / "VG" / "objects.json").unlink()
    with pytest.raises(DataError, match=r"VG/objects\.json"):
        generate_world(root, TINY)


def test_non_empty_folder_without_world_is_refused(tmp_path: Path) -> None:
    (tmp_path / "VG").mkdir()
    (tmp_path / "VG" / "image_data.json").write_text("[]")
    with pytest.raises(ParamsError, match="not empty"):
        generate_world(tmp_path, TINY)
    assert (tmp_path / "VG" / "image_data.json").read_text() == "[]"


def test_interrupted_generation_is_redone(tmp_path: Path) -> None:
    expected = all_files(generate_world(tmp_path / "ref", TINY))
    root = tmp_path / "w"
    (root / "VG" / "VG_100K").mkdir(parents=True)
    (root / "VG" / "VG_100K" / "999.png").write_bytes(b"partial")
    (root / ".hadpo-world-incomplete").write_text("in progress\n")
    generate_world(root, TINY)
    assert all_files(root) == expected


def test_world_json_is_plain_json(small_world: Path) -> None:
    text = (small_world / "world.json").read_text(encoding="utf-8")
    assert json.loads(text)["format"] == "hadpo-shapes-world/1"
