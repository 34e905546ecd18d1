"""Launcher command lines (exact argv), free ports, the streaming child runner, and DeepSpeed config resolution."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hadpo.distributed import free_port
from hadpo.errors import DataError, ParamsError
from hadpo.specs import LaunchSpec
from hadpo.train.launch import (
    TAIL_LINES,
    LaunchCommand,
    TrainingFailed,
    build_launch_command,
    resolve_deepspeed_config,
    run_streaming,
)

REPO = Path(__file__).resolve().parents[2]
ZERO2 = REPO / "params" / "deepspeed" / "zero2.json"
ZERO3 = REPO / "params" / "deepspeed" / "zero3.json"
PY = "/opt/venv/bin/python"
ARGS = ["--config", "runs/x/train_config.json"]


def build(python: str = PY, *, module: str = "hadpo.train", cpu: bool = False, env: dict[str, str] | None = None,
          **fields: Any) -> LaunchCommand:
    """Build the command for a spec given as keyword fields, with a fixed interpreter path."""
    return build_launch_command(LaunchSpec.from_dict(fields), module=module, args=ARGS, cpu=cpu, env=env,
                                python=python)


# --- argv and env ---------------------------------------------------------------------------------------------------


def test_deepspeed_single_node() -> None:
    """deepspeed --num_gpus N --master_port P --module hadpo.train ARGS, the script taken next to the interpreter."""
    cmd = build(launcher="deepspeed", num_gpus=8, master_port=29555)
    assert cmd.argv == [
        "/opt/venv/bin/deepspeed", "--num_gpus", "8", "--master_port", "29555", "--module", "hadpo.train", *ARGS,
    ]  # fmt: skip
    assert cmd.env == {"PYTHONUNBUFFERED": "1"}


def test_deepspeed_multi_node() -> None:
    """Several nodes: --num_nodes and --hostfile, and an explicit master address."""
    cmd = build(num_gpus=8, num_nodes=2, hostfile="/etc/hadpo/hosts.txt", master_addr="10.0.0.1", master_port=29600)
    assert cmd.argv == [
        "/opt/venv/bin/deepspeed", "--hostfile", "/etc/hadpo/hosts.txt", "--num_gpus", "8", "--num_nodes", "2",
        "--master_addr", "10.0.0.1", "--master_port", "29600", "--module", "hadpo.train", *ARGS,
    ]  # fmt: skip


@pytest.mark.parametrize(("option", "value"), [("include", "localhost:0,2"), ("exclude", "localhost:1")])
def test_deepspeed_resource_filter_replaces_num_gpus(option: str, value: str) -> None:
    """DeepSpeed refuses --num_gpus/--num_nodes together with --include/--exclude, so only the filter is passed."""
    cmd = build(num_gpus=4, master_port=29501, module="my.entry", **{option: value})
    assert cmd.argv == [
        "/opt/venv/bin/deepspeed", f"--{option}", value, "--master_port", "29501", "--module", "my.entry", *ARGS,
    ]  # fmt: skip


def test_torchrun_single_and_multi_node() -> None:
    """torchrun --nproc_per_node N --nnodes M [--node_rank R --master_addr A] --master_port P -m MODULE ARGS."""
    single = build(launcher="torchrun", num_gpus=2, master_port=29502)
    assert single.argv == [
        "/opt/venv/bin/torchrun", "--nproc_per_node", "2", "--nnodes", "1", "--master_port", "29502",
        "-m", "hadpo.train", *ARGS,
    ]  # fmt: skip
    multi = build(launcher="torchrun", num_gpus=4, num_nodes=3, node_rank=2, master_addr="node0", master_port=29503)
    assert multi.argv == [
        "/opt/venv/bin/torchrun", "--nproc_per_node", "4", "--nnodes", "3", "--node_rank", "2",
        "--master_addr", "node0", "--master_port", "29503", "-m", "hadpo.train", *ARGS,
    ]  # fmt: skip


def test_python_sets_single_rank_env() -> None:
    """python -m MODULE ARGS, with the rank variables a launcher would set so DeepSpeed needs no MPI discovery."""
    cmd = build(launcher="python", master_port=29504)
    assert cmd.argv == [PY, "-m", "hadpo.train", *ARGS]
    assert cmd.env == {
        "PYTHONUNBUFFERED": "1",
        "RANK": "0",
        "LOCAL_RANK": "0",
        "WORLD_SIZE": "1",
        "LOCAL_WORLD_SIZE": "1",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": "29504",
    }


def test_cpu_env_and_overrides() -> None:
    """cpu=True sets DS_ACCELERATOR=cpu, and OMP_NUM_THREADS=1 only with several ranks per node; env wins."""
    two = build(num_gpus=2, cpu=True, master_port=29505)
    assert two.env == {"PYTHONUNBUFFERED": "1", "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1"}
    one = build(num_gpus=1, cpu=True, master_port=29505)
    assert one.env == {"PYTHONUNBUFFERED": "1", "DS_ACCELERATOR": "cpu"}
    custom = build(num_gpus=2, cpu=True, master_port=29505, env={"OMP_NUM_THREADS": "4", "WANDB_MODE": "offline"})
    assert custom.env["OMP_NUM_THREADS"] == "4"
    assert custom.env["WANDB_MODE"] == "offline"
    assert custom.full_env({"PATH": "/bin"}) == {"PATH": "/bin", **custom.env}


def test_default_interpreter_and_free_port() -> None:
    """Without python=, the launcher script sits next to sys.executable (it exists in the kit's venv), and a
    missing master_port becomes a free, bindable port."""
    cmd = build_launch_command(LaunchSpec(launcher="torchrun", num_gpus=1), module="hadpo.train")
    assert cmd.argv[0] == str(Path(sys.executable).parent / "torchrun")
    assert Path(cmd.argv[0]).is_file()
    port = int(cmd.argv[cmd.argv.index("--master_port") + 1])
    assert 1 <= port <= 65535
    with socket.socket() as sock:
        sock.bind(("", port))


def test_shell_line_quotes() -> None:
    """The copy-pasteable form puts env assignments first and quotes arguments with spaces."""
    cmd = LaunchCommand(argv=["python", "-m", "m", "a b"], env={"X": "1"})
    assert cmd.shell() == "X=1 python -m m 'a b'"


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"launcher": "python", "num_gpus": 2}, "launcher 'python' runs one process"),
        ({"include": "localhost:0", "exclude": "localhost:1"}, "exclude each other"),
        ({"num_nodes": 2, "hostfile": "h"}, "a 2-node run needs master_port"),
        ({"num_nodes": 2, "master_port": 1234}, "needs a hostfile"),
        ({"launcher": "torchrun", "num_nodes": 2, "master_port": 1234}, "needs master_addr"),
        ({"launcher": "torchrun", "hostfile": "h"}, "deepspeed options"),
        ({"num_gpus": 0}, "'num_gpus' must be >= 1, got 0"),
        ({"node_rank": 1}, "'node_rank' must be in [0, 1), got 1"),
        ({"launcher": "accelerate"}, "'accelerate'"),
        ({"gpus": 2}, "unknown parameter(s) 'gpus'"),
    ],
)
def test_bad_specs_are_rejected(fields: dict[str, Any], fragment: str) -> None:
    """Inconsistent launch settings fail before anything starts, with a message naming the setting."""
    with pytest.raises(ParamsError) as info:
        LaunchSpec.from_dict(fields)
    assert fragment in str(info.value)


def test_free_port_is_bindable() -> None:
    """The returned port can be bound right away."""
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))


def test_module_does_not_import_torch() -> None:
    """The parent (notebook kernel, CLI) must never initialise torch/CUDA just to launch training."""
    code = "import sys, hadpo.train.launch; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "False"


# --- run_streaming --------------------------------------------------------------------------------------------------


def py_child(code: str, env: dict[str, str] | None = None) -> LaunchCommand:
    """A command running ``code`` in this interpreter, unbuffered like a launched trainer."""
    return LaunchCommand(argv=[sys.executable, "-c", code], env={"PYTHONUNBUFFERED": "1", **(env or {})})


def test_run_streaming_echoes_and_logs(tmp_path: Path) -> None:
    """stdout and stderr lines reach echo in order and are appended to the log (which gains a header per start)."""
    seen: list[str] = []
    code = "import sys; print('step 1'); sys.stderr.write('warning: x\\n'); sys.stderr.flush(); print('step 2')"
    log = tmp_path / "logs" / "train.log"
    assert run_streaming(py_child(code), log, echo=seen.append) == 0
    assert seen == ["step 1", "warning: x", "step 2"]
    text = log.read_text()
    assert "step 1\nwarning: x\nstep 2\n" in text
    assert text.startswith("### ") and text.rstrip().endswith("### exit status 0")
    run_streaming(py_child("print('again')"), log, echo=None)
    assert log.read_text().startswith(text)
    assert "again\n" in log.read_text()


def test_run_streaming_env_and_cwd_pass_through(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The child inherits the parent's environment plus the command's variables, and runs in cwd."""
    monkeypatch.setenv("HADPO_PARENT_VAR", "from-parent")
    code = "import os; print(os.environ['HADPO_PARENT_VAR'], os.environ['HADPO_CHILD_VAR'], os.getcwd())"
    seen: list[str] = []
    run_streaming(py_child(code, {"HADPO_CHILD_VAR": "from-cmd"}), tmp_path / "t.log", cwd=tmp_path, echo=seen.append)
    assert seen == [f"from-parent from-cmd {tmp_path.resolve()}"]


def test_run_streaming_failure_quotes_the_tail(tmp_path: Path) -> None:
    """A non-zero exit raises TrainingFailed with the code and only the last TAIL_LINES lines of output."""
    code = "import sys\nfor i in range(100): print(f'line {i}')\nsys.exit(3)"
    with pytest.raises(TrainingFailed) as info:
        run_streaming(py_child(code), tmp_path / "t.log", echo=None)
    err = info.value
    assert err.returncode == 3
    assert err.tail == [f"line {i}" for i in range(100 - TAIL_LINES, 100)]
    message = str(err)
    assert "exited with code 3" in message and str(tmp_path / "t.log") in message
    assert "line 99" in message and "line 59" not in message
    assert "line 0\n" in (tmp_path / "t.log").read_text()


def test_run_streaming_reports_a_signal(tmp_path: Path) -> None:
    """A child killed by a signal (e.g. the OOM killer) is reported by signal name."""
    code = "import os, signal; print('loading'); os.kill(os.getpid(), signal.SIGKILL)"
    with pytest.raises(TrainingFailed, match="killed by SIGKILL") as info:
        run_streaming(py_child(code), tmp_path / "t.log", echo=None)
    assert info.value.tail == ["loading"]


def test_run_streaming_missing_launcher(tmp_path: Path) -> None:
    """A launcher script that is not installed is a clear FileNotFoundError, not a bare OSError from exec."""
    with pytest.raises(FileNotFoundError, match="not found or not executable"):
        run_streaming(LaunchCommand(argv=[str(tmp_path / "deepspeed")], env={}), tmp_path / "t.log")


def _gone(pid: int) -> bool:
    """True once ``pid`` no longer runs (absent, or a zombie awaiting its reaper)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to inspect processes")
def test_interrupt_terminates_the_process_group(tmp_path: Path) -> None:
    """On KeyboardInterrupt the child and the processes it started (a launcher's ranks) are all terminated."""
    code = (
        "import subprocess, sys, time\n"
        "rank = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        "print('pids', rank.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    pids: list[int] = []

    def echo(line: str) -> None:
        pids.append(int(line.split()[1]))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_streaming(py_child(code), tmp_path / "t.log", echo=echo)
    assert len(pids) == 1
    deadline = time.monotonic() + 30  # a wait for the OS to reap the orphaned rank, not a speed requirement
    while not _gone(pids[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(pids[0])
    assert "KeyboardInterrupt; child process group terminated" in (tmp_path / "t.log").read_text()


# --- DeepSpeed configs ----------------------------------------------------------------------------------------------


def test_zero2_resolved_from_trainer_settings() -> None:
    """Batch fields come from the trainer: 4 pairs x 2 accumulation x 8 ranks = 64; bf16 on, fp16 off; clip 1.0."""
    cfg = resolve_deepspeed_config(ZERO2, 4, 2, 8, "bfloat16", 1.0)
    assert cfg["train_micro_batch_size_per_gpu"] == 4
    assert cfg["gradient_accumulation_steps"] == 2
    assert cfg["train_batch_size"] == 64
    assert cfg["bf16"] == {"enabled": True}
    assert cfg["fp16"]["enabled"] is False
    assert cfg["gradient_clipping"] == 1.0
    assert cfg["zero_optimization"]["stage"] == 2
    assert "optimizer" not in cfg and "scheduler" not in cfg
    assert "auto" not in json.dumps(cfg)


def test_zero3_bucket_sizes_from_hidden_size() -> None:
    """With hidden size 4096 (LLaVA-1.5-7B): reduce 4096^2 = 16,777,216; prefetch int(0.9 * 4096^2) = 15,099,494;
    persistence 10 * 4096 = 40,960. Without it they are dropped so DeepSpeed's defaults apply."""
    cfg = resolve_deepspeed_config(ZERO3, 16, 1, 8, "bfloat16", None, hidden_size=4096)
    zero = cfg["zero_optimization"]
    assert zero["stage"] == 3
    assert zero["stage3_gather_16bit_weights_on_model_save"] is True
    assert zero["reduce_bucket_size"] == 16_777_216
    assert zero["stage3_prefetch_bucket_size"] == 15_099_494
    assert zero["stage3_param_persistence_threshold"] == 40_960
    assert cfg["train_batch_size"] == 128
    assert cfg["gradient_clipping"] == 0.0
    bare = resolve_deepspeed_config(ZERO3, 1, 1, 1, "float32", 0.0)["zero_optimization"]
    assert not {"reduce_bucket_size", "stage3_prefetch_bucket_size", "stage3_param_persistence_threshold"} & set(bare)
    assert "auto" not in json.dumps(bare)


def test_precision_fills_and_adds_blocks(tmp_path: Path) -> None:
    """fp32 disables both blocks; a missing block is added only when its precision is chosen."""
    cfg = resolve_deepspeed_config(ZERO2, 1, 1, 1, "float32", None)
    assert cfg["bf16"]["enabled"] is False and cfg["fp16"]["enabled"] is False
    path = tmp_path / "ds.json"
    path.write_text(json.dumps({"zero_optimization": {"stage": 0}}))
    assert resolve_deepspeed_config(path, 1, 1, 1, "float16", None)["fp16"] == {"enabled": True}
    assert "bfloat16" not in resolve_deepspeed_config(path, 1, 1, 1, "float16", None)


def test_explicit_values_must_agree(tmp_path: Path) -> None:
    """An explicit value equal to the trainer's is kept; a different one names the file and the key."""
    path = tmp_path / "ds.json"
    path.write_text(json.dumps({"train_micro_batch_size_per_gpu": 2, "train_batch_size": 8, "gradient_clipping": 1}))
    assert resolve_deepspeed_config(path, 2, 2, 2, "float32", 1.0)["train_batch_size"] == 8
    with pytest.raises(ParamsError) as info:
        resolve_deepspeed_config(path, 2, 1, 2, "float32", 1.0)
    assert str(path) in str(info.value) and "'train_batch_size' is 8" in str(info.value)
    path.write_text(json.dumps({"bf16": {"enabled": True}}))
    with pytest.raises(ParamsError, match="bf16: 'enabled' is True"):
        resolve_deepspeed_config(path, 1, 1, 1, "float16", None)


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"optimizer": {"type": "AdamW"}}, "remove the 'optimizer' block"),
        ({"scheduler": {"type": "WarmupLR"}}, "remove the 'scheduler' block"),
        ({"zero_optimization": {"stage": 3, "sub_group_size": "auto"}}, "zero_optimization.sub_group_size"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_unsupported_configs(tmp_path: Path, config: Any, fragment: str) -> None:
    """Blocks the trainer owns, and "auto" fields nothing can fill, are errors naming the file."""
    path = tmp_path / "ds.json"
    path.write_text(json.dumps(config))
    with pytest.raises(ParamsError) as info:
        resolve_deepspeed_config(path, 1, 1, 1, "bfloat16", 1.0)
    assert fragment in str(info.value) and str(path) in str(info.value)


def test_bad_arguments_and_files(tmp_path: Path) -> None:
    """Out-of-range trainer settings are ParamsError; malformed JSON is a DataError naming the file."""
    with pytest.raises(ParamsError, match="micro_batch must be an integer >= 1, got 0"):
        resolve_deepspeed_config(ZERO2, 0, 1, 1, "bfloat16", 1.0)
    with pytest.raises(ParamsError, match="'fp8'"):
        resolve_deepspeed_config(ZERO2, 1, 1, 1, "fp8", 1.0)  # type: ignore[arg-type]
    with pytest.raises(ParamsError, match="grad_clip must be >= 0"):
        resolve_deepspeed_config(ZERO2, 1, 1, 1, "bfloat16", -1.0)
    broken = tmp_path / "broken.json"
    broken.write_text('{"train_batch_size": ')
    with pytest.raises(DataError, match=r"broken\.json"):
        resolve_deepspeed_config(broken, 1, 1, 1, "bfloat16", 1.0)


def test_shipped_files_keep_auto_on_disk() -> None:
    """Resolving returns a new dict; the shipped files keep "auto" so any trainer setting can fill them."""
    before = ZERO3.read_bytes()
    resolve_deepspeed_config(ZERO3, 2, 2, 2, "bfloat16", 1.0, hidden_size=64)
    assert ZERO3.read_bytes() == before
    assert json.loads(before)["train_micro_batch_size_per_gpu"] == "auto"


def test_process_environment_untouched() -> None:
    """Building a command never changes the parent's own environment."""
    before = dict(os.environ)
    build(launcher="python", cpu=True, env={"HADPO_X": "1"}, master_port=29506)
    assert dict(os.environ) == before


def _readme_commands(fragment: str) -> list[list[str]]:
    """The README's command lines (in backquotes) that contain ``fragment``, split as a shell would."""
    import re
    import shlex

    text = (REPO / "README.md").read_text()
    return [shlex.split(cmd) for cmd in re.findall(r"`([^`\n]+)`", text) if fragment in cmd]


def test_the_readme_multi_node_commands_build_their_launch_lines() -> None:
    """The README's two multi-node commands, as written, give a deepspeed and a torchrun command line that reach
    the other node (hostfile, master address and port; node rank)."""
    from hadpo.overrides import parse_value
    from hadpo.train.config import TrainConfig
    from hadpo.train.stage import launch_command

    commands = _readme_commands("-p num_nodes 2")
    assert len(commands) == 2
    argvs = {}
    for argv in commands:
        files = [argv[i + 1] for i, a in enumerate(argv) if a == "-f"]
        values = {argv[i + 1]: argv[i + 2] for i, a in enumerate(argv) if a == "-p"}
        cfg = TrainConfig.from_sources([REPO / f for f in files], {k: parse_value(v) for k, v in values.items()})
        cmd = launch_command(cfg)
        argvs[cfg.launch_spec.launcher] = cmd.argv
    deepspeed, torchrun = argvs["deepspeed"], argvs["torchrun"]
    hostfile = deepspeed[deepspeed.index("--hostfile") + 1]
    assert hostfile == str(REPO / "hostfile")
    assert deepspeed[deepspeed.index("--num_gpus"):deepspeed.index("--module")] == [
        "--num_gpus", "8", "--num_nodes", "2", "--master_addr", "node1", "--master_port", "29500"]
    assert torchrun[torchrun.index("--nproc_per_node"):torchrun.index("-m")] == [
        "--nproc_per_node", "8", "--nnodes", "2", "--node_rank", "0", "--master_addr", "node1",
        "--master_port", "29500"]
