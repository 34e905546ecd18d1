"""One writer per run folder: :func:`run_lock` holds an exclusive lock on ``<folder>/.hadpo.lock`` while a stage runs.

Two runs writing one folder (two trainers on one ``output_dir``, a POPE rerun while the first still answers)
interleave their files silently: duplicate metric lines, checkpoints from two runs, answers counted twice. Every
stage that writes a run folder therefore takes this lock first, and a second run stops at once with
:class:`~hadpo.errors.RunFolderBusy`, which names the folder and the holder (PID, host, command line, start time).

The lock is a ``flock(2)`` on the lock file, taken without waiting. The kernel drops a flock when the last file
descriptor of its holder closes, which includes the holder dying by SIGKILL or the OOM killer: a lock left by a killed
run is therefore never "held", it is taken over at once (a line on stderr says so, from the holder record the dead
run left in the file). The holder record is JSON written into the lock file after locking and emptied on release,
so a non-empty record found on acquiring is the mark of a run that died holding the folder. The file itself is never
deleted: unlinking a lock file lets a late opener lock an orphaned inode while a third process creates a new one.

Within one process the lock is re-entrant for the thread that holds it (a stage that calls another stage on the
same folder, or a pipeline running stages back to back, must not deadlock on itself); another thread of the same
process is refused like another process. The descriptor is close-on-exec, so launched children (the training
launcher and its ranks) never inherit the lock; a process forked without exec drops its copy at once, so a leftover
worker cannot keep a dead run's folder locked.

NFS: Linux emulates flock on NFS with byte-range (POSIX) locks that the server arbitrates, so the lock works across
clients on NFSv4 and on NFSv3 with a working lock manager (lockd); with ``nolock`` mounts (and some other network or
FUSE file systems) it is local to one machine only, and a run on another machine is not seen.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hadpo.errors import RunFolderBusy

__all__ = ["LOCK_FILE", "held_folders", "read_holder", "run_lock"]

#: the lock file inside each run folder (a dot file: folder listings and the dashboard skip it).
LOCK_FILE = ".hadpo.lock"
#: how long a refused run waits for the holder's record to appear (the holder writes it right after locking).
_RECORD_WAIT_S = 0.5
#: the longest command line a holder record keeps (the refusal message must stay one readable line).
_MAX_ARGV_CHARS = 300


@dataclass
class _Held:
    """A folder this process holds: the locked descriptor, the owning thread and the nesting depth."""

    fd: int
    thread: int
    depth: int
    record: dict[str, Any]


_registry_lock = threading.Lock()
_held: dict[str, _Held] = {}


def _forget_after_fork() -> None:
    """In a child forked without exec: close the inherited lock descriptors and forget them.

    The child shares the parent's open file descriptions, so keeping them would keep the folder locked after the
    parent died; closing the child's copies leaves the parent's lock untouched. No lock is taken here: another
    thread may have held the registry lock at the moment of the fork, and it will never release it in the child.
    """
    global _registry_lock, _held
    for held in list(_held.values()):
        with contextlib.suppress(OSError):
            os.close(held.fd)
    _held = {}
    _registry_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def _command_line() -> str:
    """This process's command line, quoted and shortened to fit in one message line."""
    text = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    text = " ".join(text.split())  # no newlines in a one-line error
    return text if len(text) <= _MAX_ARGV_CHARS else text[: _MAX_ARGV_CHARS - 3] + "..."


def _parse_record(raw: bytes) -> dict[str, Any] | None:
    """The holder record in a lock file's bytes, or None when empty or not (yet) complete JSON."""
    if not raw.strip():
        return None
    try:
        record = json.loads(raw.decode("utf-8", errors="replace"))
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def read_holder(folder: str | Path) -> dict[str, Any] | None:
    """The record of the run holding (or, if it was killed, last holding) ``folder``; None when there is none.

    The record has ``pid``, ``host``, ``argv`` (one string), ``started`` (local time) and ``what`` (the stage).
    """
    try:
        return _parse_record((Path(folder) / LOCK_FILE).read_bytes())
    except OSError:
        return None


def held_folders() -> list[str]:
    """The folders this process holds, as resolved paths (for diagnostics and tests)."""
    with _registry_lock:
        return sorted(_held)


def _read_record_waiting(fd: int) -> dict[str, Any] | None:
    """The holder's record through our own (unlocked) descriptor, waiting briefly for a holder that just locked."""
    deadline = time.monotonic() + _RECORD_WAIT_S
    while True:
        record = _parse_record(os.pread(fd, 1 << 16, 0))
        if record is not None or time.monotonic() >= deadline:
            return record
        time.sleep(0.02)


def _write_record(fd: int, record: dict[str, Any]) -> None:
    data = json.dumps(record).encode("utf-8")
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


@contextlib.contextmanager
def run_lock(folder: str | Path, *, what: str, main_rank_only: bool = False) -> Iterator[Path]:
    """Hold ``folder`` (created if missing) for this run; yields the folder.

    ``what`` names the stage in the holder record ("training", "POPE", ...). Raises
    :class:`~hadpo.errors.RunFolderBusy` at once when another process, or another thread of this one, holds the
    folder; re-entrant for the holding thread. A record left by a killed holder is reported on stderr and taken
    over. ``main_rank_only``: a stage that every rank of a ``torchrun`` job runs locks on the launcher's rank 0
    only (environment ``RANK``; absent means a single process), since the ranks share the folder by design.
    """
    path = Path(folder)
    if main_rank_only and os.environ.get("RANK", "0") != "0":
        yield path
        return
    path.mkdir(parents=True, exist_ok=True)
    key = os.path.realpath(path)
    me = threading.get_ident()
    with _registry_lock:
        held = _held.get(key)
        if held is not None:
            if held.thread != me:
                raise RunFolderBusy(path, {**held.record, "what": f"{held.record.get('what')} in another thread"})
            held.depth += 1
        else:
            held = _acquire(path, key, what, me)
            _held[key] = held
    try:
        yield path
    finally:
        with _registry_lock:
            held.depth -= 1
            if held.depth == 0 and _held.get(key) is held:
                del _held[key]
                # Empty the record before unlocking: a record found by the next holder means a killed run.
                with contextlib.suppress(OSError):
                    os.ftruncate(held.fd, 0)
                os.close(held.fd)  # closing the last descriptor releases the flock


def _acquire(path: Path, key: str, what: str, thread: int) -> _Held:
    """Lock ``key``'s lock file without waiting and write this process's record (registry lock held)."""
    fd = os.open(os.path.join(key, LOCK_FILE), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunFolderBusy(path, _read_record_waiting(fd)) from None
        previous = _parse_record(os.pread(fd, 1 << 16, 0))
        if previous is not None:
            holder = RunFolderBusy.describe_holder(previous)
            print(f"hadpo: taking over run folder {path}: its last holder, {holder}, ended without releasing it "
                  "(killed?)", file=sys.stderr, flush=True)
        record = {"pid": os.getpid(), "host": socket.gethostname(), "argv": _command_line(),
                  "started": time.strftime("%Y-%m-%d %H:%M:%S"), "what": what}
        _write_record(fd, record)
    except BaseException:
        os.close(fd)
        raise
    return _Held(fd=fd, thread=thread, depth=1, record=record)
