"""File helpers shared by every stage: atomic writes, JSON / JSON-lines reading with located errors, hashing.

Every result file is written atomically (temporary file in the same folder, fsync, rename), so a killed run
leaves either the old file or the new one, never half of one. Append-only JSON-lines files (answers,
metrics) are flushed and fsynced per batch so a kill loses at most the batch in flight.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
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


def read_json(path: str | Path) -> Any:
    """Read a JSON file; a syntax error names the file, line and column."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path.absolute(), "file not found")
    try:
        with path.open(encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise DataError(path, f"invalid JSON at column {exc.colno}: {exc.msg}", line=exc.lineno) from None
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not UTF-8 text: {exc.reason}") from None


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, object)`` for each non-blank line; a bad line is an error naming its number."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path.absolute(), "file not found")
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(path, f"invalid JSON at column {exc.colno}: {exc.msg}", line=lineno) from None


def read_jsonl(path: str | Path) -> list[Any]:
    """Read a JSON-lines file into a list (see :func:`iter_jsonl`)."""
    return [obj for _, obj in iter_jsonl(path)]


def read_jsonl_tolerant(path: str | Path) -> list[Any]:
    """Read an append-only JSON-lines file, ignoring a torn last line left by a killed writer.

    Only the *last* line may be torn; a bad line anywhere else is still an error.
    """
    path = Path(path)
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    out = []
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if i == len(lines):
                break
            raise DataError(path, f"invalid JSON at column {exc.colno}: {exc.msg}", line=i) from None
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
