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
import math
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hadpo.distributed import free_port
from hadpo.errors import HadpoError, ParamsError
from hadpo.io import read_json
from hadpo.specs import Dtype, LaunchSpec

#: how many of the child's last output lines a :class:`TrainingFailed` message quotes.
TAIL_LINES = 40
#: seconds the child's process group gets to exit after SIGTERM before it is killed.
TERMINATE_GRACE_S = 10.0


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
        super().__init__(f"training {status}; full log: {self.log_path}\n--- last {len(self.tail)} lines ---\n{body}")


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


def _terminate_group(proc: subprocess.Popen[str], grace_s: float) -> None:
    """SIGTERM the child's whole process group (launcher and ranks), then SIGKILL whatever outlives ``grace_s``."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, grace_s)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


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
    a header line per start, and flushed per line so ``tail -f`` follows it. The child gets its own process group:
    on KeyboardInterrupt (the notebook's stop button) the whole group, launcher and ranks, is terminated before
    the interrupt propagates (likewise if ``echo`` raises). ``echo=None`` only logs.
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
            env=cmd.full_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            start_new_session=True,
        )
        try:
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
            # KeyboardInterrupt (the notebook's stop button) or a failing echo: never leave ranks running unseen.
            _terminate_group(proc, TERMINATE_GRACE_S)
            log.write(f"### {type(exc).__name__}; child process group terminated (status {proc.poll()})\n")
            raise
        finally:
            if proc.stdout is not None:
                proc.stdout.close()
        log.write(f"### exit status {returncode}\n")

    if returncode != 0:
        raise TrainingFailed(returncode, log_path, list(tail))
    return returncode


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
