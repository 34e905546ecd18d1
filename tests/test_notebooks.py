"""Notebooks: one stage module each, committed without outputs, no def/class, one call per code cell, a parameters
cell written from the stage's config; params files complete, valid and generated; a committed notebook runs from
``notebooks/`` as a JupyterLab kernel would."""

from __future__ import annotations

import ast
import importlib
import json
from pathlib import Path

import nbformat
import pytest
import yaml

from hadpo.config import Params
from hadpo.errors import ParamsError
from hadpo.io import sha256_json
from hadpo.notebooks import (
    NOTEBOOK_DIR,
    REPO_ROOT,
    NotebookFailed,
    config_class,
    execute,
    notebooks,
    resolve_parameters,
    stage_modules,
)
from hadpo.specs import RerunSpec
from hadpo.sync import params_targets, sync

NOTEBOOKS = notebooks()


def _read(name: str):
    return nbformat.read(str(NOTEBOOK_DIR / f"{name}.ipynb"), as_version=4)


def test_every_notebook_has_one_stage_module_of_the_same_shape() -> None:
    """A stage is ``hadpo/<stage>/stage.py`` with NOTEBOOK, Config and run(cfg); the notebooks are exactly those."""
    assert sorted(p.stem for p in NOTEBOOK_DIR.glob("*.ipynb")) == NOTEBOOKS
    assert NOTEBOOKS == ["00_world", "01_data", "02_train", "03_pope", "04_shr", "05_chair", "06_amber", "07_mmhal",
                         "08_dashboard"]
    for name, module_name in stage_modules().items():
        module = importlib.import_module(module_name)
        assert module_name.endswith(".stage") and name == module.NOTEBOOK
        assert issubclass(module.Config, Params) and callable(module.run)


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
    package = stage_modules()[name].rsplit(".", 1)[0]
    assert code[1].source == f"from {package} import stage", "the notebook's package calls go through its stage"
    assert code[2].source == "cfg = stage.Config.from_namespace(globals())"
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
    assert values == world


@pytest.mark.parametrize(("path", "cls"), params_targets(), ids=lambda v: str(v) if isinstance(v, Path) else "")
def test_params_file_is_complete_and_valid(path: Path, cls: type[Params]) -> None:
    """Every key known, every value well typed, and every key present: papermill injects only the keys a file
    has, so a missing one would silently keep the notebook's shapes-world value."""
    data = yaml.safe_load(path.read_text())
    cls.from_sources([path])
    assert list(data) == cls.field_names(), f"{path}: keys differ from {cls.__name__}'s"
    first = path.read_text().splitlines()[0]
    assert first.startswith(("# papermill notebooks/", "# hadpo ")), "first line: the command that runs it"


def test_generated_files_are_up_to_date() -> None:
    """The params files and parameters cells are written from the config classes by `hadpo sync`."""
    assert sync(check=True) == [], "run `hadpo sync` (make sync)"


def test_no_7b_file_names_a_shapes_world_condition() -> None:
    from hadpo.world.config import ShapesSftOptions

    world_only = set(ShapesSftOptions.field_names())
    for path in (REPO_ROOT / "params" / "7b").glob("*.yaml"):
        assert not world_only & set(yaml.safe_load(path.read_text())), path


def test_pipeline_params_files_load() -> None:
    from hadpo.pipeline import PipelineConfig, stages

    for path in (REPO_ROOT / "params").glob("demo*.yaml"):
        cfg = PipelineConfig.from_yaml(path)
        plan = stages(cfg)
        assert [n for n, _, _ in plan][:3] == ["00_world", "01_data", "02_train"]


def test_unknown_parameter_is_refused_before_running() -> None:
    with pytest.raises(ParamsError, match=r"unknown parameter\(s\) 'sett'"):
        resolve_parameters("03_pope", REPO_ROOT / "params" / "world" / "03_pope.yaml", {"sett": "adv"})
    with pytest.raises(ParamsError, match="parameter 'set'"):
        resolve_parameters("03_pope", None, {"set": "advers"})


def test_every_notebook_has_the_shared_force_parameter() -> None:
    """``force`` is declared once (:class:`hadpo.specs.RerunSpec`) and composed into every stage's config."""
    for name in NOTEBOOKS:
        keys = config_class(name).keys()
        assert keys["force"].owner == "rerun" and keys["force"].default is False, name


def test_force_makes_the_runner_execute_a_finished_notebook_again(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A finished notebook is skipped, a forced one runs again, and the forced run counts as finished for an
    ordinary rerun (``force`` says how a run starts, not what it computes)."""
    import papermill

    ran: list[bool] = []

    def fake_execute(source: str, output: str, *, parameters: dict, **_: object) -> None:
        ran.append(parameters["force"])
        nbformat.write(nbformat.v4.new_notebook(), output)

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    params = REPO_ROOT / "params" / "world" / "08_dashboard.yaml"

    def run(**parameters: object) -> None:
        execute("08_dashboard", tmp_path, params_file=params, parameters=parameters, html=False, log=lambda _: None,
                progress=False)

    run()
    run()
    run(force=True)
    run(force=True)
    run()
    assert ran == [False, True, True]


def test_a_failed_run_is_one_line_never_skipped_and_its_html_replaces_the_old(tmp_path: Path) -> None:
    """A run with good parameters left its stamp and HTML; a failing run with other parameters must not leave
    them behind (a rerun of the good parameters would "skip" onto the failed notebook, the index would link the
    old result)."""
    out = tmp_path / "out"
    out.mkdir()
    params = REPO_ROOT / "params" / "world" / "03_pope.yaml"
    good = RerunSpec.unrecorded(resolve_parameters("03_pope", params).to_dict())
    (out / ".03_pope.done.json").write_text(json.dumps({"key": sha256_json({"notebook": "03_pope",
                                                                            "parameters": good})}))
    (out / "03_pope.html").write_text("<p>the earlier good run</p>")
    (out / "03_pope.ipynb").write_text("{}")
    with pytest.raises(NotebookFailed) as caught:
        execute("03_pope", out, params_file=params, log=lambda _: None, progress=False,
                parameters={"data_root": str(tmp_path / "no-such-data"), "run_dir": str(tmp_path / "pope")})
    message = str(caught.value)
    assert "\n" not in message and caught.value.ename == "DataError"
    assert message.startswith("03_pope failed at cell In [") and "no-such-data" in message
    assert not (out / ".03_pope.done.json").exists()
    html = (out / "03_pope.html").read_text()
    assert "the earlier good run" not in html and "DataError" in html


@pytest.mark.slow
def test_a_committed_notebook_runs_from_the_notebooks_folder(pope_project: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """notebooks/03_pope.ipynb as committed, executed with its kernel in notebooks/ (as JupyterLab starts it): its
    relative paths (runs/demo/...) resolve against the project root, the folder that holds params/."""
    from nbclient import NotebookClient

    project = pope_project

    monkeypatch.delenv("HADPO_ROOT", raising=False)
    nb = nbformat.read(str(project / "notebooks" / "03_pope.ipynb"), as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(project / "notebooks")}}).execute()
    for pope_set in ("random", "popular", "adversarial"):
        assert (project / "runs" / "demo" / "pope" / "base" / pope_set / "metrics.json").is_file()
    last = next(c for c in reversed(nb.cells) if c.cell_type == "code")
    assert "Accuracy" in last.outputs[0]["data"]["text/plain"]
    assert not (project / "notebooks" / "runs").exists(), "nothing is written relative to the kernel's folder"
