"""Provenance recorded with every result file: package versions, git commit, host."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from pathlib import Path
from typing import Any

_PACKAGES = ("hadpo", "torch", "transformers", "peft", "deepspeed", "tokenizers", "accelerate", "openai")


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that decide numerical results (None when absent)."""
    out: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    out["python"] = platform.python_version()
    return out


def git_commit(path: str | Path | None = None) -> str | None:
    """The checkout's commit (with ``-dirty`` when it has local changes), or None outside git."""
    cwd = Path(path) if path else Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd, capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}-dirty" if dirty else sha


def environment() -> dict[str, Any]:
    """Versions, git commit and host, for a result's ``protocol``/manifest."""
    return {"versions": package_versions(), "git_commit": git_commit(), "host": platform.node()}
