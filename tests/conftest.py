"""Shared fixtures: an untrained tiny LLaVA built once per session, offline, and small shapes worlds (read-only)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DS_ACCELERATOR", "cpu")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hadpo.models.prompts import DESCRIPTION_INSTRUCTIONS, LLAVA_V1_SYSTEM, VICUNA_V1_SYSTEM

TINY_TEXTS = [
    VICUNA_V1_SYSTEM,
    LLAVA_V1_SYSTEM,
    *DESCRIPTION_INSTRUCTIONS,
    "USER: <image>\nIs there a red circle in the image? ASSISTANT: Yes, there is a red circle in the image.",
    "USER: <image>\nIs there a blue square in the image? ASSISTANT: No, there is no blue square in the image.",
    "There is a red circle on the left. There is a blue square in the middle. There is a green triangle on "
    "the right. There is a yellow cross. There is a purple square. There is an orange circle. There is a "
    "cyan cross. There is a white triangle.",
] * 20


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained tiny LLaVA folder (model + processor), loadable with ``from_pretrained``."""
    from hadpo.models.tiny import build_tiny_llava

    return build_tiny_llava(tmp_path_factory.mktemp("tiny_llava"), TINY_TEXTS)


@pytest.fixture(scope="session")
def tiny_loaded(tiny_model_dir: Path) -> Any:
    """The untrained tiny LLaVA through the kit's loader (float32, CPU; shared: tests must not modify it)."""
    from hadpo.models.loading import load_model
    from hadpo.specs import ModelSpec

    return load_model(ModelSpec(model=str(tiny_model_dir), device="cpu"))


@pytest.fixture(scope="session")
def shr_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shapes world with 5 SHR images (VG / SHR files, images, world.json); tests must not modify it."""
    from hadpo.world import WorldConfig, generate_world

    return generate_world(tmp_path_factory.mktemp("shr_world") / "data",
                          WorldConfig(seed=3, train_images=1, pope_images=0, shr_images=5))


#: Train 24 images; the POPE pool (4, with COCO ids) and the SHR images (3) are VG images too, so leaks exist.
MINING_WORLD_SIZES = {"seed": 5, "train_images": 24, "pope_images": 4, "shr_images": 3}


@pytest.fixture(scope="session")
def mining_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Root of a small shapes world for the mining tests; tests must not modify it."""
    from hadpo.world import WorldConfig, generate_world

    return generate_world(tmp_path_factory.mktemp("mining_world") / "data", WorldConfig(**MINING_WORLD_SIZES))


@pytest.fixture(scope="session")
def planted_descriptions() -> Callable[[Path, list[str]], dict[str, str]]:
    """:func:`plant_descriptions`, for tests to call."""
    return plant_descriptions


def plant_descriptions(root: Path, image_ids: list[str]) -> dict[str, str]:
    """Descriptions of the given images: the true caption, plus, on every other image, a sentence about an absent
    category; the third image also gets a present object in a wrong column."""
    from hadpo.world.shr_oracle import world_categories, world_objects
    from hadpo.world.text import describe, object_sentence

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


REPO_ROOT = Path(__file__).resolve().parents[1]
#: Llama-2's tokenizer, built offline from the npm package llama-tokenizer-js (tools/build_llama2_tokenizer.py).
LLAMA2_TOKENIZER = REPO_ROOT / "tests" / "fixtures" / "llama2-tokenizer"


@pytest.fixture(scope="session")
def llava15_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """LLaVA-1.5-7B's geometry cut to 2 text and 3 vision layers (about 730 M parameters, random fp16 weights), the
    real Llama-2 tokenizer, in the hub's layout: built once per session (about 20 s, 1.4 GB), read-only."""
    from hadpo.models.llava15 import write_llava15

    return write_llava15(tmp_path_factory.mktemp("llava15") / "llava-1.5-7b-hf", LLAMA2_TOKENIZER,
                         text_layers=2, vision_layers=3)
