"""``hadpo world``."""

from __future__ import annotations

from pathlib import Path

import pytest

from hadpo.cli import main
from hadpo.io import read_json


def test_cli_writes_a_world_and_reruns_idempotently(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params = tmp_path / "world.yaml"
    params.write_text("pope_images: 6\nshr_images: 4\nseed: 9\n")
    out = tmp_path / "data"
    assert main(["world", str(out), "-f", str(params), "-p", "seed", "5", "-p", "train_images", "30"]) == 0
    line = capsys.readouterr().out.strip()
    assert "generated" in line and "seed 5" in line and "train 30 / pope 6 / shr 4" in line
    assert "SFT records 150 (desc 30," in line
    meta = read_json(out / "world.json")
    assert meta["config"]["train_images"] == 30 and meta["seed"] == 5
    assert (out / "VG" / "VG_100K" / "1.png").is_file()

    assert main(["world", str(out), "-f", str(params), "-p", "seed", "5", "-p", "train_images", "30"]) == 0
    assert "already there, unchanged" in capsys.readouterr().out

    assert main(["world", str(out), "-f", str(params), "-p", "seed", "6", "-p", "train_images", "30"]) == 1
    assert "seed: 5 there, 6 asked" in capsys.readouterr().err


def test_cli_rejects_bad_params(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params = tmp_path / "world.yaml"
    params.write_text("p_hall: 0.3\n")
    assert main(["world", str(tmp_path / "data"), "-f", str(params)]) == 1
    assert "unknown parameter(s) 'p_hall'" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


def test_cli_help_describes_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["world", "--help"])
    text = capsys.readouterr().out
    assert "OUT" in text and "-p KEY VALUE" in text and "byte-identical" in text


def test_the_old_flags_answer_with_the_new_form(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["world", "--out", "data", "--seed", "5", "--images", "30", "--params", "w.yaml"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.endswith("hadpo world data -p seed 5 -p train_images 30 -f w.yaml")
