"""The SQLite reply cache: persistence, WAL mode, concurrent writers."""

from __future__ import annotations

import sqlite3
import threading

from hadpo.judge.cache import ReplyCache, request_key


def test_round_trip_and_persistence(tmp_path):
    path = tmp_path / "c.sqlite"
    request = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    key = request_key(request)
    with ReplyCache(path) as cache:
        assert cache.get(key) is None
        cache.put(key, request, "hello", "m-2024")
        assert cache.get(key) == ("hello", "m-2024")
    with ReplyCache(path) as cache:
        assert cache.get(key) == ("hello", "m-2024") and len(cache) == 1


def test_key_is_order_independent_but_content_sensitive():
    a = {"model": "m", "temperature": 0.0}
    assert request_key(a) == request_key({"temperature": 0.0, "model": "m"})
    assert request_key(a) != request_key({"model": "m", "temperature": 0.7})


def test_wal_mode_and_threads(tmp_path):
    path = tmp_path / "c.sqlite"
    cache = ReplyCache(path)

    def write(worker: int) -> None:
        for i in range(25):
            cache.put(f"{worker}-{i}", {"i": i}, f"reply {worker} {i}", None)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache) == 200
    assert cache.get("7-24") == ("reply 7 24", None)
    cache.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
