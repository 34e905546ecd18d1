"""Params dataclasses: defaults, types, unknown keys, YAML loading."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest

from hadpo.config import Params, check, param
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

    def __post_init__(self) -> None:
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
    with pytest.raises(ParamsError, match=r"unknown parameter\(s\) 'stpes'.*known: name, lr"):
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


def test_from_namespace_and_replace() -> None:
    ns = {f: getattr(Example(), f) for f in Example.field_names()} | {"unrelated": 1}
    ns["steps"] = 7
    ex = Example.from_namespace(ns)
    assert ex.steps == 7
    assert ex.replace(steps=8).steps == 8
    del ns["lr"]
    with pytest.raises(ParamsError, match="parameter\\(s\\) lr not set"):
        Example.from_namespace(ns)


def test_set_overrides_read_values_as_yaml() -> None:
    import argparse

    from hadpo.config import add_set_argument, set_overrides

    parser = argparse.ArgumentParser()
    add_set_argument(parser)
    args = parser.parse_args(["--set", "learning_rate", "1e-4", "--set", "adapter", "null", "--set", "flag", "true"])
    # YAML 1.1 leaves "1e-4" a string; Params accepts it for a float field.
    assert set_overrides(args.set) == {"learning_rate": "1e-4", "adapter": None, "flag": True}
