"""Image preparation shared by training and evaluation.

LLaVA-1.5 pads every image to a square canvas filled with the CLIP mean colour before the processor's
resize + centre-crop (``image_aspect_ratio=pad``); the HF processor alone would crop the sides away.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from PIL import Image

ImageMode = Literal["pad", "crop"]


def mean_fill(image_mean: Sequence[float]) -> tuple[int, int, int]:
    """The pad colour: ``int(255 * mean)`` per channel, as the original (CLIP gives (122, 116, 104))."""
    r, g, b = (int(255 * m) for m in image_mean)
    return (r, g, b)


def expand_to_square(image: Image.Image, fill: tuple[int, int, int]) -> Image.Image:
    """Pad ``image`` to a centred square of side max(width, height) filled with ``fill``."""
    width, height = image.size
    if width == height:
        return image
    side = max(width, height)
    canvas = Image.new(image.mode, (side, side), fill)
    canvas.paste(image, ((side - width) // 2, (side - height) // 2))
    return canvas


def prepare_image(image: Image.Image, mode: ImageMode, image_mean: Sequence[float]) -> Image.Image:
    """RGB-convert and, for ``mode="pad"``, pad to square with the processor's mean colour."""
    image = image.convert("RGB")
    if mode == "pad":
        return expand_to_square(image, mean_fill(image_mean))
    if mode == "crop":
        return image
    raise ValueError(f"image mode must be 'pad' or 'crop', got {mode!r}")
