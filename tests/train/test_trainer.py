"""The trainer end to end: SFT and DPO, DeepSpeed ZeRO-2/3 with 2 processes on CPU, resume after a kill."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml

from hadpo.distributed import DistContext
from hadpo.errors import DataError, ParamsError
from hadpo.io import read_jsonl
from hadpo.models.loading import load_model
from hadpo.specs import ModelSpec
from hadpo.train.config import TrainConfig
from hadpo.train.launch import TrainingFailed
from hadpo.train.stage import CONFIG_FILE, holds_progress, launch_command, launch_training

CPU = DistContext(rank=0, local_rank=0, world_size=1, device="cpu")


def _dpo(tmp_path: Path, model: Path, data: Path, **overrides) -> TrainConfig:
    base = dict(objective="dpo", model=str(model), data_root=str(data), output_dir=str(tmp_path / "run"),
                template="vicuna_v1", per_device_batch_size=2, learning_rate=5e-3, max_steps=4, save_steps=2,
                launcher="python", deepspeed_config=None, device="cpu", lora_r=4, lora_alpha=8)
    return TrainConfig.from_dict({**base, **overrides})


def _safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


@pytest.mark.slow
@pytest.mark.parametrize(("zero", "procs"), [("zero2", 2), ("zero3", 2)])
def test_dpo_under_deepspeed(tmp_path, tiny_model_dir, train_world, zero, procs) -> None:
    """The real launcher with 2 ranks over gloo: the first loss is ln 2 (policy == reference), the adapter
    loads back onto the base and changes its outputs, and every TRL-style metric is logged."""
    cfg = _dpo(tmp_path, tiny_model_dir, train_world, launcher="deepspeed", num_gpus=procs,
               deepspeed_config=f"params/deepspeed/{zero}.json", max_steps=3, save_steps=100)
    lines: list[str] = []
    summary = launch_training(cfg, echo=lines.append)
    assert summary["world_size"] == procs and summary["steps"] == 3
    metrics = read_jsonl(Path(cfg.output_dir) / "metrics.jsonl")
    assert [m["step"] for m in metrics] == [1, 2, 3]
    assert metrics[0]["loss"] == pytest.approx(math.log(2), abs=1e-6)
    for key in ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen",
                "logps/rejected", "grad_norm", "learning_rate", "perf/seconds_per_step", "perf/pairs_per_second",
                "perf/tokens_per_second"):
        assert key in metrics[-1]
    # Throughput counts every rank: pairs per step over the step's seconds, and the packed rows' real tokens.
    per_step = metrics[-1]["perf/seconds_per_step"]
    assert metrics[-1]["perf/pairs_per_second"] == pytest.approx(2 * procs / per_step, rel=1e-6)
    assert metrics[-1]["perf/tokens_per_second"] > metrics[-1]["perf/pairs_per_second"] * 9  # 9 image tokens a row
    adapter = Path(cfg.output_dir) / "adapter"
    assert (adapter / "adapter_config.json").is_file() and (adapter / "multi_modal_projector.safetensors").is_file()
    tuned = load_model(ModelSpec(model=str(tiny_model_dir), adapter=str(adapter), device="cpu"))
    base = load_model(ModelSpec(model=str(tiny_model_dir), device="cpu"))
    ids = torch.tensor([[1, 5, 6, 7]])
    assert not torch.allclose(tuned.model(input_ids=ids).logits, base.model(input_ids=ids).logits)


@pytest.mark.slow
@pytest.mark.parametrize(("launcher", "zero"), [("python", None), ("deepspeed", "zero3")])
def test_resume_after_kill_matches_uninterrupted(tmp_path, tiny_model_dir, train_world, launcher, zero) -> None:
    """Killed after a checkpoint, a rerun resumes and ends with the same adapter and metrics as a run that was
    never interrupted; a checkpoint holds what trains, not the frozen model."""
    extra = dict(launcher=launcher, deepspeed_config=f"params/deepspeed/{zero}.json" if zero else None, max_steps=6)
    clean = _dpo(tmp_path / "a", tiny_model_dir, train_world, **extra)
    launch_training(clean, echo=None)

    killed = _dpo(tmp_path / "b", tiny_model_dir, train_world, **extra)
    out = Path(killed.output_dir)
    out.mkdir(parents=True)
    (out / CONFIG_FILE).write_text(__import__("json").dumps(killed.to_dict()))
    cmd = launch_command(killed)
    proc = subprocess.Popen(cmd.argv, env=cmd.full_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    latest = out / "checkpoints" / "latest"
    deadline = time.time() + 180
    while time.time() < deadline and not (latest.is_file() and "step-0000004" in latest.read_text()):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "train_done.json").exists(), "the run finished before it could be killed"
    trainable = _checkpointed_tensors(out / "checkpoints" / "step-0000004")
    assert trainable and all("lora_" in n or "multi_modal_projector" in n for n in trainable), trainable
    launch_training(killed, echo=None)

    a = _safetensors(Path(clean.output_dir) / "adapter" / "adapter_model.safetensors")
    b = _safetensors(out / "adapter" / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)
    ma, mb = read_jsonl(Path(clean.output_dir) / "metrics.jsonl"), read_jsonl(out / "metrics.jsonl")
    assert [m["step"] for m in mb] == list(range(1, 7))
    for x, y in zip(ma, mb, strict=True):
        assert x["loss"] == pytest.approx(y["loss"], abs=1e-6)


def _checkpointed_tensors(folder: Path) -> list[str]:
    """Names of the model tensors a checkpoint folder holds (the kit's state.pt, or DeepSpeed's model states)."""
    if (folder / "state.pt").is_file():
        return list(torch.load(folder / "state.pt", weights_only=False)["model"])
    (states,) = folder.glob("*model_states.pt")
    return list(torch.load(states, weights_only=False)["module"])


def test_finished_run_is_skipped_and_changed_config_refused(tmp_path, tiny_model_dir, train_world) -> None:
    cfg = _dpo(tmp_path, tiny_model_dir, train_world, max_steps=1)
    launch_training(cfg, echo=None)
    lines: list[str] = []
    launch_training(cfg, echo=lines.append)
    assert any("skipping" in line for line in lines)
    with pytest.raises(ParamsError, match="different config"):
        launch_training(cfg.replace(learning_rate=1e-3), echo=None)


def test_config_of_a_run_that_never_stepped_does_not_block(tmp_path, tiny_model_dir, train_world) -> None:
    typo = _dpo(tmp_path, tiny_model_dir, train_world, max_steps=1).replace(model=str(tmp_path / "no-such-model"))
    with pytest.raises(TrainingFailed):
        launch_training(typo, echo=None)
    assert not holds_progress(Path(typo.output_dir))
    fixed = typo.replace(model=str(tiny_model_dir))
    assert launch_training(fixed, echo=None)["steps"] == 1


def test_force_trains_again_from_step_0_and_keeps_the_earlier_run(tmp_path, tiny_model_dir, train_world) -> None:
    cfg = _dpo(tmp_path, tiny_model_dir, train_world, max_steps=2, save_steps=1)
    launch_training(cfg, echo=None)
    out = Path(cfg.output_dir)
    adapter = (out / "adapter" / "adapter_model.safetensors").read_bytes()

    lines: list[str] = []
    summary = launch_training(cfg.replace(force=True), echo=lines.append)
    assert summary["steps"] == 2 and any("[hadpo] force:" in line for line in lines)
    # The first run left a checkpoint at step 1: a rerun that kept it would resume there.
    assert any("; starting" in line for line in lines) and not any("resuming" in line for line in lines)
    (replaced,) = out.glob("replaced-*")
    assert (replaced / "train_done.json").is_file() and (replaced / "checkpoints").is_dir()
    assert (replaced / "adapter" / "adapter_model.safetensors").read_bytes() == adapter  # moved, not deleted
    assert [m["step"] for m in read_jsonl(out / "metrics.jsonl")] == [1, 2]
    assert "force" not in json.loads((out / CONFIG_FILE).read_text())

    lines.clear()
    launch_training(cfg, echo=lines.append)  # the forced run is this config's finished run
    assert any("skipping" in line for line in lines)


def test_a_data_error_in_the_child_is_one_line_and_its_traceback_goes_to_the_log(
        tmp_path, tiny_model_dir, train_world, capsys) -> None:
    import json

    from hadpo.cli import main

    bad = tmp_path / "pope_data.json"
    records = json.loads((train_world / "hadpo" / "llava-v1.5" / "pope_data.json").read_text())
    del records[3]["image_id"]
    bad.write_text(json.dumps(records))
    cfg = _dpo(tmp_path, tiny_model_dir, train_world, pope_data=str(bad), max_steps=1)
    params = tmp_path / "train.yaml"
    params.write_text(yaml.safe_dump(cfg.to_dict()))
    assert main(["train", "-f", str(params)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    expected = f"{bad}, record 3, field 'image_id': missing required field"
    assert err == [f"hadpo train: error: training exited with code 1: {expected}; full log: "
                   f"{Path(cfg.output_dir) / 'train.log'}"]
    log = (Path(cfg.output_dir) / "train.log").read_text()
    assert "Traceback (most recent call last)" in log and f"(rank 0): error: {expected}" in log


def test_preflight_names_the_record_before_training(tiny_model_dir, train_world, tmp_path) -> None:
    from hadpo.train.objectives import build_dpo

    cfg = _dpo(tmp_path, tiny_model_dir, train_world, max_length=40)
    with pytest.raises(DataError, match=r"pope_data\.json.*record '0'.*exceeds max_length 40"):
        build_dpo(cfg, CPU)


def test_empty_preference_files_are_an_error_naming_them(tiny_model_dir, train_world, tmp_path) -> None:
    from hadpo.io import atomic_write_json
    from hadpo.train.objectives import build_dpo

    desc, pope = tmp_path / "desc_data.json", tmp_path / "pope_data.json"
    atomic_write_json(desc, {})  # what mining writes when it found no hallucination
    atomic_write_json(pope, [])
    cfg = _dpo(tmp_path, tiny_model_dir, train_world, desc_data=str(desc), pope_data=str(pope))
    with pytest.raises(DataError, match=r"desc_data\.json.*no preference pairs.*pope_data\.json"):
        build_dpo(cfg, CPU)


def test_precomputed_reference_equals_per_step_reference(tmp_path, tiny_model_dir, train_world) -> None:
    from hadpo.train.logps import policy_and_reference_logps
    from hadpo.train.objectives import build_dpo

    cfg = _dpo(tmp_path, tiny_model_dir, train_world, precompute_ref=True, per_device_batch_size=3)
    objective = build_dpo(cfg, CPU)
    items = objective.dataset[:5]
    batch = objective.collate(items)
    _, ref = policy_and_reference_logps(objective.model, batch["packed"])
    torch.testing.assert_close(batch["ref"], ref.sums, rtol=0, atol=1e-4)
    again = build_dpo(cfg, CPU)  # second build reads the cache
    assert [e.ref_chosen for e in again.dataset] == [e.ref_chosen for e in objective.dataset]


def test_objectives_are_looked_up_in_the_registry(tmp_path, tiny_model_dir, train_world) -> None:
    """An unknown objective is refused by name; a built-in one refuses options it does not take."""
    from hadpo.train.objectives import build_objective

    with pytest.raises(ParamsError, match=r"parameter 'objective' must be one of \['dpo', .*got 'ppo'"):
        _dpo(tmp_path, tiny_model_dir, train_world, objective="ppo")
    cfg = _dpo(tmp_path, tiny_model_dir, train_world, objective_options={"beta2": 1.0})
    with pytest.raises(ParamsError, match="objective 'dpo' takes no options"):
        build_objective(cfg, CPU)


@pytest.mark.slow
def test_a_bf16_step_without_deepspeed_moves_every_trainable_tensor(tmp_path, tiny_model_dir, train_world) -> None:
    """At lr 2e-6 an update is below bf16's resolution for most weights: the trainable tensors (LoRA, projector)
    train in fp32 under bf16 autocast, so two steps change nearly every element of every one of them."""
    from hadpo.models.loading import PROJECTOR_FILE
    from hadpo.train.objectives import build_dpo
    from hadpo.train.trainer import seed_everything

    cfg = _dpo(tmp_path, tiny_model_dir, train_world, dtype="bfloat16", learning_rate=2e-6, warmup_ratio=0.0,
               max_steps=2)
    seed_everything(cfg.seed)  # as the trainer does before it builds the objective: the same LoRA initialisation
    start = {n.replace(".default", ""): p.detach().float().clone()
             for n, p in build_dpo(cfg, CPU).named_parameters() if p.requires_grad}
    summary = launch_training(cfg, echo=None)
    adapter = Path(summary["adapter"])
    after = {f"model.{k}": v for k, v in _safetensors(adapter / "adapter_model.safetensors").items()}
    after.update({f"model.base_model.model.model.multi_modal_projector.{k}": v
                  for k, v in _safetensors(adapter / PROJECTOR_FILE).items()})
    assert set(after) == set(start)
    changed = {name: (after[name].float() != start[name]).float().mean().item() for name in start}
    assert all(share > 0.9 for share in changed.values()), {k: v for k, v in changed.items() if v <= 0.9}
    assert all(v.dtype == torch.float32 for v in after.values())  # the master weights, not their bf16 copies


@pytest.mark.slow
def test_a_headless_run_streams_one_training_line_and_no_library_noise(tmp_path, tiny_model_dir, train_world,
                                                                       monkeypatch) -> None:
    """As in an executed notebook (hadpo.notebooks.execute sets the mode for the kernel, the child inherits it):
    one summary line for the training bar, no weight-loading bars, no peft deprecation warning."""
    monkeypatch.setenv("HADPO_PROGRESS", "summary")
    lines: list[str] = []
    launch_training(_dpo(tmp_path, tiny_model_dir, train_world, max_steps=3, save_steps=100), echo=lines.append)
    bars = [line for line in lines if line.startswith("train:")]
    assert len(bars) == 1 and bars[0].startswith("train: 3/3 steps in ")
    assert ", loss " in bars[0] and ", acc " in bars[0]
    noise = ("Loading weights", "Writing model shards", "is_gradient_checkpointing", "%|")
    assert not [line for line in lines if any(n in line for n in noise)]


def test_the_summary_table_shows_counts_time_and_what_the_run_wrote() -> None:
    from hadpo.notebooks import REPO_ROOT
    from hadpo.train.stage import summary_table

    shown = summary_table({"steps": 120, "examples": 1500, "world_size": 1, "seconds": 95.2, "peak_gpu_memory_gb": None,
                           "adapter": str(REPO_ROOT / "runs" / "x" / "adapter"), "projector_trained": True})
    assert shown.frame.to_dict("records") == [{
        "Steps": 120, "Examples": 1500, "Processes": 1, "Time": "1 min 35 s", "Peak GPU memory (GB)": None,
        "Projector": "trained", "Output: adapter": "runs/x/adapter"}]
    assert ">—<" in shown._repr_html_() and "<th class=\"blank" not in shown._repr_html_()
