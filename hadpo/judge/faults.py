"""What a judge client went through: requests, retries and every kind of fault, counted as they happen.

The counts are recorded next to every judged result (SHR's ``metrics.json``, mining's ``data_stats.json``), so a
number that cost 400 retries and an hour of rate limiting says so, and a judge that failed is visible in the
report instead of hiding in a log.
"""

from __future__ import annotations

import threading
from typing import Any

#: Counter names in the order they are reported, with what each counts.
FAULT_FIELDS: dict[str, str] = {
    "requests": "HTTP calls made for items (probe excluded; 0 on a rerun served from the cache)",
    "cache_hits": "items answered from the reply cache",
    "retries": "calls repeated after a transient fault",
    "rate_limited": "429 answers",
    "retry_after_wait_s": "seconds the server asked to wait (Retry-After) in all",
    "server_errors": "5xx answers",
    "timeouts": "calls that got no answer within judge_timeout",
    "connection_errors": "calls that could not reach the server",
    "malformed": "200 answers without a usable completion",
    "client_errors": "other 4xx answers (the request was refused; not retried)",
    "gave_up": "items left without a reply after every try",
    "unusable_replies": "replies the caller could not read (asked again up to judge_attempts)",
    "probes": "probe calls checking key, model and endpoint",
}


class FaultCounter:
    """The counters of :data:`FAULT_FIELDS`, thread-safe: the client's worker threads add to them concurrently."""

    def __init__(self) -> None:
        self._counts: dict[str, float] = dict.fromkeys(FAULT_FIELDS, 0)
        self._lock = threading.Lock()

    def add(self, name: str, amount: float = 1) -> None:
        """Add ``amount`` to the counter ``name`` (one of :data:`FAULT_FIELDS`)."""
        if name not in self._counts:
            raise KeyError(f"unknown fault counter {name!r}")
        with self._lock:
            self._counts[name] += amount

    def snapshot(self) -> dict[str, Any]:
        """The counts so far, in :data:`FAULT_FIELDS` order; waits in seconds rounded to 0.1, the rest integers."""
        with self._lock:
            counts = dict(self._counts)
        return {name: round(value, 1) if name.endswith("_s") else int(value) for name, value in counts.items()}
