"""Rendering scenes to PNG: dark noisy background, flat-coloured shapes with a little pixel noise.

Shape masks depend only on (shape, size), so they are computed once and cached; an image is then a handful of
numpy assignments plus the PNG encoder, fast enough for thousands of images per second on one core. PIL writes
no timestamps into PNGs, so the same pixels always encode to the same bytes (with the same zlib).
"""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
from PIL import Image

from hadpo.world.palette import Category
from hadpo.world.scenes import PlacedObject


@lru_cache(maxsize=64)
def shape_mask(shape: str, size: int) -> np.ndarray:
    """Boolean ``size × size`` mask of a shape filling its box (read-only; shared between calls)."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    centre = size / 2
    if shape == "circle":
        mask = (xs - centre) ** 2 + (ys - centre) ** 2 <= centre**2
    elif shape == "square":
        mask = np.ones((size, size), dtype=bool)
    elif shape == "triangle":
        # Apex up: the half-width grows linearly from the top row to the full base.
        mask = np.abs(xs - centre) <= ys / size * centre
    elif shape == "cross":
        arm = size / 6
        mask = (np.abs(xs - centre) <= arm) | (np.abs(ys - centre) <= arm)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    mask.setflags(write=False)
    return mask


def render_pixels(
    objects: tuple[PlacedObject, ...],
    categories: tuple[Category, ...],
    rng: np.random.Generator,
    *,
    image_size: int,
    background_level: int,
    colour_jitter: int,
) -> np.ndarray:
    """``(image_size, image_size, 3)`` uint8 pixels of a scene."""
    pixels = rng.integers(0, background_level + 1, size=(image_size, image_size, 3), dtype=np.int16)
    for obj in objects:
        category = categories[obj.category]
        mask = shape_mask(category.shape, obj.size)
        noise = rng.integers(-colour_jitter, colour_jitter + 1, size=(obj.size, obj.size, 3), dtype=np.int16)
        patch = pixels[obj.y : obj.y + obj.size, obj.x : obj.x + obj.size]
        patch[mask] = (np.asarray(category.rgb, dtype=np.int16) + noise)[mask]
    return np.clip(pixels, 0, 255).astype(np.uint8)


def encode_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of RGB ``pixels`` (deterministic)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def mask_area(shape: str, size: int) -> int:
    """Pixels covered by a shape of this box size (the COCO ``area`` of its annotation)."""
    return int(shape_mask(shape, size).sum())
