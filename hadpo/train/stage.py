"""Stage 02, training: write the run's config, start the child through the chosen launcher, stream it.

Used by notebook 02 and ``hadpo train``. Nothing here imports torch, so the notebook kernel never
initialises CUDA; the child (``python -m hadpo.train --config <run>/train_config.json``) does the work.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hadpo.errors import ParamsError
from hadpo.io import atomic_write_json, read_json
from hadpo.rerun import set_aside
from hadpo.runlock import run_lock
from hadpo.specs import RerunSpec
from hadpo.train.checkpoint import LATEST
from hadpo.train.config import TrainConfig
from hadpo.train.launch import LaunchCommand, build_launch_command, run_streaming

NOTEBOOK = "02_train"
Config = TrainConfig

CONFIG_FILE = "train_config.json"
LOG_FILE = "train.log"
DONE_FILE = "train_done.json"
#: The full model folder ``save_merged`` writes: the trained model with its adapter merged in.
POLICY_DIR = "policy"


def launch_command(cfg: TrainConfig) -> LaunchCommand:
    """The exact child command for ``cfg`` (a pure function of the config, apart from a free port)."""
    device = cfg.model_spec.device
    return build_launch_command(
        cfg.launch_spec, module="hadpo.train", args=["--config", str(Path(cfg.output_dir) / CONFIG_FILE)],
        cpu=device == "cpu" or (device == "auto" and not _has_cuda_hint()),
    )


def _has_cuda_hint() -> bool:
    # Decide without importing torch (which would initialise CUDA in the kernel): a visible NVIDIA device node.
    return Path("/dev/nvidia0").exists() or Path("/dev/nvidiactl").exists()


def holds_progress(out: Path) -> bool:
    """Whether a run folder holds results of training: a checkpoint, a metrics line or a finished run."""
    metrics = out / "metrics.jsonl"
    return ((out / "checkpoints" / LATEST).is_file() or (out / DONE_FILE).is_file()
            or (metrics.is_file() and metrics.stat().st_size > 0))


def recorded_config(cfg: TrainConfig) -> dict[str, Any]:
    """What ``train_config.json`` holds for ``cfg`` (the child reads it; a rerun must match it): every key but
    ``force``, so a forced run and the ordinary reruns after it are the same run."""
    return RerunSpec.unrecorded(cfg.to_dict())


def _written_config(path: Path) -> dict[str, Any]:
    # A key the kit added after the run was written reads as its default, which keeps the earlier behaviour:
    # a run folder stays the same run across a kit upgrade (a new loss term, off by default, changes nothing).
    return RerunSpec.unrecorded({**TrainConfig.defaults(), **read_json(path)})


def finished(cfg: TrainConfig) -> dict[str, Any] | None:
    """The summary of a finished run with the same config, or None (a changed config trains again)."""
    out = Path(cfg.output_dir)
    done, written = out / DONE_FILE, out / CONFIG_FILE
    if done.is_file() and written.is_file() and _written_config(written) == recorded_config(cfg):
        return read_json(done)
    return None


def launch_training(cfg: TrainConfig, *, echo: Callable[[str], Any] | None = print) -> dict:
    """Train in a child process and return its summary; a finished run with the same config is skipped.

    A killed run resumes from its last checkpoint when launched again with the same config. With ``cfg.rerun.force``
    everything in the run folder (a finished run, a killed one, or another config's) is first moved into
    ``replaced-<UTC time>/`` there (:func:`hadpo.rerun.set_aside`) and training starts from step 0. A non-zero exit
    raises :class:`hadpo.train.launch.TrainingFailed` quoting the end of the log.
    The run folder is locked for the whole call: a second run on it raises :class:`hadpo.errors.RunFolderBusy`.
    """
    out = Path(cfg.output_dir)
    # One writer per run folder, held while the child runs (the child itself never takes it); a second run stops here.
    with run_lock(out, what="training"):
        if cfg.rerun.force:
            set_aside(out, log=echo)
        elif (summary := finished(cfg)) is not None:
            if echo is not None:
                echo(f"[hadpo] {out} already trained with this config; skipping (force: true retrains)")
            return _with_policy(cfg, summary, echo)
        written = out / CONFIG_FILE
        if written.is_file() and _written_config(written) != recorded_config(cfg) and holds_progress(out):
            # A different config must not resume another run's checkpoints; a config left by a run that died before
            # its first step (a typo'd model path, say) guards nothing and is replaced.
            raise ParamsError(
                f"{out} holds a run with a different config ({written}); choose another output_dir or delete it"
            )
        atomic_write_json(written, recorded_config(cfg))
        cmd = launch_command(cfg)
        if echo is not None:
            echo(f"[hadpo] {cmd.shell()}")
        run_streaming(cmd, out / LOG_FILE, echo=echo)
        return _with_policy(cfg, read_json(out / DONE_FILE), echo)


def merge_command(cfg: TrainConfig) -> LaunchCommand:
    """The child that writes ``<output_dir>/policy/``: the trained adapter merged into the model it was trained on."""
    # The saved adapter sits on spec.model: a new LoRA, or a continued (unmerged) adapter; a merged one is refused
    # by TrainConfig.validate, since no folder holds the model under it.
    spec, out = cfg.model_spec, Path(cfg.output_dir)
    return LaunchCommand(
        argv=[sys.executable, "-m", "hadpo.models.merge", "--model", spec.model, "--adapter", str(out / "adapter"),
              "--out", str(out / POLICY_DIR), "--dtype", spec.dtype, "--device", spec.device],
        env={})


def _with_policy(cfg: TrainConfig, summary: dict[str, Any], echo: Callable[[str], Any] | None) -> dict[str, Any]:
    """With ``save_merged``, write the merged model folder (a child process; kept when already written)."""
    if not cfg.save_merged:
        return summary
    cmd = merge_command(cfg)
    if echo is not None:
        echo(f"[hadpo] {cmd.shell()}")
    run_streaming(cmd, Path(cfg.output_dir) / "merge.log", echo=echo)
    return {**summary, POLICY_DIR: str(Path(cfg.output_dir) / POLICY_DIR)}


#: The stage's entry point (notebook 02): :func:`launch_training`.
run = launch_training


def summary_table(summary: dict[str, Any]):
    """A finished run's summary (what :func:`launch_training` returns) as a one-row table: steps and examples as
    counts, the time, the peak GPU memory, and what the run wrote (adapter or model folder)."""
    from hadpo.display import shown_value, table
    from hadpo.progress import format_duration

    known = {"steps", "examples", "world_size", "seconds", "peak_gpu_memory_gb", "projector_trained"}
    row: dict[str, Any] = {"Steps": summary.get("steps"), "Examples": summary.get("examples"),
                           "Processes": summary.get("world_size"),
                           "Time": format_duration(float(summary.get("seconds") or 0.0)),
                           "Peak GPU memory (GB)": summary.get("peak_gpu_memory_gb")}
    if "projector_trained" in summary:
        row["Projector"] = "trained" if summary["projector_trained"] else "frozen"
    # What the objective saved ("adapter", "model", or a registered objective's own keys).
    row.update({f"Output: {key}": shown_value(value) for key, value in summary.items() if key not in known})
    return table([row], formats={"Peak GPU memory (GB)": "{:.2f}"})
