"""Typed parameters: every field typed, defaulted and documented; flat keys routed to the part that declares them.

A stage's config is a dataclass of its own fields plus *components*, the shared blocks declared once in
:mod:`hadpo.specs` (how a model is loaded, how text is decoded, which judge, how training is launched). Users
never see the nesting: a params file, a notebook's parameters cell and ``-p key value`` all use flat keys, and each
key is routed to the component (or the stage field) that declares it::

    @dataclass
    class PopeConfig(Params):
        set: str = param("random", "POPE split to evaluate.")
        model_spec: ModelSpec = component(ModelSpec)
        decoding: DecodingSpec = component(DecodingSpec, defaults={"batch_size": 16}, fixed={"num_beams": 1})

    PopeConfig.from_dict({"set": "adv", "model": "llava-hf/llava-1.5-7b-hf", "batch_size": 32})

``defaults`` changes a component's defaults for this stage; ``fixed`` pins fields the stage's protocol does not
let a user change (they are not keys of the stage). A key means one thing everywhere; two parts of one config
declaring the same key, an unknown key, or a fixed one, is a :class:`~hadpo.errors.ParamsError` naming it.

Paths (``param(..., kind="path")``) and model references (``kind="model"``) are made absolute against the project
root when a config is built (:mod:`hadpo.paths`), so a config means the same files from any working directory.
Checks beyond the type live in ``validate()`` and raise :class:`~hadpo.errors.ParamsError` naming the field.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

from hadpo.errors import ParamsError
from hadpo.paths import params_file_root, resolve_model, resolve_path

P = TypeVar("P", bound="Params")

#: ``param(kind=...)`` values: how a string value is resolved when a config is built.
PATH, MODEL = "path", "model"


def param(default: Any, help: str, *, kind: Literal["path", "model"] | None = None, section: str | None = None,
          **kwargs: Any) -> Any:
    """A dataclass field with a default and a help string (mutable defaults are copied per instance).

    ``kind`` marks a file or folder path (``"path"``) or a model reference (``"model"``: a folder or a hub id),
    resolved against the project root. ``section`` starts a titled group of keys in generated params files.
    """
    metadata = {"help": help, "kind": kind, "section": section}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=functools.partial(type(default), default), metadata=metadata,
                                 **kwargs)
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


def component(cls: type[Params], *, defaults: Mapping[str, Any] | None = None,
              fixed: Mapping[str, Any] | None = None) -> Any:
    """A shared component (a :class:`Params` class) composed into a stage config; its keys become the stage's.

    ``defaults`` overrides some of its defaults for this stage; ``fixed`` pins fields the stage does not expose.
    """
    defaults, fixed = dict(defaults or {}), dict(fixed or {})
    unknown = sorted((set(defaults) | set(fixed)) - set(cls.own_field_names()))
    if unknown:
        raise TypeError(f"component({cls.__name__}): no field(s) {unknown}")
    return dataclasses.field(
        default_factory=functools.partial(_build_component, cls, {**defaults, **fixed}),
        metadata={"component": cls, "defaults": defaults, "fixed": fixed},
    )


def _build_component(cls: type[Params], values: dict[str, Any]) -> Params:
    return cls.from_dict(values, source=cls.__name__)


@dataclasses.dataclass(frozen=True)
class Key:
    """One flat key of a config: where it lives, its type, its effective default and its help."""

    name: str
    owner: str | None  # the component field holding it, or None for the config's own field
    hint: Any
    default: Any
    help: str
    kind: str | None
    section: str | None


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


def type_name(tp: Any) -> str:
    """A short readable name of a type annotation (``int | None``, ``'pad' | 'crop'``)."""
    return _type_name(tp)


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
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ParamsError:
                continue
        hint = " (None is written None on the command line, null in YAML)" if value == "null" else ""
        raise ParamsError(f"{where} must be {_type_name(tp)}, got {type(value).__name__} {value!r}{hint}")
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
        if not isinstance(value, Mapping):
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


def _resolve(value: Any, kind: str | None, root: Path | None) -> Any:
    if not isinstance(value, str) or not value or kind is None:
        return value
    return resolve_path(value, root) if kind == PATH else resolve_model(value, root)


@dataclasses.dataclass
class Params:
    """Base class of the kit's parameter dataclasses (see the module docstring)."""

    #: Title of this class's group of keys in generated params files, when it is composed as a component.
    TITLE: typing.ClassVar[str] = ""

    def __post_init__(self) -> None:
        hints = _hints(type(self))
        for f in dataclasses.fields(self):
            if f.metadata.get("component"):
                continue
            kind = f.metadata.get("kind")
            if kind is not None:
                setattr(self, f.name, _resolve(getattr(self, f.name), kind, None))
            elif typing.get_origin(hints[f.name]) is Literal:
                _coerce(getattr(self, f.name), hints[f.name], f"parameter '{f.name}'")
        self.validate()

    def validate(self) -> None:
        """Checks beyond the types (ranges, cross-field rules); raise :class:`ParamsError` naming the field."""

    @classmethod
    def section_title(cls) -> str:
        """The title of this class's keys in generated params files."""
        return cls.TITLE or cls.__name__

    # ---- the flat surface -----------------------------------------------------------------------------------
    @classmethod
    def own_field_names(cls) -> list[str]:
        """Names of this class's own dataclass fields, components included, in declaration order."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def keys(cls) -> dict[str, Key]:
        """Every flat key, in order: own fields, and each component's keys where the component is declared."""
        return _keys(cls)

    @classmethod
    def field_names(cls) -> list[str]:
        """The flat keys, in declaration order (what a params file and a parameters cell hold)."""
        return list(cls.keys())

    @classmethod
    def help(cls) -> dict[str, str]:
        """``{key: help string}`` for every flat key."""
        return {k.name: k.help for k in cls.keys().values()}

    @classmethod
    def from_dict(cls: type[P], data: Mapping[str, Any], *, source: str = "params",
                  origins: Mapping[str, str] | None = None) -> P:
        """Build from flat keys; an unknown, fixed or ill-typed key is a :class:`ParamsError` naming it.

        ``origins`` names where each key was given (a params file, the command line), so an error about one key
        blames the place that set it; ``source`` names them all.
        """
        if not isinstance(data, Mapping):
            raise ParamsError(f"{source}: expected a mapping of parameters, got {type(data).__name__}")
        origins = origins or {}
        keys = cls.keys()
        unknown = [k for k in data if k not in keys]
        if unknown:
            where = dict.fromkeys(origins.get(k, source) for k in unknown)
            raise ParamsError(f"{', '.join(where)}: {_unknown_message(cls, unknown)}")
        own: dict[str, Any] = {}
        parts: dict[str, dict[str, Any]] = {}
        for name, value in data.items():
            key = keys[name]
            coerced = _coerce(value, key.hint, f"{origins.get(name, source)}: parameter '{name}'")
            if key.owner is None:
                own[name] = coerced
            else:
                parts.setdefault(key.owner, {})[name] = coerced
        for f in dataclasses.fields(cls):
            comp = f.metadata.get("component")
            if comp is not None:
                values = {**f.metadata["defaults"], **parts.get(f.name, {}), **f.metadata["fixed"]}
                own[f.name] = comp.from_dict(values, source=source) if values else comp()
        try:
            return cls(**own)
        except ParamsError as exc:
            named = re.match(r"parameter '(\w+)'", str(exc))  # a check about one key blames where it was set
            raise ParamsError(f"{origins.get(named[1], source) if named else source}: {exc}") from None

    @classmethod
    def from_yaml(cls: type[P], path: str | Path, **overrides: Any) -> P:
        """Build from a flat YAML params file, then apply ``overrides`` (same checks)."""
        return cls.from_sources([path], overrides)

    @classmethod
    def from_sources(cls: type[P], files: list[str | Path], overrides: Mapping[str, Any] | None = None,
                     *, source: str | None = None) -> P:
        """Build from params files (later files win), then ``overrides``.

        A relative path in a file resolves against the project root the file belongs to (the folder holding its
        ``params/`` folder); a relative path in ``overrides`` against the working directory's project root.
        """
        data: dict[str, Any] = {}
        origins: dict[str, str] = {}
        keys = cls.keys()
        for path in files:
            values = read_params_file(path)
            root = params_file_root(path)
            for name, value in values.items():
                key = keys.get(name)
                data[name] = _resolve(value, key.kind, root) if key is not None else value
                origins[name] = str(path)
        data.update(overrides or {})
        origins.update(dict.fromkeys(overrides or {}, OVERRIDES_ORIGIN))
        if source is None:
            source = ", ".join(str(f) for f in files) or cls.__name__
        return cls.from_dict(data, source=source, origins=origins)

    @classmethod
    def from_namespace(cls: type[P], namespace: Mapping[str, Any], *, source: str = "notebook") -> P:
        """Build from a notebook's globals: takes exactly this class's keys, each of which must be set."""
        names = cls.field_names()
        missing = [n for n in names if n not in namespace]
        if missing:
            raise ParamsError(f"{source}: parameter(s) {', '.join(missing)} not set for {cls.__name__}")
        return cls.from_dict({n: namespace[n] for n in names}, source=source)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """``{key: default}`` for every flat key (a stage's component defaults applied)."""
        return {k.name: k.default for k in cls.keys().values()}

    def to_dict(self) -> dict[str, Any]:
        """The flat keys and their values, as plain data (suitable for JSON, YAML and ``from_dict``)."""
        out: dict[str, Any] = {}
        for key in self.keys().values():
            holder = self if key.owner is None else getattr(self, key.owner)
            out[key.name] = _plain(getattr(holder, key.name))
        return out

    def replace(self: P, **changes: Any) -> P:
        """A checked copy with some keys changed."""
        return type(self).from_dict({**self.to_dict(), **changes}, source=type(self).__name__)


