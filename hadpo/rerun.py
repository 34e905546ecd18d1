"""Forced reruns (the ``force`` key of every stage): the earlier results are set aside, never deleted.

A stage asked to redo finished work first moves what it wrote before into a new ``replaced-<UTC time>/`` folder
inside its run folder, then runs from scratch. The run folder therefore never mixes the results of two runs (a
forced run killed halfway leaves a partial new run, which an ordinary rerun resumes, and the complete earlier one
beside it), and nothing a user had is lost; deleting the ``replaced-*`` folders is the user's call.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from hadpo.runlock import LOCK_FILE

#: The name of a folder of set-aside results starts with this, followed by the UTC time of the forced run.
REPLACED_PREFIX = "replaced-"


def _new_folder(folder: Path) -> Path:
    """A fresh ``replaced-<UTC time>`` name in ``folder`` (suffixed when a second forced step runs that second)."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    dest = folder / f"{REPLACED_PREFIX}{stamp}"
    n = 1
    while dest.exists():
        n += 1
        dest = folder / f"{REPLACED_PREFIX}{stamp}-{n}"
    return dest


def set_aside(folder: str | Path, names: Iterable[str] | None = None, *, keep: Iterable[str | Path | None] = (),
              log: Callable[[str], Any] | None = print) -> Path | None:
    """Move entries of ``folder`` into a new ``folder/replaced-<UTC time>/``; returns it, or None if none existed.

    ``names`` are the entries to move (those that exist); by default every entry except the run lock (held by the
    caller; moving it would let a second run lock a new file), earlier ``replaced-*`` folders and the paths in
    ``keep`` (inputs a config may point inside its run folder). Each entry is renamed, so nothing is copied or
    deleted and a file's content is never seen half moved. ``log`` gets one line naming the new folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None
    kept = {Path(p).absolute() for p in keep if p}
    if names is None:
        entries = [p for p in sorted(folder.iterdir()) if p.name != LOCK_FILE
                   and not p.name.startswith(REPLACED_PREFIX) and p.absolute() not in kept]
    else:
        entries = [folder / name for name in names if os.path.lexists(folder / name)]
    if not entries:
        return None
    dest = _new_folder(folder)
    dest.mkdir()
    for path in entries:
        path.rename(dest / path.name)
    if log is not None:
        log(f"[hadpo] force: the earlier results in {folder} ({len(entries)} entries) moved to {dest.name}/")
    return dest
