"""Fixtures of the mining tests: a small shapes world (read-only), the tiny LLaVA, and hand-made descriptions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hadpo.eval.shr.oracle import world_categories, world_objects
from hadpo.world.text import describe, object_sentence

#: Train 24 images; the POPE pool (4, with COCO ids) and the SHR images (3) are VG images too, so leaks exist.
WORLD_SIZES = {"seed": 5, "train_images": 24, "pope_images": 4, "shr_images": 3}


@pytest.fixture(scope="session")
def mining_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Root of a small shapes world; tests must not modify it."""
    from hadpo.world import WorldConfig, generate_world

    return generate_world(tmp_path_factory.mktemp("mining_world") / "data", WorldConfig(**WORLD_SIZES))


@pytest.fixture(scope="module")
def tiny_loaded(tiny_model_dir: Path):
    """The untrained tiny LLaVA through the kit's loader (float32, CPU)."""
    from hadpo.models.loading import load_model

    return load_model(str(tiny_model_dir))


@pytest.fixture(scope="session")
def planted_descriptions() -> Callable[[Path, list[str]], dict[str, str]]:
    """:func:`plant_descriptions`, for tests to call."""
    return plant_descriptions


def plant_descriptions(root: Path, image_ids: list[str]) -> dict[str, str]:
    """Descriptions of the given images: the true caption, plus, on every other image, a sentence about an absent
    category; the third image also gets a present object in a wrong column."""
    objects = world_objects(root)
    categories = world_categories(root, objects)
    out = {}
    for n, image_id in enumerate(image_ids):
        objs = objects[image_id]
        text = describe(objs)
        if n % 2 == 0:
            absent = next(c for c in categories if c not in {name for name, _ in objs})
            text += " " + object_sentence(absent, 2)
        if n == 2:
            name, column = objs[0]
            text += " " + object_sentence(name, (column + 1) % 3)
        out[image_id] = text
    return out
