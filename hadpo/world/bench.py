"""The shapes world's benchmark images: what the CHAIR, AMBER and MMHal-Bench writers build their files from.

The world draws a ``bench`` split of its own (``bench_images`` scenes, the training scene distribution, its own
random stream, so the other splits stay as they were). These images are in no VG or POPE file, so neither mining
nor POPE ever sees them; each benchmark writer copies them into its own folder in its released layout
(:func:`write_bench_files`), as the real benchmarks bring their own images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hadpo.world.palette import Category


@dataclass(frozen=True)
class BenchObject:
    """One object of a benchmark image: its category name, column (0 left, 1 middle, 2 right) and pixel box."""

    name: str
    column: int
    #: ``(x, y, w, h)`` in pixels, the COCO / VG convention.
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class BenchImage:
    """One benchmark image: ids, the encoded PNG, its size and objects (left to right), and its true caption."""

    image_id: int
    coco_id: int
    png: bytes
    width: int
    height: int
    objects: tuple[BenchObject, ...]
    #: The world's caption of exactly what is there (no planted partner), as a COCO caption would be.
    caption: str


@dataclass(frozen=True)
class BenchWorld:
    """Everything a benchmark writer needs: the data root, the images, the categories and their pairs."""

    root: Path
    images: tuple[BenchImage, ...]
    categories: tuple[Category, ...]
    #: Co-occurrence pairs by name: each object's partner is what the base model tends to hallucinate.
    pairs: tuple[tuple[str, str], ...]
    seed: int

    def partner(self, name: str) -> str:
        """The co-occurrence partner of category ``name``."""
        for a, b in self.pairs:
            if name == a:
                return b
            if name == b:
                return a
        raise KeyError(f"no category {name!r} in the world's pairs")
