"""Registries of the kit's pluggable parts, filled through Python entry points.

A judge backend (group ``hadpo.judges``) and a training objective (group ``hadpo.objectives``) are looked up by
name; the kit's own are declared in ``pyproject.toml`` the same way a third-party package declares its own, e.g.::

    [project.entry-points."hadpo.judges"]
    my_judge = "my_package.judge:backend"

So the code that uses a backend never imports the package that provides it: the shapes world plugs in its
offline oracle judge and its SFT objective here, and the real path never imports the world.
"""

from __future__ import annotations

import functools
import importlib.metadata
from typing import Any

from hadpo.errors import ParamsError

JUDGES = "hadpo.judges"
OBJECTIVES = "hadpo.objectives"


@functools.cache
def _entry_points(group: str) -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=group)}


def names(group: str) -> list[str]:
    """The names registered in ``group``, sorted."""
    return sorted(_entry_points(group))


def load(group: str, name: str) -> Any:
    """The object registered as ``name`` in ``group``; an unknown name is a :class:`ParamsError` listing the known."""
    entry = _entry_points(group).get(name)
    if entry is None:
        known = ", ".join(names(group)) or "none (is the kit installed? pip install -e .)"
        raise ParamsError(f"{name!r} is not a registered {group.rsplit('.', 1)[-1][:-1]}; known: {known}")
    return entry.load()


def check_registered(group: str, name: str, key: str) -> None:
    """Raise :class:`ParamsError` naming ``key`` unless ``name`` is registered in ``group`` (no import)."""
    known = names(group)
    if known and name not in known:
        raise ParamsError(f"parameter '{key}' must be one of {known}, got {name!r}")
