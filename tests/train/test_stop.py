"""Stopping ``hadpo train`` stops its training child, and one run folder takes one trainer at a time.

The slow tests start the real ``hadpo train`` command on the tiny model, wait until the ranks have logged a step,
then stop or race it; the fast ones run :func:`run_streaming` with a stand-in launcher and rank. Process checks read
/proc (Linux only).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hadpo.io import read_jsonl
from hadpo.runlock import read_holder

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")

REPO = Path(__file__).resolve().parents[2]
#: The bound the kit promises for the child's whole process group to be gone after the parent is stopped.
STOP_BOUND_S = 2.0
#: How long a tiny run may take to log its first step (model load, DeepSpeed start-up on 2 shared cores).
FIRST_STEP_WAIT_S = 240.0


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent PID, process group) of ``pid``, or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[1]), int(fields[2])


def _running() -> dict[int, tuple[str, int, int]]:
    """Every process that runs (zombies excluded), by PID."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None and stat[0] not in ("Z", "X"):
            out[int(entry)] = stat
    return out


def _launched_by(parent: int) -> set[int]:
    """Running processes that ``parent``'s run_streaming started, whatever their group: they carry its PID."""
    found = set()
    for pid in _running():
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"HADPO_PARENT_PID={parent}".encode() in env:
            found.add(pid)
    return found


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _is_rank(pid: int) -> bool:
    """A training rank: ``python [-u] -m hadpo.train ...`` (not a launcher that names the module as an option)."""
    argv = _cmdline(pid)
    return any(a == "-m" and b == "hadpo.train" for a, b in itertools.pairwise(argv))


def _wait_gone(watched: set[int], pgid: int) -> set[int]:
    """Poll until none of ``watched`` and no member of group ``pgid`` runs, or STOP_BOUND_S pass; what is left."""
    deadline = time.monotonic() + STOP_BOUND_S
    left = watched
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        running = _running()
        left = {pid for pid in watched if pid in running} | {p for p, s in running.items() if s[2] == pgid}
    return left


def _train_config(tmp_path: Path, model: Path, data: Path, **overrides: Any) -> dict[str, Any]:
    """A tiny DPO run that would take far longer than the test: it is stopped after its first step."""
    base = dict(objective="dpo", model=str(model), data_root=str(data), output_dir=str(tmp_path / "run"),
                template="vicuna_v1", per_device_batch_size=2, learning_rate=5e-3, max_steps=100_000,
                save_steps=100_000, launcher="python", deepspeed_config=None, device="cpu", lora_r=4, lora_alpha=8)
    return {**base, **overrides}


