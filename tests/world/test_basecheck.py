"""``hadpo base-check``: notebook 00 per seed, tabulated."""

from __future__ import annotations

from pathlib import Path

import pytest

from hadpo.cli import main
from hadpo.io import read_json
from hadpo.world.basecheck import SUMMARY_JSON, SUMMARY_MD, check_seeds, seed_config, seeds_table
from hadpo.world.config import BaseModelConfig
from hadpo.world.stage import TARGETS


def _report(seed: int, accuracy: float) -> dict:
    values = {"pope_random_accuracy": accuracy, "adversarial_minus_random_yes_ratio": 0.142,
              "absent_object_sentence_share": 0.101, "partner_share": 1.0, "wrong_column_share": 0.028}
    targets = {k: {"target": f"{op} {v}", "measured": values[k], "met": values[k] >= v}
               for k, (op, v) in TARGETS.items()}
    return {"seed": seed, **values, "targets": targets}


def test_table_has_one_row_per_seed_and_says_whether_all_targets_hold() -> None:
    table = seeds_table([_report(0, 0.906), _report(1, 0.781)]).splitlines()
    assert table[0].startswith("| seed | POPE random acc. | adversarial − random yes-ratio |")
    assert table[2] == "| 0 | 90.6% | +14.2 pts | 10.1% | 100.0% | 2.8% | yes |"
    assert table[3] == "| 1 | 78.1% | +14.2 pts | 10.1% | 100.0% | 2.8% | no |"


def test_each_seed_gets_its_own_folders(tmp_path: Path) -> None:
    cfg = seed_config(BaseModelConfig(), 2, tmp_path)
    assert (cfg.world.seed, cfg.data_root, cfg.model_dir) == (2, str(tmp_path / "seed-2" / "data"),
                                                        str(tmp_path / "seed-2" / "base"))
    assert cfg.base_model == str(tmp_path / "seed-2" / "base" / "sft" / "model")


@pytest.mark.parametrize(("seeds", "jobs", "match"), [([], 1, "seeds"), ([1, 1], 1, "distinct"), ([0], 0, "jobs")])
def test_bad_arguments_are_refused(tmp_path: Path, seeds: list[int], jobs: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        check_seeds(BaseModelConfig(), seeds, tmp_path, jobs=jobs)


def test_cli_reports_a_bad_parameter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["base-check", str(tmp_path), "-p", "decision_token_weight", "0"]) == 1
    assert "decision_token_weight" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["base-check", "--out", str(tmp_path), "--set", "description_weight", "3", "--seeds", "0"])
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"hadpo base-check {tmp_path} -p description_weight 3 --seeds 0")


@pytest.mark.slow
def test_two_seeds_run_side_by_side_and_a_rerun_reuses_them(tmp_path: Path) -> None:
    cfg = BaseModelConfig.from_dict(dict(train_images=40, pope_images=6, shr_images=4, sft_max_steps=3,
                                         sft_batch_size=8, vision_pretrain_steps=3, eval_num_beams=1,
                                         eval_batch_size=16))
    reports = check_seeds(cfg, [0, 1], tmp_path, jobs=2, threads=1)
    assert [r["seed"] for r in reports] == [0, 1]
    assert read_json(tmp_path / SUMMARY_JSON) == reports
    assert (tmp_path / SUMMARY_MD).read_text().count("\n") == 4
    for seed in (0, 1):
        assert (tmp_path / f"seed-{seed}" / "base" / "sft" / "model" / "config.json").is_file()
    # The two worlds differ (their own seeds), and a rerun finds every step done and measures the same.
    assert read_json(tmp_path / "seed-0" / "data" / "world.json")["seed"] == 0
    assert check_seeds(cfg, [0, 1], tmp_path, jobs=1, threads=1, echo=None) == reports
