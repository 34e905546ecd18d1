"""Corrupted images for mDPO's image-conditional preference: a random resized crop or Gaussian noise.

mDPO (Wang et al., EMNLP 2024) asks the policy to prefer the chosen answer under the real image over the same
answer under a corrupted image m', so that the answer's likelihood is made to depend on the image and not on the
text alone. Its corruption is a random resized crop of the processed pixel tensor back to the same size, keeping
1–20% of the area; :func:`random_resized_crop` is that crop, :func:`add_noise` a variance-preserving
alternative.

Every function here is pure: it takes a ``(3, H, W)`` pixel tensor (the image processor's normalised output)
and a seed, and returns a new tensor of the same shape and dtype. The seed of an item is derived from the run's
seed and the item's identity (:func:`item_seed`), not from a global random state, so the corrupted image of a
pair does not depend on batch composition, rank, or whether the run was resumed; and the reference and the
policy see the same corrupted image. The original mDPO code differs here: it draws a fresh crop in every forward
pass, so its policy and reference see different crops of the same image, and every epoch a new one.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F

Corruption = Literal["crop", "noise"]
#: torchvision's default aspect-ratio range of RandomResizedCrop (width / height), drawn log-uniformly.
CROP_RATIO: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0)
#: Draws before a crop falls back to the centre (torchvision's count); only matters for shares near 1.
CROP_TRIES = 10


def item_seed(seed: int, image: str | Path, prompt_ids: Sequence[int], answer_ids: Sequence[int]) -> int:
    """A 63-bit seed from the run's ``seed`` and an item's identity (image file name, prompt and answer token ids).

    sha256 rather than Python's ``hash``: it is the same in every process and every Python version. The image's
    file name, not its path, so a data folder moved between a run and its resume gives the same corruptions.
    """
    identity = json.dumps([int(seed), Path(image).name, list(prompt_ids), list(answer_ids)], separators=(",", ":"))
    return int.from_bytes(hashlib.sha256(identity.encode()).digest()[:8], "big") >> 1


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed``, independent of torch's global random state."""
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


def _uniform(generator: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=generator, device=generator.device))


def _randint(generator: torch.Generator, high: int) -> int:
    """An integer in [0, high]."""
    return int(torch.randint(0, high + 1, (), generator=generator, device=generator.device))


def crop_box(height: int, width: int, scale: Sequence[float], generator: torch.Generator,
             ratio: Sequence[float] = CROP_RATIO) -> tuple[int, int, int, int]:
    """``(top, left, h, w)`` of a random crop whose area is a share in ``scale`` = [lo, hi] of ``height × width``.

    Drawn as torchvision's ``RandomResizedCrop``: the share uniformly from [lo, hi], the aspect ratio w/h
    log-uniformly from ``ratio``, sides rounded to whole pixels, the position uniformly among those that fit;
    a draw that does not fit is redrawn, and after :data:`CROP_TRIES` misses the crop is the largest centred box
    with an aspect ratio in ``ratio``.
    """
    lo, hi = float(scale[0]), float(scale[1])
    if not 0 < lo <= hi <= 1:
        raise ValueError(f"scale must be [lo, hi] with 0 < lo <= hi <= 1, got {list(scale)}")
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(CROP_TRIES):
        area = height * width * _uniform(generator, lo, hi)
        aspect = math.exp(_uniform(generator, log_lo, log_hi))
        w = round(math.sqrt(area * aspect))
        h = round(math.sqrt(area / aspect))
        if 0 < w <= width and 0 < h <= height:
            return _randint(generator, height - h), _randint(generator, width - w), h, w
    # Fallback: clamp the image's own aspect ratio into the range and take the centred box of that shape.
    aspect = width / height
    h, w = height, width
    if aspect < ratio[0]:
        h = round(width / ratio[0])
    elif aspect > ratio[1]:
        w = round(height * ratio[1])
    return (height - h) // 2, (width - w) // 2, h, w


def random_resized_crop(pixels: torch.Tensor, scale: Sequence[float], generator: torch.Generator) -> torch.Tensor:
    """Crop ``pixels`` (3, H, W) to a :func:`crop_box` and resize it back to H × W (bilinear).

    The crop is never larger than the image, so the resize only enlarges and needs no antialiasing filter; with
    ``align_corners=False`` (torchvision's choice) the border pixels of the output are the crop's border pixels.
    """
    _check_image(pixels)
    height, width = pixels.shape[-2:]
    top, left, h, w = crop_box(height, width, scale, generator)
    crop = pixels[:, top : top + h, left : left + w].float().unsqueeze(0)
    resized = F.interpolate(crop, size=(height, width), mode="bilinear", align_corners=False)
    return resized.squeeze(0).to(pixels.dtype)


def add_noise(pixels: torch.Tensor, level: float, generator: torch.Generator) -> torch.Tensor:
    """``sqrt(1 − s)·x + sqrt(s)·ε`` with ε ~ N(0, 1) per element and s = ``level`` in (0, 1].

    On normalised pixels (roughly unit variance) this keeps the overall scale, as a diffusion forward step does;
    s = 1 is pure noise.
    """
    _check_image(pixels)
    if not 0 < level <= 1:
        raise ValueError(f"noise level must be in (0, 1], got {level!r}")
    noise = torch.randn(pixels.shape, generator=generator, device=generator.device, dtype=torch.float32)
    mixed = math.sqrt(1.0 - level) * pixels.float() + math.sqrt(level) * noise.to(pixels.device)
    return mixed.to(pixels.dtype)


def corrupt(pixels: torch.Tensor, kind: Corruption, seed: int, *, crop_scale: Sequence[float] = (0.01, 0.2),
            noise_level: float = 0.5) -> torch.Tensor:
    """The corrupted copy of ``pixels`` (3, H, W) for an item's ``seed`` (:func:`item_seed`); same shape, dtype.

    ``kind`` ``crop`` is :func:`random_resized_crop` with ``crop_scale``, ``noise`` is :func:`add_noise` at
    ``noise_level``. The generator lives on the CPU, so the same seed gives the same image on any device.
    """
    generator = make_generator(seed)
    if kind == "crop":
        return random_resized_crop(pixels, crop_scale, generator)
    if kind == "noise":
        return add_noise(pixels, noise_level, generator)
    raise ValueError(f"corruption must be 'crop' or 'noise', got {kind!r}")


def _check_image(pixels: torch.Tensor) -> None:
    if pixels.dim() != 3 or not pixels.is_floating_point():
        raise ValueError(f"expected a (C, H, W) floating-point pixel tensor, got {tuple(pixels.shape)} {pixels.dtype}")
