"""Pad-to-square with the CLIP mean colour, centred, as LLaVA-1.5's ``image_aspect_ratio=pad``."""

from __future__ import annotations

import pytest
from PIL import Image

from hadpo.models.image import expand_to_square, mean_fill, prepare_image
from hadpo.models.tiny import CLIP_MEAN

RED = (255, 0, 0)
FILL = (122, 116, 104)


def test_clip_mean_fill_colour() -> None:
    assert mean_fill(CLIP_MEAN) == FILL


def test_wide_image_is_centred_vertically() -> None:
    out = prepare_image(Image.new("RGB", (40, 20), RED), "pad", CLIP_MEAN)
    assert out.size == (40, 40)
    assert out.getpixel((0, 9)) == FILL
    assert out.getpixel((0, 10)) == RED
    assert out.getpixel((39, 29)) == RED
    assert out.getpixel((39, 30)) == FILL


def test_tall_image_is_centred_horizontally_with_floor_offset() -> None:
    # side 21, width 10 -> offset (21 - 10) // 2 = 5: columns 0..4 fill, 5..14 image, 15..20 fill.
    out = expand_to_square(Image.new("RGB", (10, 21), RED), FILL)
    assert out.size == (21, 21)
    assert [out.getpixel((x, 0)) for x in (4, 5, 14, 15)] == [FILL, RED, RED, FILL]


def test_square_image_is_unchanged() -> None:
    img = Image.new("RGB", (16, 16), RED)
    assert expand_to_square(img, FILL) is img


def test_non_rgb_input_is_converted() -> None:
    out = prepare_image(Image.new("RGBA", (8, 4), (*RED, 128)), "pad", CLIP_MEAN)
    assert out.mode == "RGB"
    assert out.size == (8, 8)
    assert out.getpixel((0, 0)) == FILL


def test_crop_mode_keeps_the_aspect_ratio() -> None:
    out = prepare_image(Image.new("L", (30, 10), 200), "crop", CLIP_MEAN)
    assert (out.mode, out.size) == ("RGB", (30, 10))


def test_unknown_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="pad"):
        prepare_image(Image.new("RGB", (4, 4)), "stretch", CLIP_MEAN)  # type: ignore[arg-type]
