"""Typed access to the fields of JSON records, with every failure located in the file.

Each reader in :mod:`hadpo.data` walks its file through :class:`Fields`, so a bad value is always reported the
same way: one :class:`~hadpo.errors.DataError` naming the file, the record (list index, dict key or JSON-lines
line number) and the field (dotted and indexed for nested values, e.g. ``regions[3].phrase``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hadpo.errors import DataError
from hadpo.io import iter_jsonl

_MISSING = object()


def describe(value: Any, limit: int = 60) -> str:
    """A short ``<type> <value>`` description of a JSON value for error messages."""
    if value is None:
        return "null"
    name = type(value).__name__
    if isinstance(value, (dict, list)):
        return f"{name} of {len(value)} item(s)"
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{name} {text}"


def is_int(value: Any) -> bool:
    """True for JSON integers (``bool`` is a subclass of ``int`` in Python but never a valid id or count)."""
    return isinstance(value, int) and not isinstance(value, bool)


class Fields:
    """One JSON object being read: typed getters that raise a located :class:`DataError` on bad values.

    ``record`` and ``line`` locate the object in its file; ``prefix`` is the dotted path of a nested object
    (``"regions[2]."``) so nested fields are named in full.
    """

    __slots__ = ("file", "line", "obj", "prefix", "record")

    def __init__(
        self,
        file: str | Path,
        obj: dict[str, Any],
        *,
        record: int | str | None = None,
        line: int | None = None,
        prefix: str = "",
    ) -> None:
        self.file = Path(file)
        self.obj = obj
        self.record = record
        self.line = line
        self.prefix = prefix

    @classmethod
    def of(
        cls,
        file: str | Path,
        value: Any,
        *,
        record: int | str | None = None,
        line: int | None = None,
        prefix: str = "",
        what: str = "a JSON object",
    ) -> Fields:
        """Wrap ``value``, which must be a JSON object (``what`` says which kind, for the error)."""
        if not isinstance(value, dict):
            field = prefix.rstrip(".") or None
            raise DataError(file, f"expected {what}, got {describe(value)}", record=record, line=line, field=field)
        return cls(file, value, record=record, line=line, prefix=prefix)

    # ---- errors -------------------------------------------------------------------------------------------

    def field_name(self, key: str | None) -> str | None:
        """The full (prefixed) name of ``key``, or of this object itself when ``key`` is None."""
        if key is None:
            return self.prefix.rstrip(".") or None
        return f"{self.prefix}{key}"

    def error(self, message: str, key: str | None = None) -> DataError:
        """A :class:`DataError` located at this record and ``key``."""
        return DataError(self.file, message, record=self.record, line=self.line, field=self.field_name(key))

    # ---- raw access ---------------------------------------------------------------------------------------

    def has(self, key: str) -> bool:
        """Whether ``key`` is present (a JSON null counts as present)."""
        return key in self.obj

    def get(self, key: str) -> Any:
        """The value of a required key."""
        value = self.obj.get(key, _MISSING)
        if value is _MISSING:
            raise self.error("missing required field", key)
        return value

    def _optional(self, key: str) -> Any:
        """The value of an optional key, with absent and null both mapped to ``_MISSING``."""
        value = self.obj.get(key, _MISSING)
        return _MISSING if value is None else value

    # ---- typed getters ------------------------------------------------------------------------------------

    def text(self, key: str, *, nonempty: bool = False) -> str:
        """A required string; ``nonempty`` also rejects blank strings."""
        return self._check_text(self.get(key), key, nonempty=nonempty)

    def opt_text(self, key: str, *, nonempty: bool = False) -> str | None:
        """An optional string (absent or null → None)."""
        value = self._optional(key)
        return None if value is _MISSING else self._check_text(value, key, nonempty=nonempty)

    def _check_text(self, value: Any, key: str, *, nonempty: bool) -> str:
        if not isinstance(value, str):
            raise self.error(f"expected a string, got {describe(value)}", key)
        if nonempty and not value.strip():
            raise self.error("expected a non-empty string, got an empty one", key)
        return value

    def integer(self, key: str, *, minimum: int | None = None) -> int:
        """A required integer (not a bool, not a float), optionally at least ``minimum``."""
        return self._check_integer(self.get(key), key, minimum=minimum)

    def opt_integer(self, key: str, *, minimum: int | None = None) -> int | None:
        """An optional integer (absent or null → None)."""
        value = self._optional(key)
        return None if value is _MISSING else self._check_integer(value, key, minimum=minimum)

    def _check_integer(self, value: Any, key: str, *, minimum: int | None) -> int:
        if not is_int(value):
            raise self.error(f"expected an integer, got {describe(value)}", key)
        if minimum is not None and value < minimum:
            raise self.error(f"expected an integer >= {minimum}, got {value}", key)
        return value

    def number(self, key: str, *, minimum: float | None = None) -> float:
        """A required finite number (int or float, not a bool), optionally at least ``minimum``."""
        value = self.get(key)
        return self.check_number(value, key, minimum=minimum)

    def check_number(self, value: Any, key: str, *, minimum: float | None = None) -> float:
        """Check that ``value`` (read from ``key``) is a finite number, at least ``minimum`` if given."""
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise self.error(f"expected a number, got {describe(value)}", key)
        if minimum is not None and value < minimum:
            raise self.error(f"expected a number >= {minimum}, got {value}", key)
        return value

    def boolean(self, key: str) -> bool:
        """A required JSON boolean."""
        return self._check_boolean(self.get(key), key)

    def opt_boolean(self, key: str) -> bool | None:
        """An optional JSON boolean (absent or null → None)."""
        value = self._optional(key)
        return None if value is _MISSING else self._check_boolean(value, key)

    def _check_boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.error(f"expected true or false, got {describe(value)}", key)
        return value

    def ident(self, key: str) -> str:
        """A required id given as an integer or a non-empty string, returned as a string."""
        value = self.get(key)
        if is_int(value):
            return str(value)
        if isinstance(value, str) and value.strip():
            return value
        raise self.error(f"expected an integer or non-empty string id, got {describe(value)}", key)

    def int_id(self, key: str) -> int:
        """A required integer id; a string of decimal digits is accepted and converted."""
        value = self.get(key)
        if is_int(value):
            return value
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        raise self.error(f"expected an integer id, got {describe(value)}", key)

    def choice(self, key: str, choices: tuple[str, ...]) -> str:
        """A required string that must be one of ``choices``."""
        value = self.get(key)
        if value not in choices or not isinstance(value, str):
            allowed = ", ".join(repr(c) for c in choices)
            raise self.error(f"expected one of {allowed}, got {describe(value)}", key)
        return value

    def items(self, key: str, *, nonempty: bool = False) -> list[Any]:
        """A required JSON list; ``nonempty`` rejects ``[]``."""
        value = self.get(key)
        if not isinstance(value, list):
            raise self.error(f"expected a list, got {describe(value)}", key)
        if nonempty and not value:
            raise self.error("expected a non-empty list, got []", key)
        return value

    def strings(self, key: str, *, nonempty: bool = True, nonempty_items: bool = True) -> tuple[str, ...]:
        """A required list of strings; by default neither the list nor any string may be empty."""
        values = self.items(key, nonempty=nonempty)
        for i, value in enumerate(values):
            self._check_text(value, f"{key}[{i}]", nonempty=nonempty_items)
        return tuple(values)

    def child(self, key: str, *, what: str = "a JSON object") -> Fields:
        """The nested object under a required ``key``, itself read through :class:`Fields`."""
        return self.nested(self.get(key), key, what=what)

    def nested(self, value: Any, name: str, *, what: str = "a JSON object") -> Fields:
        """Wrap a nested value found at ``name`` (e.g. ``"regions[3]"``), which must be a JSON object."""
        return Fields.of(
            self.file, value, record=self.record, line=self.line, prefix=f"{self.prefix}{name}.", what=what
        )

    def objects(self, key: str, *, nonempty: bool = False, what: str = "a JSON object") -> Iterator[Fields]:
        """Each element of the list under ``key``, which must be a JSON object, in order."""
        for i, value in enumerate(self.items(key, nonempty=nonempty)):
            yield self.nested(value, f"{key}[{i}]", what=what)


def expect_list(file: str | Path, data: Any, what: str) -> list[Any]:
    """Check that a whole file's JSON is a list (``what`` names its elements, for the error)."""
    if not isinstance(data, list):
        raise DataError(file, f"expected a JSON list of {what}, got {describe(data)}")
    return data


