"""The kit's progress bars: one summary line where output is kept, lines for a pipe, nothing on stderr; and a bar in
a headlessly executed notebook leaves exactly one line."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from hadpo import progress as progress_module
from hadpo.errors import ParamsError
from hadpo.progress import (
    NO_PROGRESS_ENV,
    PROGRESS_ENV,
    Progress,
    format_duration,
    progress,
    progress_mode,
    quiet_library_bars,
)


@pytest.fixture(autouse=True)
def _no_mode_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    monkeypatch.delenv(NO_PROGRESS_ENV, raising=False)


def test_summary_mode_prints_one_line_to_stdout_when_the_bar_ends(monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(PROGRESS_ENV, "summary")
    with progress(120, "train", unit="steps", initial=20) as bar:
        for _ in range(100):
            bar.update(1)
            bar.set_postfix(loss=0.41234, acc=None)
        assert capsys.readouterr().out == "", "no line before the bar ends"
    bar.close()  # a second close prints nothing more
    out, err = capsys.readouterr()
    assert err == ""
    assert out.count("\n") == 1
    assert out.startswith("train: 120/120 steps in ") and out.rstrip().endswith("(20 done earlier), loss 0.412")


def test_a_bar_stopped_early_says_so(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(PROGRESS_ENV, "summary")
    with pytest.raises(KeyboardInterrupt), progress(10, "POPE random", unit="questions") as bar:
        bar.update(3)
        raise KeyboardInterrupt
    assert capsys.readouterr().out.startswith("POPE random: stopped at 3/10 questions after ")


def test_lines_mode_prints_a_bounded_number_of_lines(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(PROGRESS_ENV, "lines")
    monkeypatch.setattr(progress_module, "LINE_MIN_INTERVAL_S", 0.0)
    with progress(1000, "describe", unit="images") as bar:
        for _ in range(1000):
            bar.update(1)
    lines = capsys.readouterr().out.splitlines()
    # one line per 5 % of the way (the last one is the summary's), no redraws
    assert len(lines) == 20
    assert lines[0].startswith("describe: 50/1000 images (5%), ")
    assert lines[-1].startswith("describe: 1000/1000 images in ")


def test_a_disabled_bar_prints_nothing(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(PROGRESS_ENV, "summary")
    with progress(5, "judge", enabled=False) as bar:
        bar.update(5)
    assert capsys.readouterr() == ("", "")


def test_mode_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # pytest captures stderr: not a terminal, not a kernel
    assert progress_mode() == "lines"
    for mode in ("live", "lines", "summary", "off"):
        monkeypatch.setenv(PROGRESS_ENV, mode.upper())
        assert progress_mode() == mode
    monkeypatch.setenv(NO_PROGRESS_ENV, "1")
    assert progress_mode() == "off"
    monkeypatch.delenv(NO_PROGRESS_ENV)
    monkeypatch.setenv(PROGRESS_ENV, "quiet")
    with pytest.raises(ParamsError, match="HADPO_PROGRESS='quiet'"):
        progress_mode()
    with pytest.raises(ValueError, match="unknown progress mode"):
        Progress(3, "x", mode="auto")


def test_durations_read_naturally() -> None:
    assert [format_duration(s) for s in (0.42, 35.4, 125, 3780)] == ["0.4 s", "35 s", "2 min 05 s", "1 h 03 min"]


def test_library_bars_are_quiet_inside_the_block_and_restored_after(monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers.utils import logging as hf_logging

    monkeypatch.setenv(PROGRESS_ENV, "summary")
    before = hf_logging.is_progress_bar_enabled()
    with quiet_library_bars():
        assert not hf_logging.is_progress_bar_enabled()
    assert hf_logging.is_progress_bar_enabled() == before
    monkeypatch.setenv(PROGRESS_ENV, "live")
    with quiet_library_bars():
        assert hf_logging.is_progress_bar_enabled() == before


@pytest.mark.slow
def test_a_bar_in_a_headless_notebook_leaves_one_line_and_nothing_on_stderr(tmp_path: Path) -> None:
    """What :func:`hadpo.notebooks.execute` does for the kernel: papermill, in the kernel environment."""
    import papermill

    from hadpo.notebooks import kernel_environment

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(
        "from hadpo.progress import progress\n"
        "with progress(300, 'POPE random', unit='questions') as bar:\n"
        "    for _ in range(300):\n"
        "        bar.update(1)\n"
    )]
    source, executed = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, str(source))
    with kernel_environment():
        papermill.execute_notebook(str(source), str(executed), kernel_name="python3", progress_bar=False)
    outputs = nbformat.read(str(executed), as_version=4).cells[0].outputs
    assert [o.get("name") for o in outputs] == ["stdout"]
    text = outputs[0]["text"]
    assert text.count("\n") == 1 and text.startswith("POPE random: 300/300 questions in ")
