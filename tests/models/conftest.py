"""Fixtures for the model tests: the tiny LLaVA loaded once, images and prompts to feed it."""

from __future__ import annotations

from typing import Any

import pytest
from PIL import Image

from hadpo.models.image import prepare_image
from hadpo.models.prompts import get_template

QUESTIONS = [
    "Is there a red circle in the image?",
    "Describe this image in detail.",
    "Is there a blue square in the image? There is a green triangle on the right.",
]
COLOURS = [(200, 30, 30), (20, 40, 210), (30, 180, 60)]
SIZES = [(64, 40), (48, 48), (30, 60)]


def make_images() -> list[Image.Image]:
    """Three images of different sizes (two need padding) with a coloured block each."""
    images = []
    for colour, size in zip(COLOURS, SIZES, strict=True):
        img = Image.new("RGB", size, (255, 255, 255))
        img.paste(colour, (4, 4, size[0] // 2, size[1] // 2))
        images.append(img)
    return images


def encode(processor: Any, questions: list[str], images: list[Image.Image]) -> Any:
    """Left-padded llava_v1 prompts with pad-to-square images, as the evaluators build them."""
    mean = processor.image_processor.image_mean
    prompts = [get_template("llava_v1").prompt(q) for q in questions]
    prepared = [prepare_image(img, "pad", mean) for img in images]
    return processor(images=prepared, text=prompts, padding=True, return_tensors="pt")


@pytest.fixture(scope="session")
def questions() -> list[str]:
    """Three questions of different lengths (a batch of them is left-padded)."""
    return list(QUESTIONS)


@pytest.fixture(scope="session")
def images() -> list[Image.Image]:
    """Three images matching :func:`questions`."""
    return make_images()


@pytest.fixture(scope="session")
def encoder() -> Any:
    """The :func:`encode` function, for tests that build their own batches."""
    return encode

