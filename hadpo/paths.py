"""Where relative paths point: the project root, the folder that holds ``params/``.

A JupyterLab kernel starts in ``notebooks/``, papermill may run a notebook from a report folder, and a training
child runs wherever its launcher puts it. So no relative path in a params file, a parameters cell or a ``-p``
override is read against the process's working directory: each resolves against the project root, found as

1. ``$HADPO_ROOT`` when set;
2. for values read from a params file under ``<root>/params/``: that ``<root>``;
3. otherwise the nearest folder, from the working directory upwards, that holds a ``params/`` folder;
4. otherwise the working directory itself.

Model references are paths or hub ids: ``org/name`` stays a hub id unless a folder of that name exists under the
root; anything else that is not absolute is a folder under the root.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT_ENV = "HADPO_ROOT"
PARAMS_DIR = "params"


def project_root(start: str | Path | None = None) -> Path:
    """The project root seen from ``start`` (default: the working directory); see the module docstring."""
    env = os.environ.get(ROOT_ENV, "").strip()
    if env:
        return Path(env).expanduser().resolve()
    here = Path(os.path.abspath(start if start is not None else Path.cwd()))
    for folder in (here, *here.parents):
        if (folder / PARAMS_DIR).is_dir():
            return folder
    return here


def params_file_root(path: str | Path) -> Path:
    """The project root a params file belongs to: the folder holding the ``params/`` folder it lies in."""
    env = os.environ.get(ROOT_ENV, "").strip()
    if env:
        return Path(env).expanduser().resolve()
    # Not resolved: a params/ folder linked into a project belongs to that project.
    file = Path(os.path.abspath(Path(path).expanduser()))
    for folder in file.parents:
        if folder.name == PARAMS_DIR:
            return folder.parent
    return project_root()


def resolve_path(value: str, root: str | Path | None = None) -> str:
    """``value`` as an absolute path: ``~`` expanded, a relative path joined to ``root`` (default: the project root)."""
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = Path(root) if root is not None else project_root()
        path = path / Path(value).expanduser()
    return os.path.normpath(path)


def is_hub_id(value: str, root: str | Path | None = None) -> bool:
    """Whether a model reference names a hub repository (``org/name``) rather than a local folder."""
    if value.startswith(("/", "./", "../", "~", ".\\")) or value.count("/") != 1 or value.endswith("/"):
        return False
    base = Path(root) if root is not None else project_root()
    return not (base / value).exists()


def resolve_model(value: str, root: str | Path | None = None) -> str:
    """A model reference with a local folder made absolute; a hub id is returned unchanged."""
    return value if is_hub_id(value, root) else resolve_path(value, root)
