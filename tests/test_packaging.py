"""Setup: environment.yml agrees with pyproject.toml, the console script and the notebook kernel exist."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import tomllib
import yaml

from hadpo.notebooks import REPO_ROOT


def _pyproject() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def test_environment_yml_installs_the_package_with_its_extras() -> None:
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps and "pip" in deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    # pyproject.toml is the single source: conda installs the package itself, with the dev extra.
    assert pip == ["-e .[dev]"]
    assert "dev" in _pyproject()["project"]["optional-dependencies"]


def test_notebook_tooling_and_core_packages_are_dependencies() -> None:
    import re

    names = {re.split(r"[<>=!~ ;\[]", d, maxsplit=1)[0].lower() for d in _pyproject()["project"]["dependencies"]}
    for needed in ("torch", "transformers", "peft", "deepspeed", "papermill", "jupyterlab", "nbconvert", "ipykernel",
                   "ipywidgets", "openai", "pandas", "matplotlib"):
        assert needed in names, needed
    assert "torchvision" not in names


def test_makefile_installs_pinned_torch_before_the_package() -> None:
    text = (REPO_ROOT / "Makefile").read_text()
    torch_at, package_at = text.index('"torch==$(TORCH_VERSION)"'), text.index('-e ".[dev]"')
    assert torch_at < package_at and "TORCH_VERSION ?= 2.13.0" in text
    assert "make test" in (REPO_ROOT / ".ci" / "run").read_text()


def test_console_script_lists_every_subcommand() -> None:
    hadpo = Path(sys.executable).parent / "hadpo"
    out = subprocess.run([str(hadpo), "--help"], capture_output=True, text=True, check=True).stdout
    commands = ("world", "validate", "mine", "pope-build", "pope-run", "pope-score", "shr", "shr-judge", "chair",
                "amber", "mmhal", "mmhal-judge", "train", "base-check", "demo", "report", "sync")
    for command in commands:
        assert any(line.split()[:1] == [command] for line in out.splitlines()), command


def test_the_venv_python3_kernel_runs_notebooks() -> None:
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("python3")
    assert spec.language == "python"
