"""Rendering: shapes, colours, determinism."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from hadpo.world.palette import SHAPES, build_categories
from hadpo.world.render import encode_png, mask_area, render_pixels, shape_mask
from hadpo.world.scenes import PlacedObject

CATEGORIES = build_categories(4)


def render(objects: tuple[PlacedObject, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return render_pixels(objects, CATEGORIES, rng, image_size=48, background_level=40, colour_jitter=12)


def test_shapes_have_distinct_masks() -> None:
    masks = {shape: shape_mask(shape, 14) for shape in SHAPES}
    assert masks["square"].all()
    assert not masks["circle"][0, 0] and masks["circle"][7, 7]
    assert masks["triangle"][13].sum() > masks["triangle"][1].sum()  # apex up
    assert masks["cross"][7].all() and masks["cross"][:, 7].all() and not masks["cross"][0, 0]
    assert masks["ring"][7, 0] and not masks["ring"][7, 7]  # hollow
    assert not masks["arrow"][7, 13] and masks["arrow"][7, 12]  # head on the right
    assert masks["heart"][2].sum() < masks["heart"][4].sum() > masks["heart"][11].sum()  # lobes up, point down
    assert not masks["moon"][7, 10] and masks["moon"][7, 0]  # opens to the right
    # Every shape covers a fair part of its box, and no two are the same picture.
    assert all(0.35 < m.mean() <= 1 for m in masks.values())
    assert len({m.tobytes() for m in masks.values()}) == len(SHAPES)
    assert all(mask_area(shape, 14) == int(m.sum()) for shape, m in masks.items())


def test_objects_take_their_colour_on_a_dark_background() -> None:
    blue_square = PlacedObject(category=1, column=2, row=0, x=33, y=1, size=14)
    pixels = render((blue_square,))
    inside = pixels[1:15, 33:47].reshape(-1, 3).astype(int)
    assert np.abs(inside - np.array(CATEGORIES[1].rgb)).max() <= 12
    outside = pixels[16:, :32]
    assert outside.max() <= 40


def test_png_round_trips_and_is_deterministic() -> None:
    red_circle = PlacedObject(category=0, column=0, row=1, x=2, y=18, size=12)
    first, again, other = (
        encode_png(render((red_circle,))),
        encode_png(render((red_circle,))),
        encode_png(render((red_circle,), seed=1)),
    )
    assert first == again and first != other
    decoded = np.asarray(Image.open(io.BytesIO(first)))
    assert decoded.shape == (48, 48, 3)
    assert np.array_equal(decoded, render((red_circle,)))
