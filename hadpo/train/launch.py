"""Start training in a child process: build the launcher command line, stream its output, resolve DeepSpeed configs.

Training never runs inside the notebook kernel (or the ``hadpo`` CLI process): a crashed rank, a CUDA context or a
NCCL hang must not take the kernel with it. :func:`build_launch_command` turns a :class:`LaunchSpec` into the exact
argv and environment of the child (``deepspeed``, ``torchrun`` or plain ``python -m hadpo.train``);
:func:`run_streaming` runs it, echoing every line live and keeping a log. This module must stay light: it never
imports torch, so the parent never initialises CUDA.

DeepSpeed configs (``params/deepspeed/zero2.json``, ``zero3.json``) are written with ``"auto"`` in the fields the
trainer owns; :func:`resolve_deepspeed_config` fills them from the trainer's own settings, because ``"auto"`` is
only understood by the Hugging Face Trainer integration, which the kit does not use.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import math
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hadpo.distributed import free_port
from hadpo.errors import HadpoError, ParamsError
from hadpo.io import read_json
from hadpo.specs import Dtype, LaunchSpec

#: the training child's name in its error lines (``python -m hadpo.train``, whatever the launcher).
CHILD_PROG = "python -m hadpo.train"
#: how many of the child's last output lines a :class:`TrainingFailed` message quotes.
TAIL_LINES = 40
#: seconds the child's process group gets to exit after SIGTERM before it is killed. Stopping a run (stop button,
#: SIGTERM, Ctrl-C) must leave no rank behind within 2 s: this grace, then SIGKILL, which takes effect at once.
#: The trainer keeps nothing in memory that a checkpoint would lose, so a longer grace buys nothing.
TERMINATE_GRACE_S = 1.0
#: environment variable that tells the training child (every rank) the PID of the process that launched it.
PARENT_PID_ENV = "HADPO_PARENT_PID"
#: how often a training child checks that its parent is alive (see :func:`start_parent_watchdog`).
WATCHDOG_POLL_S = 0.25
#: Linux prctl(2) option: the signal a process gets when the thread that forked it ends.
_PR_SET_PDEATHSIG = 1


class TrainingFailed(HadpoError, RuntimeError):
    """The training child exited with a non-zero status; the message quotes the end of its output."""

    def __init__(self, returncode: int, log_path: str | Path, tail: list[str]) -> None:
        self.returncode = returncode
        self.log_path = str(log_path)
        self.tail = list(tail)
        if returncode < 0:
            try:
                name = signal.Signals(-returncode).name
            except ValueError:
                name = f"signal {-returncode}"
            status = f"was killed by {name}" + (" (out of memory?)" if -returncode == signal.SIGKILL else "")
        else:
            status = f"exited with code {returncode}"
        body = "\n".join(self.tail) if self.tail else "(no output)"
        # The child prints a kit error as one "<prog> (rank N): error: ..." line: lead with its reason.
        self.child_error = next((line.split(": error: ", 1)[1] for line in reversed(self.tail)
                                 if line.startswith(CHILD_PROG) and ": error: " in line), None)
        reason = f": {self.child_error}" if self.child_error else ""
        super().__init__(f"training {status}{reason}; full log: {self.log_path}\n"
                         f"--- last {len(self.tail)} lines ---\n{body}")


@dataclass(frozen=True)
class LaunchCommand:
    """A ready-to-run child: ``argv`` and the variables ``env`` sets on top of the inherited environment."""

    argv: list[str]
    env: dict[str, str]

    def full_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The child's complete environment: ``base`` (default ``os.environ``) updated with :attr:`env`."""
        return {**(os.environ if base is None else base), **self.env}

    def shell(self) -> str:
        """The command as one copy-pasteable shell line (env assignments first)."""
        assignments = [f"{k}={shlex.quote(v)}" for k, v in sorted(self.env.items())]
        return " ".join([*assignments, *map(shlex.quote, self.argv)])


