"""Reading a world back, and the tokenizer corpus."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hadpo.data.layout import DataLayout
from hadpo.errors import DataError
from hadpo.io import read_json
from hadpo.models.prompts import DESCRIPTION_INSTRUCTIONS, LLAVA_V1_SYSTEM, VICUNA_V1_SYSTEM
from hadpo.world import WorldConfig, load_world, tokenizer_corpus
from hadpo.world.text import parse_sentence


def test_load_world_matches_the_files(small_world: Path, small_world_config: WorldConfig) -> None:
    world = load_world(small_world)
    assert world.seed == 7 and world.config == small_world_config
    assert len(world.categories) == 8 and world.partner("yellow cross") == "green triangle"
    assert world.partner("green triangle") == "yellow cross"
    assert len(world.images) == 1060
    regions = {r["id"]: r["regions"] for r in read_json(DataLayout(small_world).region_descriptions)}
    for image in world.images.values():
        assert image.path.is_file()
        assert [o.column for o in image.objects] == sorted({o.column for o in image.objects})
        # Each object's column agrees with its region phrase.
        for obj, region in zip(image.objects, regions[image.image_id], strict=False):
            assert parse_sentence(region["phrase"], world.category_names) == (obj.name, obj.column)
    pope = world.split("pope")
    assert all(len(img.objects) == 3 and img.coco_id is not None for img in pope)
    assert world.by_coco_id()[pope[0].coco_id] is pope[0]
    assert {img.split for img in world.split("shr")} == {"shr"}


def test_unknown_names_are_key_errors(small_world: Path) -> None:
    world = load_world(small_world)
    with pytest.raises(KeyError, match="pink moon"):
        world.partner("pink moon")
    with pytest.raises(KeyError, match="val"):
        world.split("val")
    assert world.category("cyan star").id == 7


def test_tokenizer_corpus_covers_everything_the_model_reads(small_world: Path) -> None:
    texts = tokenizer_corpus(small_world)
    assert len(texts) == len(set(texts))
    joined = "\n".join(texts)
    for needed in (VICUNA_V1_SYSTEM, LLAVA_V1_SYSTEM, *DESCRIPTION_INSTRUCTIONS, "USER:", "ASSISTANT:", "</s>"):
        assert needed in joined
    words = set(joined.replace("\n", " ").split())
    for record in read_json(DataLayout(small_world).sft_conversations):
        for turn in record["conversations"]:
            assert set(turn["value"].replace("<image>\n", "").split()) <= words
    assert "Is there a white heart in the image?" in texts
    assert "There is a white heart on the right." in texts


def test_corrupt_world_json_names_file_and_field(small_world: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(small_world, root)
    meta = json.loads((root / "world.json").read_text())
    del meta["splits"]
    (root / "world.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match=r"world\.json.*field 'splits'"):
        load_world(root)
    objects = json.loads((root / "VG" / "objects.json").read_text())
    objects[3]["objects"][0]["x"] = "left"
    (root / "VG" / "objects.json").write_text(json.dumps(objects))
    (root / "world.json").write_text(json.dumps({**meta, "splits": {"train": [], "pope": [], "shr": []}}))
    with pytest.raises(DataError, match=r"objects\.json.*record '4\.objects\[0\]'.*field 'x'"):
        load_world(root)


def test_missing_world_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="hadpo world DIR"):
        load_world(tmp_path)
