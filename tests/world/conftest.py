"""A small shapes world generated once per test session, shared by the world tests (read-only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hadpo.world import WorldConfig, generate_world

#: Big enough for the planted rates to be measured within a few points, small enough to build in under a second.
SMALL_WORLD = WorldConfig(seed=7, num_pairs=4, train_images=1000, pope_images=40, shr_images=20, bench_images=10)


@pytest.fixture(scope="session")
def small_world_config() -> WorldConfig:
    """The config of :func:`small_world`."""
    return SMALL_WORLD


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Root of :data:`SMALL_WORLD`; tests must not modify it."""
    return generate_world(tmp_path_factory.mktemp("world") / "data", SMALL_WORLD)