def build_launch_command(spec: LaunchSpec, *, module: str, args: Sequence[str] = (), cpu: bool = False,
                         env: Mapping[str, str] | None = None, python: str | None = None) -> LaunchCommand:
    """The argv and environment that start ``python -m module args`` under ``spec.launcher``.

    ``python`` (default ``sys.executable``) is the interpreter of the child; the ``deepspeed`` and ``torchrun``
    scripts are taken from the same folder, so the child runs in the same virtual environment as the caller
    even when that environment is not activated (as in a Jupyter kernel). Forms::

        deepspeed --num_gpus N [--num_nodes M] [--hostfile F] [--master_addr A] --master_port P --module MOD ARGS
        deepspeed [--hostfile F] --include|--exclude FILTER [--master_addr A] --master_port P --module MOD ARGS
        torchrun --nproc_per_node N --nnodes M [--node_rank R --master_addr A] --master_port P -m MOD ARGS
        python -m MOD ARGS        (with RANK=0 WORLD_SIZE=1 MASTER_ADDR MASTER_PORT set, so DeepSpeed needs no MPI)

    The environment always sets ``PYTHONUNBUFFERED=1`` (lines must arrive while training runs, not at exit);
    ``cpu`` adds ``DS_ACCELERATOR=cpu`` (and ``OMP_NUM_THREADS=1`` when several ranks share a node) and ``env``
    adds (and wins over) the caller's own variables. Apart from choosing a free port when ``master_port`` is None,
    the function has no side effects.
    """
    if not module:
        raise ParamsError("module must be a non-empty module name")
    python = python or sys.executable
    # Not resolved: a venv's bin/python is a symlink, and the launcher scripts live next to the link.
    bin_dir = Path(python).parent
    port = spec.master_port if spec.master_port is not None else free_port()
    args = list(args)
    child_env: dict[str, str] = {"PYTHONUNBUFFERED": "1"}

    if spec.launcher == "deepspeed":
        argv = [str(bin_dir / "deepspeed")]
        if spec.hostfile:
            argv += ["--hostfile", spec.hostfile]
        if spec.include or spec.exclude:
            # DeepSpeed refuses --num_gpus/--num_nodes together with a resource filter.
            argv += ["--include", spec.include] if spec.include else ["--exclude", spec.exclude or ""]
        else:
            argv += ["--num_gpus", str(spec.num_gpus)]
            if spec.num_nodes > 1:
                argv += ["--num_nodes", str(spec.num_nodes)]
        if spec.master_addr:
            argv += ["--master_addr", spec.master_addr]
        argv += ["--master_port", str(port), "--module", module, *args]
    elif spec.launcher == "torchrun":
        argv = [str(bin_dir / "torchrun"), "--nproc_per_node", str(spec.num_gpus), "--nnodes", str(spec.num_nodes)]
        if spec.num_nodes > 1:
            argv += ["--node_rank", str(spec.node_rank)]
        if spec.master_addr:
            argv += ["--master_addr", spec.master_addr]
        argv += ["--master_port", str(port), "-m", module, *args]
    else:
        argv = [python, "-m", module, *args]
        # The rank variables a launcher would set: with them DeepSpeed and torch.distributed initialise a
        # one-process group over env://; without them DeepSpeed falls back to MPI discovery (needs mpi4py).
        child_env.update(
            RANK="0",
            LOCAL_RANK="0",
            WORLD_SIZE="1",
            LOCAL_WORLD_SIZE="1",
            MASTER_ADDR=spec.master_addr or "127.0.0.1",
            MASTER_PORT=str(port),
        )

    if cpu:
        child_env["DS_ACCELERATOR"] = "cpu"
        if spec.processes_per_node > 1:
            # Several ranks on a few cores oversubscribe badly with one OpenMP pool per rank (measured on 2 cores,
            # 2 ranks: ~500 ms/step by default, ~69 ms with one thread each).
            child_env["OMP_NUM_THREADS"] = "1"
    child_env.update(env or {})
    return LaunchCommand(argv=argv, env=child_env)


def _process_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs: absent, or a zombie that nobody has reaped yet (it still answers kill 0)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    except OSError:  # no /proc: fall back to kill 0, which counts a zombie as alive
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def group_alive(pgid: int) -> bool:
    """Whether a running (not zombie) process is left in process group ``pgid``.

    ``killpg(pgid, 0)`` alone would count zombies: a rank whose launcher died waits for init to reap it, and the
    direct child waits for us. Where /proc is missing, that is the answer anyway.
    """
    try:
        entries = os.listdir("/proc")
    except OSError:
        entries = None
    if entries is None:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # exited while we looked
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def _terminate_group(proc: subprocess.Popen[str], grace_s: float) -> None:
    """SIGTERM the child's whole process group (launcher and ranks), SIGKILL whatever of it outlives ``grace_s``.

    The wait is on the group, not only on the direct child: a launcher that exits on SIGTERM can leave ranks
    behind. Returns with the direct child reaped (unless it is stuck in an uninterruptible kernel call).
    """
    pgid = proc.pid  # start_new_session made the child the leader of its own group
    deadline = time.monotonic() + grace_s
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
        while time.monotonic() < deadline:
            proc.poll()  # reap the direct child, so that it stops counting as a member
            if not group_alive(pgid):
                break
            time.sleep(0.02)
        os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=max(grace_s, 1.0))


