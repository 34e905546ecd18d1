"""Scene sampling: which categories appear in an image, and where.

A scene starts from a uniformly drawn *anchor*; its partner joins with ``p_partner``. While a column is free,
an object from a pair not yet used joins with ``p_extra``, followed by its own partner with ``p_partner`` if
a column is still free. Three-object scenes are therefore ``{A, A', B}``, ``{A, B, B'}`` or ``{A, B, C}``.

Each object sits in its own column (left / middle / right) and a random row of the 3 × 3 grid, strictly inside
its cell, so with 16-px patches every object falls in exactly one patch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hadpo.world.config import GRID, WorldConfig


@dataclass(frozen=True)
class PlacedObject:
    """One object of a scene: category index (0-based), grid cell, and its square bounding box in pixels."""

    category: int
    column: int
    row: int
    x: int
    y: int
    size: int

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        """``(x, y, w, h)``, the VG / COCO box convention."""
        return (self.x, self.y, self.size, self.size)


def sample_categories(rng: np.random.Generator, num_categories: int, p_partner: float, p_extra: float) -> list[int]:
    """Category indices of one scene, in the order they were drawn (anchor first)."""
    anchor = int(rng.integers(num_categories))
    chosen = [anchor]
    used_pairs = {anchor // 2}
    if rng.random() < p_partner:
        chosen.append(anchor ^ 1)
    while len(chosen) < GRID:
        free = [c for c in range(num_categories) if c // 2 not in used_pairs]
        if not free or rng.random() >= p_extra:
            break
        extra = free[int(rng.integers(len(free)))]
        chosen.append(extra)
        used_pairs.add(extra // 2)
        if len(chosen) < GRID and rng.random() < p_partner:
            chosen.append(extra ^ 1)
    return chosen


def place(rng: np.random.Generator, categories: list[int], cfg: WorldConfig) -> tuple[PlacedObject, ...]:
    """Put each category in its own random column and a random row; returns objects ordered left to right."""
    columns = rng.permutation(GRID)[: len(categories)]
    objects = []
    for category, column in zip(categories, columns, strict=True):
        row = int(rng.integers(GRID))
        size = 2 * int(rng.integers(cfg.radius_min, cfg.radius_max + 1))
        # Offsets keep a free pixel between the object and its cell's border (small jitter inside the cell).
        dx, dy = (int(v) for v in rng.integers(1, cfg.cell - size, size=2))
        objects.append(PlacedObject(category, int(column), row, int(column) * cfg.cell + dx, row * cfg.cell + dy, size))
    return tuple(sorted(objects, key=lambda o: o.column))


def sample_scene(
    rng: np.random.Generator, cfg: WorldConfig, *, num_objects: int | None = None, unpaired: bool = False
) -> tuple[PlacedObject, ...]:
    """One scene; with ``num_objects`` set, redraw until the scene has exactly that many objects, and with
    ``unpaired``, until no two of them are partners (rejection keeps the training distribution's choices)."""
    num_categories = 2 * cfg.num_pairs
    while True:
        categories = sample_categories(rng, num_categories, cfg.p_partner, cfg.p_extra)
        if num_objects is not None and len(categories) != num_objects:
            continue
        if unpaired and len({c // 2 for c in categories}) != len(categories):
            continue
        return place(rng, categories, cfg)
