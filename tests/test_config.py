"""Params dataclasses: defaults, types, unknown keys, YAML loading."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import pytest

from hadpo.config import Params, check, component, param
from hadpo.errors import ParamsError


@dataclass
class Inner(Params):
    depth: int = param(2, "Depth.")


@dataclass
class Example(Params):
    name: str = param("x", "A name.")
    lr: float = param(1e-4, "Learning rate.")
    steps: int = param(10, "Steps.")
    flag: bool = param(False, "A flag.")
    mode: Literal["pad", "crop"] = param("pad", "Image mode.")
    tags: list[str] = param([], "Tags.")
    adapter: str | None = param(None, "Optional path.")
    inner: Inner | None = param(None, "Nested.")

    def validate(self) -> None:
        check(self.steps > 0, f"steps must be positive, got {self.steps}")


def test_defaults_and_help() -> None:
    ex = Example()
    assert ex.lr == 1e-4 and ex.tags == [] and ex.adapter is None
    assert Example.help()["lr"] == "Learning rate."
    assert Example.field_names()[:3] == ["name", "lr", "steps"]


def test_mutable_defaults_are_not_shared() -> None:
    a, b = Example(), Example()
    a.tags.append("t")
    assert b.tags == []


def test_unknown_key_is_named() -> None:
    with pytest.raises(ParamsError, match=r"unknown parameter\(s\) 'stpes' \(did you mean 'steps'\?\)"):
        Example.from_dict({"stpes": 3})


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("steps", "ten", "parameter 'steps' must be an integer, got str 'ten'"),
        ("steps", True, "parameter 'steps' must be an integer"),
        ("flag", "yes", "parameter 'flag' must be true or false"),
        ("mode", "square", "parameter 'mode' must be one of \\['pad', 'crop'\\]"),
        ("lr", "fast", "parameter 'lr' must be a number"),
        ("tags", "a", "parameter 'tags' must be a list"),
        ("tags", ["a", 3], "parameter 'tags'\\[1\\] must be a string"),
        ("adapter", 5, "parameter 'adapter' must be str \\| None"),
    ],
)
def test_wrong_types(key: str, value: object, message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        Example.from_dict({key: value})


def test_coercions() -> None:
    ex = Example.from_dict({"lr": "2e-6", "steps": 3.0, "inner": {"depth": 4}})
    assert ex.lr == 2e-6 and ex.steps == 3 and ex.inner == Inner(depth=4)
    assert isinstance(ex.lr, float)


def test_post_init_check_names_source() -> None:
    with pytest.raises(ParamsError, match=r"cfg\.yaml: steps must be positive, got 0"):
        Example.from_dict({"steps": 0}, source="cfg.yaml")


def test_from_yaml_and_overrides(tmp_path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("# hadpo example\nname: run\nlr: 1e-5\n")
    ex = Example.from_yaml(path, steps=5)
    assert (ex.name, ex.lr, ex.steps) == ("run", 1e-5, 5)
    path.write_text("- a\n")
    with pytest.raises(ParamsError, match="expected a mapping"):
        Example.from_yaml(path)
    with pytest.raises(ParamsError, match="params file not found"):
        Example.from_yaml(tmp_path / "missing.yaml")


def test_an_error_blames_where_the_key_was_set(tmp_path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("name: run\nsteps: 3\n")
    with pytest.raises(ParamsError, match=r"^parameters \(-p\): Example: unknown parameter\(s\) 'stpes'"):
        Example.from_sources([path], {"stpes": 4})
    with pytest.raises(ParamsError, match=r"^parameters \(-p\): parameter 'lr'"):
        Example.from_sources([path], {"lr": "fast"})
    path.write_text("name: run\nlr: fast\n")
    with pytest.raises(ParamsError, match=rf"^{re.escape(str(path))}: parameter 'lr'"):
        Example.from_sources([path], {"steps": 4})


def test_from_namespace_and_replace() -> None:
    ns = {f: getattr(Example(), f) for f in Example.field_names()} | {"unrelated": 1}
    ns["steps"] = 7
    ex = Example.from_namespace(ns)
    assert ex.steps == 7
    assert ex.replace(steps=8).steps == 8
    del ns["lr"]
    with pytest.raises(ParamsError, match="parameter\\(s\\) lr not set"):
        Example.from_namespace(ns)


# ---- components: shared blocks behind flat keys ------------------------------------------------------------------


@dataclass
class Block(Params):
    TITLE = "the block"

    width: int = param(3, "Width.")
    folder: str | None = param(None, "A folder.", kind="path")
    level: int = param(1, "Level.")

    def validate(self) -> None:
        check(self.width > 0, f"parameter 'width' must be positive, got {self.width}")


@dataclass
class Stage(Params):
    run_dir: str = param("runs/x", "Run folder.", kind="path")
    block: Block = component(Block, defaults={"width": 5}, fixed={"level": 2})
    steps: int = param(1, "Steps.", section="loop")


def test_component_keys_are_flat_and_routed_to_the_block() -> None:
    cfg = Stage.from_dict({"width": 7, "steps": 2})
    assert (cfg.block.width, cfg.block.level, cfg.steps) == (7, 2, 2)
    assert Stage.field_names() == ["run_dir", "width", "folder", "steps"]  # the fixed key is not a key
    assert Stage().block.width == 5 and Stage.defaults()["width"] == 5  # the stage's default
    assert Stage.keys()["width"].section == "the block" and Stage.keys()["steps"].section == "loop"
    flat = cfg.to_dict()
    assert set(flat) == set(Stage.field_names()) and Stage.from_dict(flat) == cfg
    assert cfg.replace(width=9).block.width == 9


def test_fixed_unknown_and_invalid_component_keys_are_named() -> None:
    with pytest.raises(ParamsError, match=r"'level' is fixed to 2 by its protocol"):
        Stage.from_dict({"level": 3})
    with pytest.raises(ParamsError, match=r"unknown parameter\(s\) 'widht' \(did you mean 'width'\?\)"):
        Stage.from_dict({"widht": 3})
    with pytest.raises(ParamsError, match=r"src: parameter 'width' must be positive, got 0"):
        Stage.from_dict({"width": 0}, source="src")


def test_a_key_declared_twice_is_refused() -> None:
    @dataclass
    class Twice(Params):
        width: int = param(1, "Also a width.")
        block: Block = component(Block)

    with pytest.raises(ParamsError, match=r"Twice: key 'width' is declared twice \(Twice and Block\)"):
        Twice.keys()


def test_paths_resolve_against_the_project_root(tmp_path, monkeypatch) -> None:
    """Not the working directory: a kernel in notebooks/ and a run from the root read the same folders."""
    (tmp_path / "params").mkdir()
    (tmp_path / "notebooks").mkdir()
    monkeypatch.delenv("HADPO_ROOT", raising=False)
    monkeypatch.chdir(tmp_path / "notebooks")
    cfg = Stage.from_dict({"folder": "data/x"})
    assert cfg.run_dir == str(tmp_path / "runs" / "x") and cfg.block.folder == str(tmp_path / "data" / "x")
    assert Stage.from_dict({"run_dir": "/abs/run"}).run_dir == "/abs/run"
    # A params file's relative paths belong to the project that holds its params/ folder, wherever the command runs.
    other = tmp_path / "other"
    (other / "params").mkdir(parents=True)
    (other / "params" / "s.yaml").write_text("run_dir: runs/y\n")
    assert Stage.from_yaml(other / "params" / "s.yaml").run_dir == str(other / "runs" / "y")
    monkeypatch.setenv("HADPO_ROOT", str(other))
    assert Stage().run_dir == str(other / "runs" / "x")


def test_a_yaml_error_names_the_file_line_and_column(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: run\nlr: [1, 2\n")
    with pytest.raises(ParamsError, match=r"bad\.yaml, line 3, column 1: invalid YAML"):
        Example.from_yaml(path)
