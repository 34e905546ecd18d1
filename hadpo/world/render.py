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
    # Offsets from the centre in units of the half-side: the box spans [-1, 1] on both axes, y pointing down.
    u, v = (xs - centre) / centre, (ys - centre) / centre
    radius, angle = np.hypot(u, v), np.arctan2(v, u)
    if shape == "circle":
        mask = radius <= 1
    elif shape == "square":
        mask = np.ones((size, size), dtype=bool)
    elif shape == "triangle":
        # Apex up: the half-width grows linearly from the top row to the full base.
        mask = np.abs(u) <= (v + 1) / 2
    elif shape == "cross":
        mask = (np.abs(u) <= 1 / 3) | (np.abs(v) <= 1 / 3)
    elif shape == "diamond":
        mask = np.abs(u) + np.abs(v) <= 1
    elif shape == "ring":
        mask = (radius <= 1) & (radius >= 0.5)
    elif shape == "star":
        # Five points, one straight up: the allowed radius swings between 0.45 and 1 with the angle.
        mask = radius <= 0.45 + 0.55 * np.cos(2.5 * (angle + np.pi / 2)) ** 2
    elif shape == "heart":
        # The classic implicit heart curve (x² + y² − 1)³ − x²y³ ≤ 0, scaled into the box, point down.
        x, y = u * 1.4, 0.3 - v * 1.4
        mask = (x**2 + y**2 - 1) ** 3 - x**2 * y**3 <= 0
    elif shape == "moon":
        # A disc with a smaller disc bitten out of its right side: a crescent opening right.
        mask = (radius <= 1) & (np.hypot(u - 0.45, v) > 0.75)
    elif shape == "arrow":
        # Pointing right: a shaft on the left half, a triangular head on the right half.
        mask = ((u <= 0) & (np.abs(v) <= 0.3)) | ((u > 0) & (np.abs(v) <= 1 - u))
    elif shape == "hexagon":
        # Flat top and bottom: inside the three pairs of parallel sides.
        mask = (np.abs(v) <= np.sqrt(3) / 2) & (np.sqrt(3) * np.abs(u) + np.abs(v) <= np.sqrt(3))
    elif shape == "bar":
        mask = np.abs(v) <= 0.4
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
