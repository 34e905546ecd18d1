"""File helpers shared by every stage: atomic writes, JSON / JSON-lines reading with located errors, hashing.

Every result file is written atomically (temporary file in the same folder, fsync, rename), so a killed run
leaves either the old file or the new one, never half of one. Append-only JSON-lines files (answers,
metrics) are flushed and fsynced per batch so a kill loses at most the batch in flight.
"""

from __future__ import annotations

import hashlib
import json
import json.scanner
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from hadpo.errors import DataError


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically, creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    # mkstemp creates 0600 files; give the result the permissions a plain open() would (umask applied).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any, *, indent: int | None = 2) -> Path:
    """Serialise ``obj`` as JSON and write it atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


def atomic_write_jsonl(path: str | Path, records: Iterable[Any]) -> Path:
    """Write one JSON object per line, atomically."""
    return atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


# ---------------------------------------------------------------------------------------------------- reading
# JSON that Python's json module accepts but no valid input holds: a key repeated in one object (json keeps the
# last value silently), NaN / Infinity (not JSON at all), and numbers that overflow (1e400 becomes inf, an integer
# of more than 4300 digits raises a bare ValueError). The hooks below reject them; _locate then finds where.


class _Rejected(ValueError):
    """A value the hooks refuse: ``what`` it is and ``why`` not; ``pos``, its index in the text, comes from _locate."""

    def __init__(self, what: str, why: str, *, key: str | None = None, pos: int | None = None) -> None:
        super().__init__(f"{what} ({why})")
        self.what = what
        self.why = why
        self.key = key
        self.pos = pos


_DUPLICATE_WHY = "a key may appear once per object; only its last value would be kept"


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Rejected(f"duplicate key {key!r}", _DUPLICATE_WHY, key=key)
            seen.add(key)
    return obj


def _reject_constant(name: str) -> Any:
    raise _Rejected(f"non-finite number {name}", "JSON numbers must be finite")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Rejected(f"number {text}", "too large: it overflows to infinity")
    return value


def _checked_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
        raise _Rejected(f"integer of {len(text.lstrip('-'))} digits", "too large") from None


def _decoder(allow_nonfinite: bool) -> json.JSONDecoder:
    if allow_nonfinite:
        return json.JSONDecoder(object_pairs_hook=_unique_object)
    return json.JSONDecoder(object_pairs_hook=_unique_object, parse_constant=_reject_constant,
                            parse_float=_finite_float)


_STRICT, _LENIENT = _decoder(False), _decoder(True)
_WS = " \t\n\r"


def _skip_ws(s: str, i: int) -> int:
    while i < len(s) and s[i] in _WS:
        i += 1
    return i


def _located(exc: _Rejected, pos: int) -> _Rejected:
    if exc.pos is None:
        exc.pos = pos
    return exc


def _object_walk(s_and_end: tuple[str, int], strict: bool, scan_once: Callable[..., Any], *_: Any) -> Any:
    """``JSONObject`` of the pure-Python scanner, tracking where each key and value starts."""
    s, end = s_and_end
    seen: set[str] = set()
    end = _skip_ws(s, end)
    if s[end] == "}":
        return {}, end + 1
    while True:
        if s[end] != '"':
            raise StopIteration(end)
        key_pos = end
        key, end = json.decoder.scanstring(s, end + 1, strict)
        if key in seen:
            raise _Rejected(f"duplicate key {key!r}", _DUPLICATE_WHY, key=key, pos=key_pos)
        seen.add(key)
        end = _skip_ws(s, end)
        if s[end] != ":":
            raise StopIteration(end)
        end = _skip_ws(s, end + 1)
        try:
            _, end = scan_once(s, end)
        except _Rejected as exc:
            raise _located(exc, end) from None
        end = _skip_ws(s, end)
        if s[end] == "}":
            return {}, end + 1
        if s[end] != ",":
            raise StopIteration(end)
        end = _skip_ws(s, end + 1)


def _array_walk(s_and_end: tuple[str, int], scan_once: Callable[..., Any]) -> Any:
    """``JSONArray`` of the pure-Python scanner, tracking where each value starts."""
    s, end = s_and_end
    end = _skip_ws(s, end)
    if s[end] == "]":
        return [], end + 1
    while True:
        try:
            _, end = scan_once(s, end)
        except _Rejected as exc:
            raise _located(exc, end) from None
        end = _skip_ws(s, end)
        if s[end] == "]":
            return [], end + 1
        if s[end] != ",":
            raise StopIteration(end)
        end = _skip_ws(s, end + 1)


def _locate(text: str, allow_nonfinite: bool) -> _Rejected | None:
    """Re-read ``text`` slowly to find where the first rejected value is (only run once a read has failed)."""
    walker = _decoder(allow_nonfinite)
    walker.parse_object = _object_walk  # type: ignore[assignment]
    walker.parse_array = _array_walk  # type: ignore[assignment]
    walker.parse_int = _checked_int  # type: ignore[assignment]
    scan = json.scanner.py_make_scanner(walker)
    start = _skip_ws(text, 0)
    try:
        scan(text, start)
    except _Rejected as exc:
        return _located(exc, start)
    except (StopIteration, ValueError, IndexError, RecursionError):
        return None
    return None


def _loads(path: Path, text: str, *, line: int | None = None, allow_nonfinite: bool = False) -> Any:
    """Parse ``text`` (a whole file, or line ``line`` of a JSON-lines file); every failure is a located DataError.

    Duplicate keys, NaN / Infinity and overflowing numbers are errors (``allow_nonfinite`` keeps NaN and
    Infinity, which the kit's own logs may hold, e.g. a grad norm DeepSpeed did not report).
    """
    try:
        return (_LENIENT if allow_nonfinite else _STRICT).decode(text)
    except json.JSONDecodeError as exc:
        lineno = exc.lineno if line is None else line
        raise DataError(path, f"invalid JSON at column {exc.colno}: {exc.msg}", line=lineno) from None
    except (ValueError, RecursionError) as exc:
        # _Rejected from a hook, or the bare ValueError of an over-long integer; a second, slow pass finds where
        found = _locate(text, allow_nonfinite)
        if found is None or found.pos is None:
            reason = str(found if found is not None else exc) or type(exc).__name__
            raise DataError(path, reason, line=line) from None
        pos = found.pos
        lineno = text.count("\n", 0, pos) + 1 if line is None else line
        column = pos - text.rfind("\n", 0, pos)
        raise DataError(path, f"{found.what} at column {column} ({found.why})", line=lineno, field=found.key) from None


def _decode(path: Path, data: bytes, *, line: int | None = None) -> str:
    """``data`` as UTF-8 text; bad bytes are an error naming the file, the line and the byte's column."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        lineno = data.count(b"\n", 0, exc.start) + 1 if line is None else line
        column = exc.start - data.rfind(b"\n", 0, exc.start)
        byte = data[exc.start]
        raise DataError(path, f"not UTF-8 text: byte 0x{byte:02x} at column {column} ({exc.reason})",
                        line=lineno) from None


def _lines(data: bytes) -> list[bytes]:
    # Split on \n only: str.splitlines would also split inside a string holding U+2028 or U+0085, which
    # json.dumps(ensure_ascii=False) writes raw.
    lines = data.split(b"\n")
    return lines[:-1] if lines and not lines[-1] else lines


def read_json(path: str | Path, *, allow_nonfinite: bool = False) -> Any:
    """Read a JSON file; any problem is one :class:`DataError` naming the file, line and column.

    Besides syntax errors, bytes that are not UTF-8, an empty file, a key repeated in one object and
    non-finite numbers (NaN, Infinity, 1e400) are errors; ``allow_nonfinite`` accepts NaN and Infinity.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path.absolute(), "file not found")
    text = _decode(path, path.read_bytes())
    if not text.strip():
        raise DataError(path, "no records: the file is empty or blank")
    return _loads(path, text, allow_nonfinite=allow_nonfinite)


def iter_jsonl(path: str | Path, *, allow_nonfinite: bool = False) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, object)`` for each non-blank line; a bad line is an error naming its number.

    Each line is checked as :func:`read_json` checks a file (UTF-8, duplicate keys, finite numbers). A file
    with no non-blank line yields nothing: callers that need records say so (see
    :func:`hadpo.data.fields.jsonl_records`).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path.absolute(), "file not found")
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = _decode(path, raw, line=lineno)
            if not line.strip():
                continue
            yield lineno, _loads(path, line, line=lineno, allow_nonfinite=allow_nonfinite)


def read_jsonl(path: str | Path, *, allow_nonfinite: bool = False) -> list[Any]:
    """Read a JSON-lines file into a list (see :func:`iter_jsonl`)."""
    return [obj for _, obj in iter_jsonl(path, allow_nonfinite=allow_nonfinite)]


def read_jsonl_tolerant(path: str | Path) -> list[Any]:
    """Read an append-only JSON-lines file, ignoring a torn last line left by a killed writer.

    Only the *last* line may be torn (bad JSON, or bytes cut inside a UTF-8 character); a bad line anywhere
    else is still an error. These are the kit's own logs, so NaN and Infinity (e.g. a grad norm DeepSpeed did
    not report) are kept; repeated keys are still errors.
    """
    path = Path(path)
    if not path.is_file():
        return []
    lines = _lines(path.read_bytes())
    out = []
    for i, raw in enumerate(lines, start=1):
        try:
            line = _decode(path, raw, line=i)
            if not line.strip():
                continue
            out.append(_loads(path, line, line=i, allow_nonfinite=True))
        except DataError:
            if i == len(lines):
                break
            raise
    return out


def append_jsonl(path: str | Path, records: Iterable[Any]) -> None:
    """Append records to a JSON-lines file and fsync, so a kill loses at most this call's records."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if not payload:
        return
    _drop_torn_tail(path)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())


def _drop_torn_tail(path: Path) -> None:
    """Cut a partial last line (a writer killed mid-write) so the next append starts on a clean line."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with path.open("rb+") as fh:
        data = fh.read()
        if data.endswith(b"\n"):
            return
        fh.truncate(data.rfind(b"\n") + 1)


def sha256_file(path: str | Path, *, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_json(obj: Any) -> str:
    """Hex SHA-256 of a canonical JSON serialisation (sorted keys), for cache keys."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()
