"""The corrupted images of mDPO's conditional term: seeded per item, same shape, the asked crop share, noise stats."""

from __future__ import annotations

import math

import pytest
import torch

from hadpo.train.corrupt import CROP_RATIO, add_noise, corrupt, crop_box, item_seed, make_generator

H, W = 120, 160


def coordinates(height: int = H, width: int = W) -> torch.Tensor:
    """(3, H, W) whose channels hold each pixel's row, column and row-major index: a crop can be read back."""
    rows = torch.arange(height, dtype=torch.float32).view(-1, 1).expand(height, width)
    cols = torch.arange(width, dtype=torch.float32).view(1, -1).expand(height, width)
    return torch.stack([rows, cols, rows * width + cols])


def read_box(out: torch.Tensor) -> tuple[int, int, int, int]:
    """(top, left, h, w) of the crop behind a resized coordinate tensor: with align_corners=False the resize
    clamps at the borders, so the output's extreme rows and columns are exactly the crop's first and last."""
    top, bottom = round(out[0].min().item()), round(out[0].max().item())
    left, right = round(out[1].min().item()), round(out[1].max().item())
    return top, left, bottom - top + 1, right - left + 1


def test_item_seed_is_stable_and_tells_items_apart() -> None:
    """The same (seed, image, prompt, answer) gives the same 63-bit seed; changing any part changes it."""
    base = item_seed(42, "/data/vg/1.jpg", (1, 2, 3), (7, 8, 2))
    assert base == item_seed(42, "/data/vg/1.jpg", [1, 2, 3], [7, 8, 2])
    assert 0 <= base < 2**63
    others = {item_seed(43, "/data/vg/1.jpg", (1, 2, 3), (7, 8, 2)),
              item_seed(42, "/data/vg/2.jpg", (1, 2, 3), (7, 8, 2)),
              item_seed(42, "/data/vg/1.jpg", (1, 2, 4), (7, 8, 2)),
              item_seed(42, "/data/vg/1.jpg", (1, 2, 3), (7, 9, 2))}
    assert base not in others and len(others) == 4
    # the image's file name, not where its folder lies: a data folder moved before a resume changes nothing
    assert base == item_seed(42, "/elsewhere/1.jpg", (1, 2, 3), (7, 8, 2))


@pytest.mark.parametrize("kind", ["crop", "noise"])
def test_deterministic_per_item_different_across_items_same_shape_and_dtype(kind: str) -> None:
    """One item's corruption is reproducible (and independent of torch's global state); another item's differs."""
    torch.manual_seed(0)
    pixels = torch.randn(3, 48, 64)
    a = corrupt(pixels, kind, 123)
    torch.manual_seed(999)  # the global state must not matter
    torch.testing.assert_close(corrupt(pixels, kind, 123), a, rtol=0, atol=0)
    assert not torch.equal(corrupt(pixels, kind, 124), a)
    assert a.shape == pixels.shape and a.dtype == pixels.dtype
    half = corrupt(pixels.to(torch.bfloat16), kind, 123)
    assert half.shape == pixels.shape and half.dtype == torch.bfloat16
    assert not torch.equal(a, pixels)


@pytest.mark.parametrize("share", [0.01, 0.05, 0.2, 0.6])
def test_crop_keeps_the_asked_share(share: float) -> None:
    """With lo == hi = s the crop keeps s of the area, up to rounding each side to whole pixels: |h·w − s·H·W| is at
    most (h + w)/2 + 1/4. Its aspect ratio lies in [3/4, 4/3] up to the same rounding, and the output is the crop
    resized: its corners hold the crop's corner pixels."""
    image = coordinates()
    for seed in range(40):
        out = corrupt(image, "crop", seed, crop_scale=[share, share])
        top, left, h, w = read_box(out)
        assert abs(h * w - share * H * W) <= (h + w) / 2 + 0.25, (seed, h, w)
        assert CROP_RATIO[0] - 1 / h <= w / h <= CROP_RATIO[1] + 1 / h
        assert top >= 0 and left >= 0 and top + h <= H and left + w <= W
        assert out[2, 0, 0].item() == pytest.approx(top * W + left)
        assert out[2, -1, -1].item() == pytest.approx((top + h - 1) * W + left + w - 1)


def test_crop_shares_spread_over_the_range_and_positions_over_the_image() -> None:
    """mDPO's scale (0.01, 0.2): over 200 items every share lies in the range (up to rounding), their mean is near
    the range's middle 0.105, and crops start both near and far from the top-left corner."""
    gen = make_generator(7)
    boxes = [crop_box(H, W, (0.01, 0.2), gen) for _ in range(200)]
    shares = [h * w / (H * W) for _, _, h, w in boxes]
    assert min(shares) >= 0.01 - 0.003 and max(shares) <= 0.2 + 0.01
    assert sum(shares) / len(shares) == pytest.approx(0.105, abs=0.015)
    assert min(t for t, *_ in boxes) < 10 and max(t for t, *_ in boxes) > H / 2


def test_whole_image_share_falls_back_to_the_centre() -> None:
    """Share 1 of a 1:3 image cannot fit any aspect in [3/4, 4/3]: after the redraws the crop is the centred box
    of aspect 4/3 (h = 30, w = 40 of a 30 × 90 image, left (90 − 40) // 2 = 25)."""
    assert crop_box(30, 90, (1.0, 1.0), make_generator(0)) == (0, 25, 30, 40)
    assert crop_box(30, 30, (1.0, 1.0), make_generator(0)) == (0, 0, 30, 30)
    with pytest.raises(ValueError, match="0 < lo <= hi <= 1"):
        crop_box(30, 30, (0.3, 0.2), make_generator(0))


@pytest.mark.parametrize("level", [0.1, 0.5, 1.0])
def test_noise_statistics(level: float) -> None:
    """x' = sqrt(1 − s)·x + sqrt(s)·ε: on a constant image c = 1.5 (120 000 values) the mean is sqrt(1 − s)·c and
    the variance s (standard errors about 0.003 and 0.004·s); the residual (x' − sqrt(1 − s)·x)/sqrt(s) of any
    image is standard normal."""
    c = 1.5
    out = add_noise(torch.full((3, 200, 200), c), level, make_generator(1))
    assert out.mean().item() == pytest.approx(math.sqrt(1 - level) * c, abs=0.01)
    assert out.var().item() == pytest.approx(level, rel=0.03)
    torch.manual_seed(0)
    image = torch.randn(3, 200, 200) * 2 + 0.3
    residual = (corrupt(image, "noise", 5, noise_level=level) - math.sqrt(1 - level) * image) / math.sqrt(level)
    assert residual.mean().item() == pytest.approx(0.0, abs=0.01)
    assert residual.std().item() == pytest.approx(1.0, abs=0.01)


def test_bad_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="noise level"):
        add_noise(torch.zeros(3, 4, 4), 0.0, make_generator(0))
    with pytest.raises(ValueError, match="corruption must be"):
        corrupt(torch.zeros(3, 4, 4), "blur", 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\(C, H, W\) floating-point"):
        corrupt(torch.zeros(1, 3, 4, 4), "crop", 0)
