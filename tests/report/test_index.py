"""The reports index lists each run with its name, date, git commit and headline numbers."""

from __future__ import annotations

import json
from pathlib import Path

from hadpo.report.html import index_entries, write_index

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _report(root: Path, folder: str, summary: dict | None) -> None:
    (root / folder).mkdir(parents=True)
    (root / folder / "08_dashboard.html").write_text("<html></html>")
    if summary is not None:
        (root / folder / "summary.json").write_text(json.dumps(summary))


def test_each_run_shows_its_name_date_commit_and_headline(tmp_path: Path) -> None:
    _report(tmp_path, "ci2", {"run_name": "ci2", "created": "2026-03-04T05:06:07+00:00",
                              "environment": {"git_commit": f"{COMMIT}-dirty"},
                              "headline": {"POPE mean F1 over 3 set(s)": "88.51 → 91.59 (+3.08)"}})
    _report(tmp_path, "ci", {"run_name": "ci", "created": "2026-03-01T00:00:00+00:00",
                             "environment": {"git_commit": COMMIT}, "headline": {}})
    _report(tmp_path, "failed", None)  # a run whose dashboard never ran: no summary, so no known commit

    entries = {e["folder"]: e for e in index_entries(tmp_path)}
    assert entries["ci2"]["commit"] == f"{COMMIT}-dirty" and entries["ci"]["commit"] == COMMIT
    assert entries["failed"]["commit"] is None and entries["ci2"]["date"] == "2026-03-04 05:06"

    text = write_index(tmp_path).read_text()
    assert "<th>Run</th><th>Date (UTC)</th><th>Commit</th><th>Pages</th><th>Headline</th>" in text
    row = next(line for line in text.splitlines() if line.startswith("<tr><td>ci2</td>"))
    assert "<td>2026-03-04 05:06</td>" in row
    assert f'<code title="{COMMIT}-dirty">{COMMIT[:12]}-dirty</code>' in row
    assert "POPE mean F1 over 3 set(s): <b>88.51 → 91.59 (+3.08)</b>" in row
    assert f'<code title="{COMMIT}">{COMMIT[:12]}</code>' in text
    failed = next(line for line in text.splitlines() if line.startswith("<tr><td>failed</td>"))
    assert '<span class="hadpo-muted">unknown</span>' in failed
