"""The shapes world's categories: one colour and one shape each, grouped in co-occurrence pairs.

Every category has its own colour, so a small vision tower can tell categories apart by colour alone (a world
where two categories share a colour makes the tiny model confuse shapes instead of hallucinating partners), and
its own shape, so that either word of its name identifies it.
Categories ``2k`` and ``2k + 1`` form pair ``k``: each is the other's *partner*, the object that usually
appears with it and that the captions sometimes mention when it is absent.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The shapes the renderer can draw: one per category, so a category's shape word names it as surely as its colour.
SHAPES: tuple[str, ...] = (
    "circle", "square", "triangle", "cross", "diamond", "ring", "star", "heart", "moon", "arrow", "hexagon", "bar",
)

# (colour, shape, rgb) per category, pair by pair. Every category has its own colour *and* its own shape: when
# categories shared a shape ("white triangle", "brown triangle"), the tiny model learnt to answer existence
# questions from the shape word and said "yes" to absent look-alikes, an error that is not the co-occurrence bias
# the world is for. The colours of the last two pairs are far enough from the first eight to stay separable.
_PALETTE: tuple[tuple[str, str, tuple[int, int, int]], ...] = (
    ("red", "circle", (220, 40, 40)),
    ("blue", "square", (50, 90, 235)),
    ("green", "triangle", (40, 180, 60)),
    ("yellow", "cross", (235, 220, 40)),
    ("purple", "diamond", (140, 60, 200)),
    ("orange", "ring", (245, 140, 30)),
    ("cyan", "star", (40, 210, 220)),
    ("white", "heart", (235, 235, 235)),
    ("pink", "moon", (250, 130, 190)),
    ("brown", "arrow", (140, 85, 40)),
    ("gray", "hexagon", (130, 130, 130)),
    ("lime", "bar", (170, 240, 70)),
)

#: The largest number of pairs the palette defines.
MAX_PAIRS = len(_PALETTE) // 2


@dataclass(frozen=True)
class Category:
    """One object category of the world (``id`` is 1-based, as COCO category ids)."""

    id: int
    name: str
    colour: str
    shape: str
    rgb: tuple[int, int, int]

    @property
    def index(self) -> int:
        """0-based position in the category list (the pair is ``index // 2``)."""
        return self.id - 1

    @property
    def partner_index(self) -> int:
        """0-based position of this category's co-occurrence partner."""
        return self.index ^ 1


def build_categories(num_pairs: int) -> tuple[Category, ...]:
    """The first ``2 * num_pairs`` categories of the palette, in pair order."""
    if not 1 <= num_pairs <= MAX_PAIRS:
        raise ValueError(f"num_pairs must be between 1 and {MAX_PAIRS}, got {num_pairs}")
    return tuple(
        Category(id=i + 1, name=f"{colour} {shape}", colour=colour, shape=shape, rgb=rgb)
        for i, (colour, shape, rgb) in enumerate(_PALETTE[: 2 * num_pairs])
    )


def category_pairs(categories: tuple[Category, ...]) -> tuple[tuple[str, str], ...]:
    """``((name_a, name_b), ...)``: the co-occurrence pairs of ``categories`` by name."""
    return tuple((categories[i].name, categories[i + 1].name) for i in range(0, len(categories) - 1, 2))