def list_records(file: str | Path, data: Any, what: str) -> Iterator[Fields]:
    """Each element of a file's top-level JSON list as :class:`Fields`, located by its index."""
    for index, value in enumerate(expect_list(file, data, what)):
        yield Fields.of(file, value, record=index, what=f"a JSON object ({what})")


def jsonl_records(file: str | Path, what: str) -> Iterator[Fields]:
    """Each line of a JSON-lines file as :class:`Fields`, located by its line number."""
    for lineno, value in iter_jsonl(file):
        yield Fields.of(file, value, line=lineno, what=f"a JSON object ({what})")


class UniqueIds:
    """Remembers ids already seen in a file and rejects a repeat, naming where the first one was."""

    __slots__ = ("_kind", "_seen")

    def __init__(self, kind: str) -> None:
        self._kind = kind
        self._seen: dict[Any, str] = {}

    def add(self, value: Any, fields: Fields, key: str) -> None:
        """Record ``value`` (read from ``fields[key]``); a duplicate raises :class:`DataError`."""
        first = self._seen.get(value)
        if first is not None:
            raise fields.error(f"duplicate {self._kind} {value!r} (first seen at {first})", key)
        self._seen[value] = _where(fields)

    def __contains__(self, value: object) -> bool:
        return value in self._seen

    def __len__(self) -> int:
        return len(self._seen)


def _where(fields: Fields) -> str:
    """A short location for 'first seen at ...' hints: file name plus record or line."""
    parts = [fields.file.name]
    if fields.line is not None:
        parts.append(f"line {fields.line}")
    if fields.record is not None:
        parts.append(f"record {fields.record!r}" if isinstance(fields.record, str) else f"record {fields.record}")
    return ", ".join(parts)