def _parent_death_signal() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has Linux SIGKILL the child when this process dies (even by SIGKILL); None elsewhere.

    This covers the direct child, a launcher script that runs none of the kit's code; the ranks below it watch
    for themselves (:func:`start_parent_watchdog`). Linux sends the signal when the *thread* that started the child
    ends, which cannot happen early here: that thread waits in :func:`run_streaming` until the child exits.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    # Resolved before the fork: between fork and exec only this small foreign call runs.
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # the parent died between fork and prctl: nobody would send the signal
            os._exit(1)

    return preexec


class _StoppedBySignal(SystemExit):
    """SIGTERM reached :func:`run_streaming`: leave like an unhandled SIGTERM would (status 128 + 15), but only after
    the child's group is gone, and through every ``finally`` and ``with`` on the way (the run folder's lock)."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


def _install_stop_handler() -> tuple[bool, Any, list[bool]]:
    """Turn SIGTERM into :class:`_StoppedBySignal` while the child runs (main thread only; Python allows no other).

    Returns (installed, previous handler, stopping flag). A SIGTERM the caller ignores stays ignored. Once
    cleanup has begun (flag set) a second SIGTERM is dropped, so it cannot cut the cleanup short.
    """
    stopping = [False]
    if threading.current_thread() is not threading.main_thread():
        return False, None, stopping
    previous = signal.getsignal(signal.SIGTERM)
    if previous == signal.SIG_IGN:
        return False, None, stopping

    def on_sigterm(signum: int, frame: Any) -> None:
        if not stopping[0]:
            stopping[0] = True
            raise _StoppedBySignal(signum)

    signal.signal(signal.SIGTERM, on_sigterm)
    return True, previous, stopping


def run_streaming(
    cmd: LaunchCommand,
    log_path: str | Path,
    *,
    cwd: str | Path | None = None,
    echo: Callable[[str], Any] | None = print,
) -> int:
    """Run ``cmd``, passing each output line (stdout and stderr merged) to ``echo`` and appending it to ``log_path``.

    Returns 0; a non-zero exit raises :class:`TrainingFailed` with the exit status and the last
    :data:`TAIL_LINES` lines of this run. The log is appended to (a resumed run keeps the earlier attempts), with
    a header line per start, and flushed per line so ``tail -f`` follows it. ``echo=None`` only logs.

    The child gets its own process group, and nothing of it outlives this call or this process:

    - on KeyboardInterrupt (the notebook's stop button, Ctrl-C), on SIGTERM (turned into ``SystemExit(143)`` while
      the child runs, on the main thread), or if ``echo`` raises, the whole group, launcher and ranks, gets
      SIGTERM and, after :data:`TERMINATE_GRACE_S`, SIGKILL, before the exception propagates;
    - if this process dies without cleaning up (SIGKILL, the OOM killer), Linux kills the direct child (a parent
      death signal), and every rank of ``python -m hadpo.train`` kills its own group within
      :data:`WATCHDOG_POLL_S` of noticing (:func:`start_parent_watchdog`; the child learns this process's PID from
      :data:`PARENT_PID_ENV`).
    """
    executable = cmd.argv[0]
    if os.sep in executable and not os.access(executable, os.X_OK):
        raise FileNotFoundError(
            f"launcher {executable} not found or not executable; is the package that provides it installed "
            "in this environment?"
        )
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)

    with log_path.open("a", encoding="utf-8") as log:
        log.write(f"### {time.strftime('%Y-%m-%d %H:%M:%S')} start: {cmd.shell()}\n")
        log.flush()
        proc = subprocess.Popen(
            cmd.argv,
            cwd=cwd,
            # Not part of cmd.env: a copy-pasted shell line must not carry this process's PID.
            env={**cmd.full_env(), PARENT_PID_ENV: str(os.getpid())},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            start_new_session=True,
            preexec_fn=_parent_death_signal(),
        )
        installed, previous, stopping = False, None, [False]
        try:
            # Inside the try: a SIGTERM from here on reaches the cleanup below.
            installed, previous, stopping = _install_stop_handler()
            assert proc.stdout is not None
            # Text mode splits on \r too, so progress-bar redraws arrive as separate lines.
            for raw in proc.stdout:
                line = raw.rstrip("\n")
                tail.append(line)
                log.write(line + "\n")
                log.flush()
                if echo is not None:
                    echo(line)
            returncode = proc.wait()
        except BaseException as exc:
            # KeyboardInterrupt (the notebook's stop button), SIGTERM or a failing echo: never leave ranks running.
            stopping[0] = True
            with _signals_deferred():
                _terminate_group(proc, TERMINATE_GRACE_S)
            what = signal.Signals(exc.signum).name if isinstance(exc, _StoppedBySignal) else type(exc).__name__
            log.write(f"### {what}; child process group terminated (status {proc.poll()})\n")
            raise
        finally:
            if installed:
                signal.signal(signal.SIGTERM, previous)
            if proc.stdout is not None:
                proc.stdout.close()
        log.write(f"### exit status {returncode}\n")

    if returncode != 0:
        raise TrainingFailed(returncode, log_path, list(tail))
    return returncode


@contextlib.contextmanager
def _signals_deferred() -> Any:
    """Ignore SIGINT during the block (main thread only): a second Ctrl-C must not cut the group's cleanup short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def start_parent_watchdog(poll_s: float = WATCHDOG_POLL_S) -> threading.Thread | None:
    """In the training child (every rank): end this process's group when the process that launched training dies.

    :func:`run_streaming` passes its PID in :data:`PARENT_PID_ENV`. A rank's own parent is usually a launcher
    (deepspeed, torchrun), so the check is on that PID itself, and also on this process's parent: a rank whose
    launcher died is reparented and stops too. When either is gone, the whole process group is SIGKILLed (under
    deepspeed, the launcher and every rank share it; under torchrun, each rank leads its own, which holds its
    workers). Does nothing (returns None) without the variable, e.g. for a command line started by hand.
    """
    raw = os.environ.get(PARENT_PID_ENV, "")
    if not raw.isdigit():
        return None
    parent, launcher = int(raw), os.getppid()
    try:
        # Only a group of our own is ours to kill; in the parent's group (an odd manual start) stop this process.
        own_group = os.getpgid(0) != os.getpgid(parent)
    except ProcessLookupError:
        own_group = True
    thread = threading.Thread(target=_watch_parent, args=(parent, launcher, own_group, poll_s),
                              name="hadpo-parent-watchdog", daemon=True)
    thread.start()
    return thread


