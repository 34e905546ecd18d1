"""The ``hadpo`` command line: --version, and the mine / report / demo commands' help and one-line errors."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

from hadpo.cli import COMMAND_MODULES, main
from hadpo.notebooks import REPO_ROOT


@pytest.fixture(autouse=True)
def _error_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The commands append each error's traceback to the error log: keep it out of the user's cache.
    monkeypatch.setenv("HADPO_ERROR_LOG", str(tmp_path / "errors.log"))


def test_version_is_the_installed_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"hadpo {importlib.metadata.version('hadpo')}"


@pytest.mark.parametrize(("command", "says"), [
    ("mine", "notebook 01"),
    ("report", "dashboard notebook"),
    ("demo", "runs/<name>/"),
])
def test_each_command_has_help(command: str, says: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert f"usage: hadpo {command}" in text and "-p KEY VALUE" in text and says in text
    assert "hadpo.mining.cli" in COMMAND_MODULES


def _one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_mine_reports_a_kit_error_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _one_line_error(capsys, ["mine", "-f", str(REPO_ROOT / "params/world/01_data.yaml"), "-p", "n_image", "5"])
    assert err.startswith("hadpo mine: error:") and "'n_image' (did you mean 'n_images'?)" in err
    err = _one_line_error(capsys, ["mine", "-f", str(REPO_ROOT / "params/world/01_data.yaml"),
                                   "-p", "data_root", str(tmp_path / "no-data"), "-p", "run_dir", str(tmp_path / "run"),
                                   "-p", "name", "x"])
    assert err.startswith("hadpo mine: error:") and "no-data" in err


def test_report_reports_a_kit_error_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _one_line_error(capsys, ["report", "-f", str(REPO_ROOT / "params/world/08_dashboard.yaml"),
                                   "-p", "bootstrap_resamples", "0", "-p", "report_dir", str(tmp_path / "r")])
    assert err.startswith("hadpo report: error:") and "'bootstrap_resamples' must be >= 1" in err
    assert not (tmp_path / "r").exists(), "refused before any kernel starts"


def test_demo_reports_a_kit_error_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    err = _one_line_error(capsys, ["demo", "-f", str(REPO_ROOT / "params/demo-ci.yaml"), "-p", "name", "../x"])
    assert err.startswith("hadpo demo: error:") and "parameter 'name' must be a folder name" in err
