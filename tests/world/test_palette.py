"""Categories and pairs."""

from __future__ import annotations

import pytest

from hadpo.world.palette import MAX_PAIRS, SHAPES, build_categories, category_pairs


def test_the_first_four_pairs() -> None:
    categories = build_categories(4)
    assert category_pairs(categories) == (
        ("red circle", "blue square"),
        ("green triangle", "yellow cross"),
        ("purple diamond", "orange ring"),
        ("cyan star", "white heart"),
    )
    assert [c.id for c in categories] == list(range(1, 9))
    assert all(categories[c.partner_index].partner_index == c.index for c in categories)


@pytest.mark.parametrize("num_pairs", range(1, MAX_PAIRS + 1))
def test_every_category_has_its_own_colour_and_shape(num_pairs: int) -> None:
    categories = build_categories(num_pairs)
    assert len(categories) == 2 * num_pairs
    assert len({c.colour for c in categories}) == len(categories)
    assert len({c.rgb for c in categories}) == len(categories)
    assert len({c.shape for c in categories}) == len(categories)
    assert len({c.name for c in categories}) == len(categories)
    assert all(c.shape in SHAPES and c.name == f"{c.colour} {c.shape}" for c in categories)


def test_colours_are_far_apart() -> None:
    rgbs = [c.rgb for c in build_categories(MAX_PAIRS)]
    closest = min(sum(abs(a - b) for a, b in zip(x, y, strict=True)) for i, x in enumerate(rgbs) for y in rgbs[i + 1 :])
    # Object pixels are jittered by at most 12 per channel; colours must stay well apart after that.
    assert closest > 6 * 12


@pytest.mark.parametrize("num_pairs", [0, MAX_PAIRS + 1])
def test_pairs_out_of_range(num_pairs: int) -> None:
    with pytest.raises(ValueError, match="num_pairs"):
        build_categories(num_pairs)