def _plain(value: Any) -> Any:
    if isinstance(value, Params):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@functools.cache
def _hints(cls: type[Params]) -> dict[str, Any]:
    return typing.get_type_hints(cls)


@functools.cache
def _keys(cls: type[Params]) -> dict[str, Key]:
    hints = _hints(cls)
    out: dict[str, Key] = {}
    where: dict[str, str] = {}
    components = {f.name for f in dataclasses.fields(cls) if f.metadata.get("component")}

    def add(key: Key, origin: str) -> None:
        if key.name in out:
            raise ParamsError(
                f"{cls.__name__}: key {key.name!r} is declared twice ({where[key.name]} and {origin}); a key must "
                "mean one thing"
            )
        if key.name in components:
            raise ParamsError(f"{cls.__name__}: key {key.name!r} is also the name of a component field")
        out[key.name] = key
        where[key.name] = origin

    for f in dataclasses.fields(cls):
        comp = f.metadata.get("component")
        if comp is None:
            add(Key(f.name, None, hints[f.name], _default(f), f.metadata.get("help", ""), f.metadata.get("kind"),
                    f.metadata.get("section")), cls.__name__)
            continue
        first = True
        for key in comp.keys().values():
            if key.name in f.metadata["fixed"]:
                continue
            default = f.metadata["defaults"].get(key.name, key.default)
            section = key.section or (comp.section_title() if first else None)
            add(dataclasses.replace(key, owner=f.name, default=default, section=section), comp.__name__)
            first = False
    return out


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return _plain(f.default_factory())
    return dataclasses.MISSING


