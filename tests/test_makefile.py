"""The Makefile: a bare `make` lists the targets, each with its line, and the kit's entry points are there."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from hadpo.notebooks import REPO_ROOT


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_lists_every_target_with_a_description() -> None:
    out = subprocess.run(["make", "-s", "-C", str(REPO_ROOT)], capture_output=True, text=True, check=True).stdout
    described = {line.split()[1]: " ".join(line.split()[2:]) for line in out.splitlines() if line.strip()}
    assert {"help", "setup", "test", "lint", "demo", "demo-ci", "lab", "sync", "clean"} <= set(described)
    assert all(described.values()), "every listed target says what it does"


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_demo_ci_and_lab_run_the_kit_from_its_venv() -> None:
    # -n prints the commands without running them; an empty STAMP leaves setup with nothing to do.
    out = subprocess.run(["make", "-s", "-n", "-C", str(REPO_ROOT), "demo-ci", "lab", "STAMP="], capture_output=True,
                         text=True, check=True).stdout
    assert [line.strip() for line in out.splitlines()] == [
        ".venv/bin/hadpo demo -f params/demo-ci.yaml", ".venv/bin/jupyter lab --notebook-dir=."]