def _watch_parent(parent: int, launcher: int, own_group: bool, poll_s: float) -> None:
    """The watchdog loop of :func:`start_parent_watchdog` (a daemon thread; it ends with the process)."""
    while os.getppid() == launcher and not _process_gone(parent):
        time.sleep(poll_s)
    # No message: the parent read our output, so stdout is now a pipe without a reader.
    if own_group:
        with contextlib.suppress(OSError):
            os.killpg(os.getpgid(0), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


# --- DeepSpeed configs --------------------------------------------------------------------------------------------

_BATCH_KEYS = ("train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "train_batch_size")
#: The DeepSpeed config block that switches each dtype on (float32: neither).
_DS_PRECISION_BLOCK: dict[str, str | None] = {"float32": None, "bfloat16": "bf16", "float16": "fp16"}
_HIDDEN_SIZE_KEYS = ("reduce_bucket_size", "stage3_prefetch_bucket_size", "stage3_param_persistence_threshold")


def _fill(cfg: dict[str, Any], key: str, value: Any, where: str, *, numeric: bool = False) -> None:
    """Set ``cfg[key]`` to ``value`` when missing or "auto"; an explicit different value is an error."""
    current = cfg.get(key, "auto")
    if current == "auto":
        cfg[key] = value
        return
    same = (
        isinstance(current, (int, float)) and not isinstance(current, bool) and math.isclose(current, value)
        if numeric
        else current == value
    )
    if not same:
        raise ParamsError(
            f"{where}: '{key}' is {current!r} but the trainer runs with {value!r}; set it to \"auto\" "
            "(the trainer's settings are the single source of truth)"
        )


def _find_auto(obj: Any, prefix: str = "") -> list[str]:
    """Dotted paths of every value still equal to "auto"."""
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in _find_auto(v, f"{prefix}{k}.")]
    return [prefix.rstrip(".")] if obj == "auto" else []


def resolve_deepspeed_config(
    path: str | Path,
    micro_batch: int,
    grad_accum: int,
    world_size: int,
    dtype: Dtype,
    grad_clip: float | None,
    *,
    hidden_size: int | None = None,
) -> dict[str, Any]:
    """Load a DeepSpeed JSON config and fill its "auto" fields from the trainer's settings.

    Filled (each may be "auto" or absent; an explicit value must agree with the trainer, else ParamsError):

    - ``train_micro_batch_size_per_gpu`` = ``micro_batch`` (preference pairs per rank per forward),
      ``gradient_accumulation_steps`` = ``grad_accum``,
      ``train_batch_size`` = micro_batch × grad_accum × world_size (DeepSpeed asserts this identity);
    - ``bf16.enabled`` / ``fp16.enabled`` from ``dtype`` ("bfloat16", "float16", or "float32" = both off);
    - ``gradient_clipping`` = ``grad_clip`` (None or 0 = off, DeepSpeed's 0.0).

    The ZeRO bucket fields ``reduce_bucket_size``, ``stage3_prefetch_bucket_size`` and
    ``stage3_param_persistence_threshold`` may be "auto" too. With ``hidden_size`` (the language model's, h) they
    get the sizes the Hugging Face integration derives: h², 0.9·h² and 10·h (for LLaVA-1.5-7B, h = 4096: 16.8 M,
    15.1 M and 40,960 elements). Without it they are dropped, so DeepSpeed's defaults (5e8, 5e7, 1e5) apply; on a
    tiny model that 1e5 threshold keeps every parameter unpartitioned. Any other "auto" left over is a ParamsError
    naming it.
    ``optimizer`` and ``scheduler`` blocks are refused: the trainer hands DeepSpeed a torch AdamW and its own
    schedule (a DeepSpeed optimizer would also JIT-compile C++ ops on first use).
    """
    path = Path(path)
    where = str(path)
    for name, value in (("micro_batch", micro_batch), ("grad_accum", grad_accum), ("world_size", world_size)):
        if not (isinstance(value, int) and value >= 1):
            raise ParamsError(f"{name} must be an integer >= 1, got {value!r}")
    if dtype not in _DS_PRECISION_BLOCK:
        raise ParamsError(f"dtype must be one of {list(_DS_PRECISION_BLOCK)}, got {dtype!r}")
    if grad_clip is not None and not grad_clip >= 0:
        raise ParamsError(f"grad_clip must be >= 0 or None, got {grad_clip!r}")

    cfg = read_json(path)
    if not isinstance(cfg, dict):
        raise ParamsError(f"{where}: expected a JSON object at the top level, got {type(cfg).__name__}")
    for block in ("optimizer", "scheduler"):
        if block in cfg:
            raise ParamsError(
                f"{where}: remove the '{block}' block; the trainer creates the optimizer (torch AdamW) and the "
                "learning-rate schedule itself"
            )

    _fill(cfg, "train_micro_batch_size_per_gpu", micro_batch, where)
    _fill(cfg, "gradient_accumulation_steps", grad_accum, where)
    _fill(cfg, "train_batch_size", micro_batch * grad_accum * world_size, where)
    _fill(cfg, "gradient_clipping", float(grad_clip or 0.0), where, numeric=True)
    for block in ("bf16", "fp16"):
        enabled = _DS_PRECISION_BLOCK[dtype] == block
        section = cfg.get(block)
        if section is None:
            if enabled:
                cfg[block] = {"enabled": True}
            continue
        if not isinstance(section, dict):
            raise ParamsError(f"{where}: '{block}' must be an object, got {section!r}")
        _fill(section, "enabled", enabled, f"{where}: {block}")

    zero = cfg.get("zero_optimization")
    if isinstance(zero, dict):
        if hidden_size is not None and not (isinstance(hidden_size, int) and hidden_size >= 1):
            raise ParamsError(f"hidden_size must be an integer >= 1, got {hidden_size!r}")
        derived = {
            "reduce_bucket_size": (hidden_size or 0) ** 2,
            "stage3_prefetch_bucket_size": int(0.9 * (hidden_size or 0) ** 2),
            "stage3_param_persistence_threshold": 10 * (hidden_size or 0),
        }
        for key in _HIDDEN_SIZE_KEYS:
            if zero.get(key) == "auto":
                if hidden_size is None:
                    del zero[key]  # DeepSpeed's own default applies
                else:
                    zero[key] = derived[key]

    left = _find_auto(cfg)
    if left:
        raise ParamsError(f'{where}: no value for "auto" field(s) {", ".join(left)}')
    return cfg
