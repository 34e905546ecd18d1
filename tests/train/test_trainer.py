"""The trainer end to end: SFT and DPO, DeepSpeed ZeRO-2/3 with 2 processes on CPU, resume after a kill."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from hadpo.distributed import DistContext
from hadpo.errors import DataError, ParamsError
from hadpo.io import read_jsonl
from hadpo.models.loading import load_model
from hadpo.specs import ModelSpec
from hadpo.train.config import TrainConfig
from hadpo.train.stage import CONFIG_FILE, launch_command, launch_training

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
                "logps/rejected", "grad_norm", "learning_rate"):
        assert key in metrics[-1]
    adapter = Path(cfg.output_dir) / "adapter"
    assert (adapter / "adapter_config.json").is_file() and (adapter / "multi_modal_projector.safetensors").is_file()
    tuned = load_model(ModelSpec(model=str(tiny_model_dir), adapter=str(adapter), device="cpu"))
    base = load_model(ModelSpec(model=str(tiny_model_dir), device="cpu"))
    ids = torch.tensor([[1, 5, 6, 7]])
    assert not torch.allclose(tuned.model(input_ids=ids).logits, base.model(input_ids=ids).logits)


@pytest.mark.slow
def test_resume_after_kill_matches_uninterrupted(tmp_path, tiny_model_dir, train_world) -> None:
    """Killed after a checkpoint, a rerun resumes and ends with the same adapter and metrics as a run that
    was never interrupted."""
    clean = _dpo(tmp_path / "a", tiny_model_dir, train_world, max_steps=6)
    launch_training(clean, echo=None)

    killed = _dpo(tmp_path / "b", tiny_model_dir, train_world, max_steps=6)
    out = Path(killed.output_dir)
    out.mkdir(parents=True)
    (out / CONFIG_FILE).write_text(__import__("json").dumps(killed.to_dict()))
    cmd = launch_command(killed)
    proc = subprocess.Popen(cmd.argv, env=cmd.full_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    latest = out / "checkpoints" / "latest"
    deadline = time.time() + 120
    while time.time() < deadline and not (latest.is_file() and "step-0000004" in latest.read_text()):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "train_done.json").exists(), "the run finished before it could be killed"
    launch_training(killed, echo=None)

    a = _safetensors(Path(clean.output_dir) / "adapter" / "adapter_model.safetensors")
    b = _safetensors(out / "adapter" / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)
    strip = lambda rows: [{k: v for k, v in r.items()} for r in rows]  # noqa: E731
    ma, mb = strip(read_jsonl(Path(clean.output_dir) / "metrics.jsonl")), strip(read_jsonl(out / "metrics.jsonl"))
    assert [m["step"] for m in mb] == list(range(1, 7))
    for x, y in zip(ma, mb, strict=True):
        assert x["loss"] == pytest.approx(y["loss"], abs=1e-6)


def test_finished_run_is_skipped_and_changed_config_refused(tmp_path, tiny_model_dir, train_world) -> None:
    cfg = _dpo(tmp_path, tiny_model_dir, train_world, max_steps=1)
    launch_training(cfg, echo=None)
    lines: list[str] = []
    launch_training(cfg, echo=lines.append)
    assert any("skipping" in line for line in lines)
    with pytest.raises(FileExistsError, match="different config"):
        launch_training(cfg.replace(learning_rate=1e-3), echo=None)


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
