"""Typed access to the fields of JSON records, with every failure located in the file.

Each reader in :mod:`hadpo.data` walks its file through :class:`Fields`, so a bad value is always reported the
same way: one :class:`~hadpo.errors.DataError` naming the file, the record (list index, dict key or JSON-lines
line number) and the field (dotted and indexed for nested values, e.g. ``regions[3].phrase``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from hadpo.errors import DataError
from hadpo.io import iter_jsonl

_MISSING = object()

#: integers (ids, counts) must fit in a signed 64-bit integer, as every consumer (numpy, torch, SQL) stores them.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

#: the largest image side, and box coordinate, accepted in pixels: far beyond any real photo, so a bigger value
#: is a corrupt or mistyped record, not an image.
MAX_PIXELS = 1_000_000


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

    def integer(self, key: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
        """A required integer (not a bool, not a float) that fits in 64 bits, optionally in [minimum, maximum]."""
        return self._check_integer(self.get(key), key, minimum=minimum, maximum=maximum)

    def opt_integer(self, key: str, *, minimum: int | None = None, maximum: int | None = None) -> int | None:
        """An optional integer (absent or null → None)."""
        value = self._optional(key)
        return None if value is _MISSING else self._check_integer(value, key, minimum=minimum, maximum=maximum)

    def _check_integer(self, value: Any, key: str, *, minimum: int | None, maximum: int | None = None) -> int:
        if not is_int(value):
            raise self.error(f"expected an integer, got {describe(value)}", key)
        self._check_int64(value, key)
        if minimum is not None and value < minimum:
            raise self.error(f"expected an integer >= {minimum}, got {value}", key)
        if maximum is not None and value > maximum:
            raise self.error(f"expected an integer <= {maximum}, got {value}", key)
        return value

    def _check_int64(self, value: int, key: str) -> int:
        if not INT64_MIN <= value <= INT64_MAX:
            # the digit count, not the value, which can be thousands of digits long (too long for str() past 4300)
            bits = abs(value).bit_length()
            digits = len(str(abs(value))) if bits < 10_000 else math.floor(bits * math.log10(2)) + 1
            raise self.error(f"integer of {digits} digits does not fit in 64 bits", key)
        return value

    def number(
        self,
        key: str,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
        greater_than: float | None = None,
    ) -> float:
        """A required finite number (int or float, not a bool), optionally bounded (see :meth:`check_number`)."""
        value = self.get(key)
        return self.check_number(value, key, minimum=minimum, maximum=maximum, greater_than=greater_than)

    def check_number(
        self,
        value: Any,
        key: str,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
        greater_than: float | None = None,
    ) -> float:
        """Check that ``value`` (read from ``key``) is a finite number, ``>= minimum``, ``<= maximum`` and
        ``> greater_than`` for the bounds given. An integer must also fit in 64 bits."""
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise self.error(f"expected a number, got {describe(value)}", key)
        if isinstance(value, int):
            # checked before any float comparison: a huge JSON integer cannot even be converted to a float
            self._check_int64(value, key)
        elif not math.isfinite(value):
            raise self.error(f"expected a number, got {describe(value)}", key)
        if minimum is not None and value < minimum:
            raise self.error(f"expected a number >= {minimum}, got {value}", key)
        if greater_than is not None and value <= greater_than:
            raise self.error(f"expected a number > {greater_than}, got {value}", key)
        if maximum is not None and value > maximum:
            raise self.error(f"expected a number <= {maximum}, got {value}", key)
        return value

    def box(
        self, keys: Sequence[str], values: Sequence[Any] | None = None, *, origin_minimum: float | None = None
    ) -> tuple[float, float, float, float]:
        """A pixel box ``(x, y, width, height)``: finite, width and height > 0, every value within
        :data:`MAX_PIXELS`, and ``x``, ``y`` at least ``origin_minimum`` when given (formats that forbid boxes
        starting outside the image).

        ``keys`` names the four values; they are read from those keys, or taken from ``values`` (e.g. COCO's
        ``bbox`` list, with ``keys`` ``bbox[0]`` ... ``bbox[3]``).
        """
        kx, ky, kw, kh = keys
        vx, vy, vw, vh = [self.get(k) for k in keys] if values is None else values
        low = -MAX_PIXELS if origin_minimum is None else origin_minimum
        return (
            self.check_number(vx, kx, minimum=low, maximum=MAX_PIXELS),
            self.check_number(vy, ky, minimum=low, maximum=MAX_PIXELS),
            self.check_number(vw, kw, greater_than=0, maximum=MAX_PIXELS),
            self.check_number(vh, kh, greater_than=0, maximum=MAX_PIXELS),
        )

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
            return str(self._check_int64(value, key))
        if isinstance(value, str) and value.strip():
            return value
        raise self.error(f"expected an integer or non-empty string id, got {describe(value)}", key)

    def int_id(self, key: str) -> int:
        """A required integer id that fits in 64 bits; a string of decimal digits is accepted and converted."""
        value = self.get(key)
        if is_int(value):
            return self._check_int64(value, key)
        digits = value.strip() if isinstance(value, str) else ""
        # ASCII only: str.isdigit() is also true for '²' or '٣', which are no id
        if digits.isascii() and digits.isdigit():
            if len(digits.lstrip("0")) > len(str(INT64_MAX)):  # int() of a huge string is slow, or refused
                raise self.error(f"id of {len(digits)} digits does not fit in 64 bits", key)
            return self._check_int64(int(digits), key)
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


def no_records(file: str | Path | Sequence[str | Path], what: str, detail: str = "") -> DataError:
    """The error for a file (or set of files) holding none of the records it exists for.

    Every count or metric computed from such a file would be a silent zero, so it is always an error.
    """
    files = ", ".join(str(f) for f in file) if isinstance(file, (list, tuple)) else str(file)
    return DataError(files, f"no records: expected at least one of {what}{detail}")


def expect_list(file: str | Path, data: Any, what: str, *, allow_empty: bool = False) -> list[Any]:
    """Check that a whole file's JSON is a list (``what`` names its elements, for the error), not empty unless
    ``allow_empty``."""
    if not isinstance(data, list):
        raise DataError(file, f"expected a JSON list of {what}, got {describe(data)}")
    if not data and not allow_empty:
        raise no_records(file, what, ", got an empty list")
    return data


def list_records(file: str | Path, data: Any, what: str, *, allow_empty: bool = False) -> Iterator[Fields]:
    """Each element of a file's top-level JSON list as :class:`Fields`, located by its index (see
    :func:`expect_list` for ``allow_empty``)."""
    for index, value in enumerate(expect_list(file, data, what, allow_empty=allow_empty)):
        yield Fields.of(file, value, record=index, what=f"a JSON object ({what})")


def jsonl_records(file: str | Path, what: str, *, allow_empty: bool = False) -> Iterator[Fields]:
    """Each line of a JSON-lines file as :class:`Fields`, located by its line number.

    A file with no record (empty, or only blank lines) is an error after the last line, unless ``allow_empty``
    (for one part of a set that is checked as a whole).
    """
    count = 0
    for lineno, value in iter_jsonl(file):
        count += 1
        yield Fields.of(file, value, line=lineno, what=f"a JSON object ({what})")
    if not count and not allow_empty:
        raise no_records(file, what, ", got an empty or blank file")


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