@pytest.fixture
def hadpo_train(tmp_path: Path) -> Iterator[Callable[[dict[str, Any], str], subprocess.Popen[bytes]]]:
    """Start ``hadpo train`` with a config; whatever it and its child leave running is SIGKILLed afterwards."""
    parents: list[subprocess.Popen[bytes]] = []

    def start(config: dict[str, Any], name: str) -> subprocess.Popen[bytes]:
        out = (tmp_path / f"{name}.out").open("wb")
        env = {**os.environ, "DS_ACCELERATOR": "cpu", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
        # Its own session, so that cleaning up here can never signal pytest's group.
        proc = subprocess.Popen([sys.executable, "-m", "hadpo.cli", "train", "-y", json.dumps(config)], cwd=REPO,
                                env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        out.close()
        parents.append(proc)
        return proc

    yield start
    for proc in parents:
        leftovers = _launched_by(proc.pid)
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _wait_for_first_step(proc: subprocess.Popen[bytes], run_dir: Path, output: Path) -> None:
    """Wait until the ranks have logged a training step (so they run, with their watchdogs started)."""
    metrics = run_dir / "metrics.jsonl"
    deadline = time.monotonic() + FIRST_STEP_WAIT_S
    while not (metrics.is_file() and metrics.stat().st_size > 0):
        if proc.poll() is not None:
            pytest.fail(f"hadpo train exited with {proc.returncode} before its first step:\n{output.read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"no training step within {FIRST_STEP_WAIT_S} s:\n{output.read_text()}")
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "launcher"),
    [
        (signal.SIGKILL, "python"),
        (signal.SIGKILL, "deepspeed"),
        (signal.SIGTERM, "python"),
        (signal.SIGINT, "python"),
    ],
    ids=["sigkill-python", "sigkill-deepspeed", "sigterm-python", "sigint-python"],
)
def test_stopping_hadpo_train_ends_the_child_group(tmp_path, tiny_model_dir, train_world, hadpo_train,
                                                   sig: signal.Signals, launcher: str) -> None:
    """Once the parent is signalled, no process of the child's group (launcher and every rank), nor any other
    process it launched, is left running after STOP_BOUND_S: SIGTERM and SIGINT through the parent's cleanup,
    SIGKILL through the child's parent-death signal and the ranks' watchdog."""
    extra: dict[str, Any] = {"launcher": launcher}
    if launcher == "deepspeed":
        extra.update(num_gpus=2, deepspeed_config="params/deepspeed/zero2.json")
    config = _train_config(tmp_path, tiny_model_dir, train_world, **extra)
    parent = hadpo_train(config, "train")
    run_dir = Path(config["output_dir"])
    _wait_for_first_step(parent, run_dir, tmp_path / "train.out")

    processes = _running()
    (child,) = [pid for pid, (_, ppid, _) in processes.items() if ppid == parent.pid]
    pgid = processes[child][2]
    assert pgid == child  # the child leads its own group
    members = {pid for pid, (_, _, group) in processes.items() if group == pgid}
    watched = members | _launched_by(parent.pid)
    ranks = [pid for pid in watched if _is_rank(pid)]
    assert len(ranks) == (2 if launcher == "deepspeed" else 1), [_cmdline(p) for p in watched]

    os.kill(parent.pid, sig)
    left = _wait_gone(watched, pgid)
    assert not left, f"still running {STOP_BOUND_S} s after {sig.name}: {[_cmdline(p) for p in left]}"

    parent.wait(timeout=30)
    log = (run_dir / "train.log").read_text()
    if sig == signal.SIGKILL:
        assert parent.returncode == -signal.SIGKILL
        assert read_holder(run_dir)["pid"] == parent.pid  # the killed run's record, for the next run to report
    else:
        # The parent cleaned up itself: it logged it and released its run folder on the way out.
        name = "SIGTERM" if sig == signal.SIGTERM else "KeyboardInterrupt"
        assert f"### {name}; child process group terminated" in log
        # SIGTERM leaves as SystemExit(143); an uncaught KeyboardInterrupt makes Python re-raise SIGINT at exit.
        assert parent.returncode == (128 + signal.SIGTERM if sig == signal.SIGTERM else -signal.SIGINT)
        assert read_holder(run_dir) is None


@pytest.mark.slow
def test_two_trainers_on_one_folder(tmp_path, tiny_model_dir, train_world, hadpo_train) -> None:
    """Two ``hadpo train`` started together on one output_dir: exactly one trains (and logs each step once), the
    other stops at once with one line naming the folder and the winner's PID."""
    config = _train_config(tmp_path, tiny_model_dir, train_world, max_steps=2, save_steps=100)
    procs = [hadpo_train(config, "a"), hadpo_train(config, "b")]
    outputs = {p.pid: (tmp_path / f"{name}.out") for p, name in zip(procs, "ab", strict=True)}
    first = None
    deadline = time.monotonic() + FIRST_STEP_WAIT_S
    while first is None and time.monotonic() < deadline:
        first = next((p for p in procs if p.poll() is not None), None)
        time.sleep(0.05)
    assert first is not None, "neither trainer finished"
    winner = next(p for p in procs if p is not first)
    assert first.returncode == 1, outputs[first.pid].read_text()
    message = outputs[first.pid].read_text().strip()
    assert message.count("\n") == 0, message
    assert message.startswith("hadpo train: error: run folder ")
    assert config["output_dir"] in message and f"PID {winner.pid}" in message
    # The loser stopped before the winner had even finished (it did not wait for the folder).
    assert winner.poll() is None or (Path(config["output_dir"]) / "train_done.json").is_file()
    assert winner.wait(timeout=FIRST_STEP_WAIT_S) == 0, outputs[winner.pid].read_text()
    metrics = read_jsonl(Path(config["output_dir"]) / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2]
    assert read_holder(config["output_dir"]) is None


#: A stand-in rank: starts the kit's watchdog like ``python -m hadpo.train`` does, then idles without printing (a
#: rank that writes to the dead parent's pipe would die of EPIPE anyway and prove nothing).
FAKE_RANK = "import time\nfrom hadpo.train.launch import start_parent_watchdog\nstart_parent_watchdog()\n" \
            "print('ready', flush=True)\ntime.sleep(120)\n"
#: A stand-in launcher: starts the rank (same group) and idles, like deepspeed's.
FAKE_LAUNCHER = "import subprocess, sys, time\nsubprocess.Popen([sys.executable, '-c', sys.argv[1]])\ntime.sleep(120)\n"
#: The parent: run_streaming on the stand-in launcher, echoing the rank's lines to its own stdout.
FAKE_PARENT = """
import sys
from hadpo.train.launch import LaunchCommand, run_streaming
cmd = LaunchCommand(argv=[sys.executable, "-c", sys.argv[2], sys.argv[3]], env={"PYTHONUNBUFFERED": "1"})
run_streaming(cmd, sys.argv[1], echo=lambda line: print(line, flush=True))
"""


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_run_streaming_leaves_no_rank_behind(tmp_path: Path, sig: signal.Signals) -> None:
    """run_streaming's parent signalled: within STOP_BOUND_S nothing of the launcher's group runs. SIGKILL: the
    launcher gets the parent-death signal and the orphaned rank's watchdog kills the group; SIGTERM: the parent
    terminates the group itself and exits with 143 after logging it."""
    log = tmp_path / "t.log"
    parent = subprocess.Popen([sys.executable, "-c", FAKE_PARENT, str(log), FAKE_LAUNCHER, FAKE_RANK], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    watched: set[int] = set()
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline().strip() == "ready", parent.stdout.read()
        processes = _running()
        (launcher,) = [pid for pid, (_, ppid, _) in processes.items() if ppid == parent.pid]
        watched = {pid for pid, (_, _, group) in processes.items() if group == launcher}
        assert len(watched) == 2  # the launcher and its rank
        os.kill(parent.pid, sig)
        left = _wait_gone(watched, launcher)
        assert not left, f"still running {STOP_BOUND_S} s after {sig.name}: {[_cmdline(p) for p in left]}"
        parent.wait(timeout=30)
        if sig == signal.SIGTERM:
            assert parent.returncode == 128 + signal.SIGTERM
            assert "### SIGTERM; child process group terminated" in log.read_text()
        else:
            assert parent.returncode == -signal.SIGKILL
    finally:
        for pid in watched:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        parent.kill()
        parent.communicate()
