"""Scene sampling and placement."""

from __future__ import annotations

from collections import Counter

import numpy as np

from hadpo.world.config import WorldConfig
from hadpo.world.scenes import sample_categories, sample_scene


def scene_form(categories: list[int]) -> str:
    """'A', 'AA', 'AB', 'AAB', 'ABB' or 'ABC' by pair structure, in draw order."""
    pairs = [c // 2 for c in categories]
    letters: dict[int, str] = {}
    return "".join(letters.setdefault(p, "ABC"[len(letters)]) for p in pairs)


def test_scene_structure_follows_the_recipe() -> None:
    rng = np.random.default_rng(0)
    forms = Counter(scene_form(sample_categories(rng, 8, 0.7, 0.4)) for _ in range(4000))
    assert set(forms) == {"A", "AA", "AB", "AAB", "ABB", "ABC"}
    # P(A) = 0.3 * 0.6 = 0.18, P(AA) = 0.7 * 0.6 = 0.42, P(AAB) = 0.7 * 0.4 = 0.28.
    assert abs(forms["A"] / 4000 - 0.18) < 0.03
    assert abs(forms["AA"] / 4000 - 0.42) < 0.03
    assert abs(forms["AAB"] / 4000 - 0.28) < 0.03


def test_anchor_is_uniform() -> None:
    rng = np.random.default_rng(1)
    anchors = Counter(sample_categories(rng, 8, 0.7, 0.4)[0] for _ in range(4000))
    assert set(anchors) == set(range(8))
    assert max(anchors.values()) / min(anchors.values()) < 1.3


def test_objects_sit_inside_one_cell_in_distinct_columns() -> None:
    cfg = WorldConfig()
    rng = np.random.default_rng(2)
    for _ in range(500):
        scene = sample_scene(rng, cfg)
        assert 1 <= len(scene) <= 3
        assert [o.column for o in scene] == sorted({o.column for o in scene})
        assert len({o.category for o in scene}) == len(scene)
        for obj in scene:
            assert obj.size in (12, 14)
            assert obj.column * 16 < obj.x and obj.x + obj.size < (obj.column + 1) * 16
            assert obj.row * 16 < obj.y and obj.y + obj.size < (obj.row + 1) * 16


def test_requested_object_count_is_met() -> None:
    rng = np.random.default_rng(3)
    assert all(len(sample_scene(rng, WorldConfig(), num_objects=3)) == 3 for _ in range(100))
