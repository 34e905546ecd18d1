"""One writer per run folder: refusal naming the holder, release on exit, takeover after a kill, re-entrancy."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hadpo.errors import HadpoError, RunFolderBusy
from hadpo.overrides import one_line
from hadpo.runlock import LOCK_FILE, held_folders, read_holder, run_lock

#: a process that takes the lock, says so, then waits for a line on stdin (or a signal); FORK/SPAWN start a
#: sleeping child first (forked without exec, or exec'd) that outlives the holder when it is killed.
HOLDER = """
import os, subprocess, sys, time
from hadpo.runlock import run_lock
with run_lock(sys.argv[1], what="test holder"):
    extra = ""
    if sys.argv[2] == "fork":
        pid = os.fork()
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        extra = f" {pid}"
    elif sys.argv[2] == "spawn":
        extra = f" {subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], close_fds=False).pid}"
    print("held" + extra, flush=True)
    sys.stdin.readline()
"""


@pytest.fixture
def start_holder(tmp_path: Path) -> Iterator[Callable[..., tuple[subprocess.Popen[str], list[int]]]]:
    """Start HOLDER processes on a folder; returns (process, pids of its extra children). All are killed after."""
    started: list[int] = []
    procs: list[subprocess.Popen[str]] = []

    def start(folder: Path, mode: str = "plain") -> tuple[subprocess.Popen[str], list[int]]:
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), mode], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout is not None
        words = proc.stdout.readline().split()
        assert words[:1] == ["held"], f"holder did not start (exit {proc.wait()})"
        extra = [int(w) for w in words[1:]]
        started.extend(extra)
        return proc, extra

    yield start
    for pid in started:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for proc in procs:
        proc.kill()
        proc.wait()


def test_second_holder_is_refused_naming_the_holder(tmp_path: Path, start_holder) -> None:
    """Another process's lock stops the run at once with one line naming the folder, PID and command."""
    folder = tmp_path / "run"
    holder, _ = start_holder(folder)
    with pytest.raises(RunFolderBusy) as info, run_lock(folder, what="training"):
        pytest.fail("entered a folder another process holds")
    err = info.value
    assert isinstance(err, HadpoError)
    assert err.pid == holder.pid and err.folder == str(folder)
    message = str(err)
    assert "\n" not in message and message == one_line(err)
    assert str(folder) in message and f"PID {holder.pid}" in message and "test holder" in message
    assert "started " in message and sys.executable in message
    assert read_holder(folder)["pid"] == holder.pid


def test_lock_is_free_after_the_holder_exits(tmp_path: Path, start_holder, capfd: pytest.CaptureFixture[str]) -> None:
    """A holder that finishes releases the folder and empties its record: the next run takes it silently."""
    folder = tmp_path / "run"
    holder, _ = start_holder(folder)
    holder.communicate("\n")
    assert holder.returncode == 0
    assert read_holder(folder) is None and (folder / LOCK_FILE).read_bytes() == b""
    with run_lock(folder, what="training"):
        assert read_holder(folder)["pid"] == os.getpid()
    assert "taking over" not in capfd.readouterr().err
    assert read_holder(folder) is None


@pytest.mark.parametrize("mode", ["plain", "fork", "spawn"])
def test_lock_of_a_killed_holder_is_taken_over(tmp_path: Path, start_holder, mode: str,
                                               capfd: pytest.CaptureFixture[str]) -> None:
    """SIGKILL leaves the record but not the lock: the next run takes the folder and says so in one line. A child
    of the holder (forked without exec, or exec'd) still running does not keep the lock alive."""
    folder = tmp_path / "run"
    holder, extra = start_holder(folder, mode)
    holder.kill()
    holder.wait()
    for pid in extra:
        os.kill(pid, 0)  # still running: it alone would hold an inherited lock
    with run_lock(folder, what="training"):
        assert read_holder(folder)["pid"] == os.getpid()
    lines = [line for line in capfd.readouterr().err.splitlines() if "taking over" in line]
    assert len(lines) == 1
    assert str(folder) in lines[0] and f"PID {holder.pid}" in lines[0] and "test holder" in lines[0]


def test_reentrant_in_one_thread_refused_from_another(tmp_path: Path) -> None:
    """Nested stages on one folder in one thread share the lock (released with the outermost); another thread of
    the same process is refused like another process."""
    folder = tmp_path / "run"
    errors: list[BaseException] = []

    def other_thread() -> None:
        try:
            with run_lock(folder, what="other"):
                pass
        except RunFolderBusy as exc:
            errors.append(exc)

    with run_lock(folder, what="pipeline"):
        with run_lock(folder / ".." / "run", what="stage"):  # the same folder under another spelling
            assert held_folders() == [os.path.realpath(folder)]
        assert held_folders() == [os.path.realpath(folder)]
        assert read_holder(folder)["what"] == "pipeline"
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert len(errors) == 1 and f"PID {os.getpid()}" in str(errors[0]) and "another thread" in str(errors[0])
    assert held_folders() == [] and read_holder(folder) is None
    with run_lock(folder, what="again"):  # released for real
        pass


def test_an_error_inside_releases_the_lock(tmp_path: Path) -> None:
    """A stage failing inside the block leaves the folder free for the rerun."""
    folder = tmp_path / "run"
    with pytest.raises(ValueError, match="boom"), run_lock(folder, what="x"):
        raise ValueError("boom")
    assert held_folders() == []
    out = subprocess.run([sys.executable, "-c", HOLDER, str(folder), "plain"], input="\n", capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "held"


def test_ranks_of_one_job_share_the_folder(tmp_path: Path, start_holder, monkeypatch: pytest.MonkeyPatch) -> None:
    """With main_rank_only, rank 0 holds the folder for its job and the other ranks do not lock at all."""
    folder = tmp_path / "run"
    start_holder(folder)  # stands for rank 0
    monkeypatch.setenv("RANK", "1")
    with run_lock(folder, what="POPE", main_rank_only=True) as path:
        assert path == folder and held_folders() == []
    with pytest.raises(RunFolderBusy), run_lock(folder, what="POPE"):
        pass
