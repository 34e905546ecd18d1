"""The shapes world: a seeded synthetic dataset written in the real datasets' file formats.

Small images of coloured shapes, with co-occurrence pairs, annotated as Visual Genome / COCO / SHR files, plus
an SFT corpus whose captions carry co-occurrence bias, so a tiny LLaVA trained on it hallucinates partner objects
the way real LVLMs hallucinate co-occurring ones. :mod:`hadpo.world.text` owns the sentence grammar.

The public names below are imported on first use, so ``hadpo --help`` (which imports :mod:`hadpo.world.cli`)
does not pay for numpy and PIL.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hadpo.world.config import WorldConfig
    from hadpo.world.generate import generate_world, verify_world
    from hadpo.world.load import World, WorldImage, WorldObject, load_world, tokenizer_corpus
    from hadpo.world.palette import Category

_EXPORTS = {
    "Category": "hadpo.world.palette",
    "World": "hadpo.world.load",
    "WorldConfig": "hadpo.world.config",
    "WorldImage": "hadpo.world.load",
    "WorldObject": "hadpo.world.load",
    "generate_world": "hadpo.world.generate",
    "load_world": "hadpo.world.load",
    "tokenizer_corpus": "hadpo.world.load",
    "verify_world": "hadpo.world.generate",
}

__all__ = [
    "Category",
    "World",
    "WorldConfig",
    "WorldImage",
    "WorldObject",
    "generate_world",
    "load_world",
    "tokenizer_corpus",
    "verify_world",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hadpo.world' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
