"""Fixtures of the SHR tests: the tiny LLaVA loaded once, and a small shapes world in the real file formats."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def tiny_loaded(tiny_model_dir: Path):
    """The untrained tiny LLaVA through the kit's loader (float32, CPU)."""
    from hadpo.models.loading import load_model

    return load_model(str(tiny_model_dir))


@pytest.fixture(scope="session")
def shr_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shapes world with 5 SHR images (VG / SHR files, images, world.json); tests must not modify it."""
    from hadpo.world import WorldConfig, generate_world

    return generate_world(tmp_path_factory.mktemp("shr_world") / "data",
                          WorldConfig(seed=3, train_images=1, pope_images=0, shr_images=5))
