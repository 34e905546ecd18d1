"""Fixtures of the SHR tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from hadpo.eval.shr.inputs import load_shr_inputs
from hadpo.io import read_json
from hadpo.world.shr_oracle import world_objects


@pytest.fixture(scope="session")
def captions(shr_world: Path) -> dict[str, str]:
    """Per SHR image of ``shr_world``: its facts that place an object, then a sentence naming an absent category."""
    categories = [c["name"] for c in read_json(shr_world / "world.json")["categories"]]
    objects = world_objects(shr_world)
    out = {}
    for item in load_shr_inputs(shr_world):
        absent = next(c for c in categories if c not in {name for name, _ in objects[item.image_id]})
        placed = " ".join(f for f in item.facts if " is " in f and "no " not in f)
        out[item.image_id] = f"{placed} There is a {absent} on the left."
    return out
