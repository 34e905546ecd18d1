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

from hadpo.errors import DataError
from hadpo.io import read_json, read_jsonl
from hadpo.train.config import TrainConfig
from hadpo.train.distributed import DistInfo
from hadpo.train.run import CONFIG_FILE, launch_command, launch_training

CPU = DistInfo(rank=0, local_rank=0, world_size=1, device=torch.device("cpu"))


def _dpo(tmp_path: Path, model: Path, data: Path, **overrides) -> TrainConfig:
    base = dict(mode="dpo", model=str(model), data_root=str(data), output_dir=str(tmp_path / "run"),
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
    from hadpo.models.loading import load_model

    adapter = Path(cfg.output_dir) / "adapter"
    assert (adapter / "adapter_config.json").is_file() and (adapter / "multi_modal_projector.safetensors").is_file()
    tuned, base = load_model(str(tiny_model_dir), adapter=str(adapter)), load_model(str(tiny_model_dir))
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


def test_sft_decision_token_and_description_weights(tmp_path, tiny_model_dir, train_world) -> None:
    """The loss is sum(w * nll) / sum(w) with w = decision_token_weight on the Yes/No token of existence
    questions only (the first answer token that is not whitespace), w = description_weight on every token of a
    description, and 1 elsewhere; the unweighted NLL is logged beside it."""
    from hadpo.train.objectives import build_sft

    cfg = TrainConfig.from_dict(dict(mode="sft", model=str(tiny_model_dir), data_root=str(train_world),
                                     output_dir=str(tmp_path / "sft"), vision_pretrain_steps=0, device="cpu",
                                     decision_token_weight=10.0, description_weight=3.0, max_pairs=12))
    objective = build_sft(cfg, CPU)
    decisions = [e.decision for e in objective.dataset]
    assert -1 in decisions and any(d >= 0 for d in decisions)
    # Descriptions are exactly the examples without a decision token (the world's kinds: desc and qa_*).
    assert [e.description for e in objective.dataset] == [d < 0 for d in decisions]
    tok = objective.encoder.tokenizer
    for e in objective.dataset:
        if e.decision >= 0:  # the weighted token is the Yes/No word itself, never a bare space
            assert tok.decode([e.answer_ids[e.decision]]).strip() in ("Yes", "No")
    batch = objective.collate(objective.dataset[:8])
    loss, metrics = objective(batch)
    from hadpo.train.logps import packed_logps

    logps = packed_logps(objective.model, batch["packed"])
    nll = -logps.per_token[:, 0]
    w = torch.ones_like(nll)
    assert batch["description"].any() and not batch["description"].all()
    for row, index in enumerate(batch["decision"].tolist()):
        if index >= 0:
            w[row, index] = 10.0
        if batch["description"][row]:
            w[row, :] = 3.0
    expected = (w * nll * logps.mask[:, 0]).sum() / (w * logps.mask[:, 0]).sum()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert metrics["nll"] == pytest.approx(((nll * logps.mask[:, 0]).sum() / logps.mask[:, 0].sum()).item(), rel=1e-5)
    assert loss.item() != pytest.approx(metrics["nll"], rel=1e-3)


@pytest.mark.slow
def test_sft_trains_and_saves_a_loadable_model(tmp_path, tiny_model_dir, train_world) -> None:
    cfg = TrainConfig.from_dict(dict(mode="sft", model=str(tiny_model_dir), data_root=str(train_world),
                                     output_dir=str(tmp_path / "sft"), vision_pretrain_steps=5, device="cpu",
                                     max_steps=3, per_device_batch_size=8, learning_rate=2e-3, launcher="python",
                                     deepspeed_config=None, template="plain"))
    summary = launch_training(cfg, echo=None)
    from hadpo.models.loading import load_model

    loaded = load_model(summary["model"])
    before = load_model(str(tiny_model_dir))
    vision_after = dict(loaded.model.model.vision_tower.named_parameters())
    changed_lm = any(not torch.equal(p, dict(before.model.named_parameters())[n])
                     for n, p in loaded.model.named_parameters() if "language_model" in n)
    assert changed_lm and vision_after
    metrics = read_jsonl(Path(cfg.output_dir) / "metrics.jsonl")
    assert len(metrics) == 3 and all("nll" in m for m in metrics)
    assert read_json(Path(cfg.output_dir) / "manifest.json")["data"]["examples"] == summary["examples"]