def _unknown_message(cls: type[Params], unknown: list[str]) -> str:
    fixed = {name: f.metadata["fixed"][name] for f in dataclasses.fields(cls) if f.metadata.get("component")
             for name in f.metadata["fixed"]}
    pinned = [f"'{name}' is fixed to {fixed[name]!r} by its protocol" for name in unknown if name in fixed]
    names = []
    for name in (n for n in unknown if n not in fixed):
        close = difflib.get_close_matches(name, cls.field_names(), n=1)
        names.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    parts = [f"unknown parameter(s) {', '.join(names)}"] if names else []
    return f"{cls.__name__}: " + "; ".join(parts + pinned)


#: How an error names a value given on the command line or in a call rather than in a params file.
OVERRIDES_ORIGIN = "parameters (-p)"


def read_params_file(path: str | Path) -> dict[str, Any]:
    """The mapping in a flat YAML params file; a missing file or a syntax error names the file, line and column."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParamsError(f"{path.absolute()}: params file not found") from None
    except UnicodeDecodeError as exc:
        raise ParamsError(f"{path.absolute()}: not UTF-8 text ({exc.reason})") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ParamsError(f"{path}{where}: invalid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping of parameters at the top level, got {type(data).__name__}")
    return data


def check(condition: bool, message: str) -> None:
    """Raise :class:`ParamsError` with ``message`` unless ``condition`` holds (for ``validate``)."""
    if not condition:
        raise ParamsError(message)
