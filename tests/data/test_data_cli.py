"""``hadpo validate``: exit codes, one JSON object on success, one error line on failure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hadpo.cli import main


def _lines(path: Path, *records: object) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _q(qid: int, label: str) -> dict:
    return {"question_id": qid, "image": "a.jpg", "text": "Is there a cat in the image?", "label": label}


def test_valid_file_prints_counts_and_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _lines(tmp_path / "coco_pope_random.json", _q(1, "yes"), _q(2, "no"))
    assert main(["validate", "--kind", "pope", str(path)]) == 0
    out = capsys.readouterr()
    report = json.loads(out.out)
    assert (report["kind"], report["records"], report["counts"]["yes"]) == ("pope", 2, 1)
    assert out.err == ""


def test_invalid_file_prints_one_line_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _lines(tmp_path / "coco_pope_random.json", _q(1, "yes"), _q(2, "maybe"))
    assert main(["validate", "--kind", "pope", str(path)]) == 1
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.count("\n") == 1
    assert out.err.startswith(f"error: {path}, line 2, field 'label': expected one of 'yes', 'no'")


def test_missing_images_fail_unless_allowed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _lines(tmp_path / "coco_pope_random.json", _q(1, "yes"))
    assert main(["validate", "--kind", "pope", str(path), "--images-root", str(tmp_path)]) == 1
    assert "field 'image': image not found: " in capsys.readouterr().err
    argv = ["validate", "--kind", "pope", str(path), "--images-root", str(tmp_path), "--allow-missing-images"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["missing_images"][0]["path"] == str(tmp_path / "a.jpg")


def test_several_files_only_for_shr_factual(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    part1 = _lines(tmp_path / "shr_factual_part1.jsonl", {"1": ["a"]})
    part2 = _lines(tmp_path / "shr_factual_part2.jsonl", {"1": ["b"]})
    assert main(["validate", "--kind", "shr-factual", str(part1), str(part2)]) == 1
    assert "duplicate image id '1'" in capsys.readouterr().err
    assert main(["validate", "--kind", "pope", str(part1), str(part2)]) == 1
    assert "takes one file, got 2" in capsys.readouterr().err


def test_help_lists_kinds(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["validate", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "shr-factual" in text and "--images-root" in text and "images root:" in text


def test_unknown_kind_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["validate", "--kind", "nope", "x.json"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_command_module_does_not_import_torch() -> None:
    code = "import sys, hadpo.data.cli, hadpo.data.validate; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("content", [b"", b"\n  \n", b'{"question_id": 1, "image": "a.jpg", "text": "\xff"}\n'])
def test_empty_blank_or_non_utf8_file_is_one_line_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             content: bytes) -> None:
    path = tmp_path / "coco_pope_random.json"
    path.write_bytes(content)
    assert main(["validate", "--kind", "pope", str(path)]) == 1
    out = capsys.readouterr()
    assert out.out == "" and out.err.count("\n") == 1
    assert out.err.startswith(f"error: {path}")
    assert "no records" in out.err or f"{path}, line 1: not UTF-8 text: byte 0xff at column 47" in out.err
