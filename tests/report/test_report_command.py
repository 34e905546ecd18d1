"""``hadpo report``: the dashboard notebook over given run folders, as an HTML page, and the index above it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hadpo.cli import main


def test_report_renders_the_dashboard_and_rebuilds_the_index(dashboard_params: Callable[..., dict[str, Any]],
                                                            results_root: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    reports = results_root / "reports"
    reports.mkdir()
    (reports / "index.html").write_text("<p>an older index</p>")  # a reports root: its index is rebuilt
    argv = ["report"] + [item for key, value in dashboard_params().items() for item in ("-p", key, str(value))]
    assert main(argv) == 0
    out = capsys.readouterr().out
    page = reports / "unit" / "08_dashboard.html"
    assert page.is_file() and (reports / "unit" / "summary.json").is_file()
    assert f"report: {page}" in out and "POPE mean F1 over 3 set(s): " in out
    index = (reports / "index.html").read_text()
    assert 'href="unit/08_dashboard.html"' in index and "an older index" not in index
