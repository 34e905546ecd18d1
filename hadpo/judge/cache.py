"""On-disk cache of chat replies, keyed by a hash of the full request, in SQLite.

A rerun of an evaluation asks the same questions, so it is answered from this file without a single API call;
that makes judged results reproducible and cheap to recompute (new metrics, a crashed run resumed). The
database runs in WAL mode so several processes can read while one writes, and one connection guarded by a
lock serves all the client's worker threads. Only successful replies are stored: a failure is retried on the
next run instead of being remembered.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from hadpo.io import sha256_json

_SCHEMA = """
CREATE TABLE IF NOT EXISTS replies (
    key TEXT PRIMARY KEY,
    request TEXT NOT NULL,
    reply TEXT NOT NULL,
    model TEXT,
    created REAL NOT NULL
)
"""


def request_key(request: dict[str, Any]) -> str:
    """The cache key of a request description: SHA-256 of its canonical JSON."""
    return sha256_json(request)


class ReplyCache:
    """A thread-safe SQLite map from request key to reply text."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # check_same_thread=False: the connection is shared by the worker threads, serialised by self._lock.
        self._conn = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(_SCHEMA)

    def get(self, key: str) -> tuple[str, str | None] | None:
        """``(reply, model)`` stored under ``key``, or None."""
        with self._lock:
            row = self._conn.execute("SELECT reply, model FROM replies WHERE key = ?", (key,)).fetchone()
        return (row[0], row[1]) if row else None

    def put(self, key: str, request: dict[str, Any], reply: str, model: str | None) -> None:
        """Store a successful reply with the (secret-free) request it answers."""
        payload = json.dumps(request, sort_keys=True, ensure_ascii=False)
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO replies (key, request, reply, model, created) VALUES (?, ?, ?, ?, ?)",
                (key, payload, reply, model, time.time()),
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM replies").fetchone()[0])

    def close(self) -> None:
        """Close the connection (further use raises)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> ReplyCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ReplyCache({str(self.path)!r})"
