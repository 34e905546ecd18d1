"""Notebooks: committed without outputs, no def/class, one call per code cell, a parameters cell that matches
the config class; every params file loads against its notebook's config class, completely."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest
import yaml

from hadpo.errors import ParamsError
from hadpo.notebooks import NOTEBOOK_CONFIGS, NOTEBOOK_DIR, REPO_ROOT, config_class, resolve_parameters

NOTEBOOKS = sorted(NOTEBOOK_CONFIGS)
PARAMS_FILES = sorted(p for p in (REPO_ROOT / "params").rglob("*.yaml"))


def _read(name: str):
    return nbformat.read(str(NOTEBOOK_DIR / f"{name}.ipynb"), as_version=4)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_shape(name: str) -> None:
    nb = _read(name)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "commit notebooks without outputs"
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and code[0] is params[0], "the first code cell is the tagged parameters cell"
    for cell in code[1:]:
        tree = ast.parse(cell.source)
        assert not any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda))
                       for n in ast.walk(tree)), f"{name}: logic belongs in the package"
        assert len(tree.body) == 1, f"{name}: one statement per code cell:\n{cell.source}"
        stmt = tree.body[0]
        assert isinstance(stmt, (ast.Import, ast.ImportFrom, ast.Assign, ast.Expr)), cell.source


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_parameters_cell_declares_exactly_the_config(name: str) -> None:
    cell = next(c for c in _read(name).cells if "parameters" in c.metadata.get("tags", []))
    namespace: dict = {}
    exec(compile(cell.source, name, "exec"), namespace)  # literals only
    values = {k: v for k, v in namespace.items() if not k.startswith("__")}
    cls = config_class(name)
    assert list(values) == cls.field_names()
    # The parameters cell holds the shapes world's params file, so a bare run is the embedded default.
    world = yaml.safe_load((REPO_ROOT / "params" / "world" / f"{name}.yaml").read_text())
    assert cls.from_dict(values).to_dict() == cls.from_dict(world).to_dict()


@pytest.mark.parametrize("path", [p for p in PARAMS_FILES if p.stem in NOTEBOOK_CONFIGS], ids=str)
def test_params_file_is_complete_and_valid(path: Path) -> None:
    """Every key known, every value well typed, and every field present: papermill injects only the keys a
    file has, so a missing one would silently keep the notebook's shapes-world default."""
    data = yaml.safe_load(path.read_text())
    cls = config_class(path.stem)
    cls.from_dict(data, source=str(path))
    assert set(data) == set(cls.field_names()), f"{path}: missing {sorted(set(cls.field_names()) - set(data))}"
    assert path.read_text().startswith("# papermill notebooks/"), "first line: the command that runs it"


def test_pipeline_params_files_load() -> None:
    from hadpo.pipeline import PipelineConfig, stages

    for path in (REPO_ROOT / "params").glob("demo*.yaml"):
        cfg = PipelineConfig.from_yaml(path)
        plan = stages(cfg)
        assert [n for n, _, _ in plan][:3] == ["00_world", "01_data", "02_train"]


def test_unknown_parameter_is_refused_before_running(tmp_path) -> None:
    with pytest.raises(ParamsError, match=r"unknown parameter\(s\) 'sett'"):
        resolve_parameters("03_pope", REPO_ROOT / "params" / "world" / "03_pope.yaml", {"sett": "adv"})
    with pytest.raises(ParamsError, match="parameter 'set'"):
        resolve_parameters("03_pope", None, {"set": "advers"})
