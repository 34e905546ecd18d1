"""Forced reruns set the earlier results aside: moved, never deleted, the run lock and earlier backups left alone."""

from __future__ import annotations

from pathlib import Path

from hadpo.rerun import REPLACED_PREFIX, set_aside
from hadpo.runlock import LOCK_FILE


def _folder(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    (run / "random").mkdir(parents=True)
    (run / "random" / "answers.jsonl").write_text('{"question_id": 1}\n')
    (run / "metrics.json").write_text("{}")
    (run / "questions.json").write_text("[]")
    (run / LOCK_FILE).write_text("")
    (run / f"{REPLACED_PREFIX}20200101T000000Z").mkdir()
    return run


def test_everything_but_the_lock_earlier_backups_and_kept_inputs_moves(tmp_path: Path) -> None:
    run = _folder(tmp_path)
    lines: list[str] = []
    dest = set_aside(run, keep=[run / "questions.json", None], log=lines.append)
    assert dest is not None and dest.parent == run and dest.name.startswith(REPLACED_PREFIX)
    assert sorted(p.name for p in dest.iterdir()) == ["metrics.json", "random"]
    assert (dest / "random" / "answers.jsonl").read_text() == '{"question_id": 1}\n'  # moved whole
    assert sorted(p.name for p in run.iterdir() if p.name != dest.name) == [
        LOCK_FILE, "questions.json", f"{REPLACED_PREFIX}20200101T000000Z"]
    assert len(lines) == 1 and dest.name in lines[0] and "2 entries" in lines[0]


def test_named_entries_only_and_nothing_to_move(tmp_path: Path) -> None:
    run = _folder(tmp_path)
    first = set_aside(run, ["random", "popular"], log=None)  # a set never evaluated is simply absent
    assert first is not None and [p.name for p in first.iterdir()] == ["random"]
    assert (run / "metrics.json").is_file()
    # A second forced step in the same second gets its own folder, never merges into the first.
    second = set_aside(run, ["metrics.json"], log=None)
    assert second is not None and second != first and (second / "metrics.json").is_file()
    assert set_aside(run, ["random"], log=None) is None
    assert set_aside(tmp_path / "never-made", log=None) is None
