"""Stage 02's bookkeeping without a launch: which run folder counts as the same run, and the merge child's command."""

from __future__ import annotations

from pathlib import Path

from hadpo.io import atomic_write_json, read_json
from hadpo.train.config import TrainConfig
from hadpo.train.stage import CONFIG_FILE, DONE_FILE, POLICY_DIR, finished, merge_command, recorded_config


def _config(tmp_path: Path, **values: object) -> TrainConfig:
    return TrainConfig.from_dict({"output_dir": str(tmp_path / "train"), "model": "some/model", **values})


def test_a_run_written_before_a_key_existed_is_the_same_run_while_that_key_keeps_its_default(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    out = Path(cfg.output_dir)
    older = {k: v for k, v in recorded_config(cfg).items() if k not in ("conditional_weight", "save_merged")}
    atomic_write_json(out / CONFIG_FILE, older)
    atomic_write_json(out / DONE_FILE, {"steps": 3})
    assert finished(cfg) == {"steps": 3}
    # the new key set to something else is another run
    assert finished(cfg.replace(conditional_weight=1.0)) is None
    assert read_json(out / CONFIG_FILE) == older  # deciding writes nothing


def test_the_merge_child_folds_the_trained_adapter_into_the_model_it_was_trained_on(tmp_path: Path) -> None:
    cfg = _config(tmp_path, save_merged=True, dtype="bfloat16", device="cuda")
    argv = merge_command(cfg).argv
    assert argv[1:3] == ["-m", "hadpo.models.merge"]
    given = dict(zip(argv[3::2], argv[4::2], strict=True))
    assert given == {"--model": "some/model", "--adapter": str(Path(cfg.output_dir) / "adapter"),
                     "--out": str(Path(cfg.output_dir) / POLICY_DIR), "--dtype": "bfloat16", "--device": "cuda"}


def test_a_merged_model_needs_a_folder_that_holds_the_model_under_its_adapter(tmp_path: Path) -> None:
    import pytest

    from hadpo.errors import ParamsError

    with pytest.raises(ParamsError, match="'save_merged' needs a model without an adapter merged into it"):
        _config(tmp_path, save_merged=True, adapter=str(tmp_path / "a"), merge_adapter=True)
    _config(tmp_path, save_merged=True, adapter=str(tmp_path / "a"), merge_adapter=False)  # a continued adapter
    with pytest.raises(ParamsError, match="'extra_data' holds preference data, for objective dpo"):
        _config(tmp_path, objective="sft", extra_data=["round-1"])
