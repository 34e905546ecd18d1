"""Typed parameter dataclasses: every field typed, defaulted and documented; unknown keys are errors.

A notebook's parameters, a params YAML file and a config dataclass share the same flat key names, so
``papermill nb.ipynb out.ipynb -f params/x.yaml -p key value`` and ``XConfig.from_yaml("params/x.yaml")``
read the same thing. Declare fields with :func:`param`::

    @dataclass
    class PopeConfig(Params):
        set: Literal["random", "popular", "adv"] = param("random", "POPE split to evaluate.")

Checks that go beyond the type (ranges, cross-field rules) live in ``__post_init__`` and raise
:class:`~hadpo.errors.ParamsError` naming the field and the bad value.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

from hadpo.errors import ParamsError

P = TypeVar("P", bound="Params")


def param(default: Any, help: str, **kwargs: Any) -> Any:
    """A dataclass field with a default and a help string (mutable defaults are copied per instance)."""
    metadata = {"help": help}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata, **kwargs)
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(tp))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    return "None" if tp is type(None) else getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Return ``value`` checked against (and minimally coerced to) the annotation ``tp``."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        choices = typing.get_args(tp)
        if value in choices:
            return value
        raise ParamsError(f"{where} must be one of {list(choices)}, got {value!r}")
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ParamsError as exc:
                errors.append(str(exc))
        raise ParamsError(f"{where} must be {_type_name(tp)}, got {type(value).__name__} {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ParamsError(f"{where} must be a list, got {type(value).__name__} {value!r}")
        (item_tp, *_) = typing.get_args(tp) or (Any,)
        items = [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise ParamsError(f"{where} must be a mapping, got {type(value).__name__} {value!r}")
        key_tp, val_tp = typing.get_args(tp) or (Any, Any)
        return {
            _coerce(k, key_tp, f"{where} key"): _coerce(v, val_tp, f"{where}[{k!r}]") for k, v in value.items()
        }
    if isinstance(tp, type) and issubclass(tp, Params):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ParamsError(f"{where} must be a mapping, got {type(value).__name__} {value!r}")
        return tp.from_dict(value, source=where)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ParamsError(f"{where} must be true or false, got {type(value).__name__} {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ParamsError(f"{where} must be an integer, got {type(value).__name__} {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        # YAML 1.1 reads "1e-4" (no dot) as a string; accept numeric strings for float fields only.
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ParamsError(f"{where} must be a number, got {type(value).__name__} {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, Path):
            return str(value)
        raise ParamsError(f"{where} must be a string, got {type(value).__name__} {value!r}")
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ParamsError(f"{where} must be {_type_name(tp)}, got {type(value).__name__} {value!r}")
    return value


@dataclasses.dataclass
class Params:
    """Base class of the kit's parameter dataclasses (see the module docstring)."""

    @classmethod
    def field_names(cls) -> list[str]:
        """Names of the parameters, in declaration order."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def help(cls) -> dict[str, str]:
        """``{name: help string}`` for every parameter."""
        return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}

    @classmethod
    def from_dict(cls: type[P], data: typing.Mapping[str, Any], *, source: str = "params") -> P:
        """Build from a mapping; an unknown key or a value of the wrong type is a :class:`ParamsError`."""
        if not isinstance(data, typing.Mapping):
            raise ParamsError(f"{source}: expected a mapping of parameters, got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        known = {f.name: f for f in dataclasses.fields(cls) if f.init}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ParamsError(
                f"{source}: unknown parameter(s) {', '.join(map(repr, unknown))} for {cls.__name__}; "
                f"known: {', '.join(known)}"
            )
        kwargs = {k: _coerce(v, hints[k], f"{source}: parameter '{k}'") for k, v in data.items()}
        try:
            return cls(**kwargs)
        except ParamsError as exc:
            raise ParamsError(f"{source}: {exc}") from None

    @classmethod
    def from_yaml(cls: type[P], path: str | Path, **overrides: Any) -> P:
        """Build from a flat YAML params file, then apply ``overrides`` (same checks)."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise ParamsError(f"{path}: params file not found") from None
        except yaml.YAMLError as exc:
            raise ParamsError(f"{path}: invalid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ParamsError(f"{path}: expected a mapping of parameters at the top level")
        return cls.from_dict({**data, **overrides}, source=str(path))

    @classmethod
    def from_namespace(cls: type[P], namespace: typing.Mapping[str, Any], *, source: str = "notebook") -> P:
        """Build from a notebook's globals: takes exactly this class's fields, each of which must be set."""
        missing = [n for n in cls.field_names() if n not in namespace]
        if missing:
            raise ParamsError(f"{source}: parameter(s) {', '.join(missing)} not set for {cls.__name__}")
        return cls.from_dict({n: namespace[n] for n in cls.field_names()}, source=source)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data copy (nested params become dicts), suitable for JSON/YAML."""
        return dataclasses.asdict(self)

    def replace(self: P, **changes: Any) -> P:
        """A checked copy with some fields changed."""
        return type(self).from_dict({**self.to_dict(), **changes}, source=type(self).__name__)


def check(condition: bool, message: str) -> None:
    """Raise :class:`ParamsError` with ``message`` unless ``condition`` holds (for ``__post_init__``)."""
    if not condition:
        raise ParamsError(message)


def add_set_argument(parser: argparse.ArgumentParser) -> None:
    """Add the repeatable ``--set KEY VALUE`` override of a params file to a command's parser."""
    parser.add_argument("--set", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                        help="override one parameter (YAML value syntax), repeatable")


def set_overrides(pairs: list[list[str]]) -> dict[str, Any]:
    """The ``--set`` pairs as a mapping, each value read as YAML (``1e-4``, ``true``, ``null``, ...)."""
    return {key: yaml.safe_load(value) for key, value in pairs}
