"""``run_pope`` end to end on the tiny LLaVA: files, resume after a kill, protocol guard, torchrun, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hadpo.cli import main
from hadpo.data.layout import DataLayout
from hadpo.data.pope_files import read_pope_questions
from hadpo.eval.pope import infer
from hadpo.eval.pope.config import PopeConfig
from hadpo.eval.pope.infer import ProtocolMismatchError
from hadpo.eval.pope.stage import run_pope
from hadpo.io import read_jsonl


def _cfg(root: Path, model: Path, run_dir: Path, **kw: object) -> PopeConfig:
    base = {"data_root": str(root), "model": str(model), "run_dir": str(run_dir), "max_new_tokens": 4,
            "batch_size": 5, "device": "cpu", "progress": False}
    return PopeConfig.from_dict({**base, **kw})


def _ids(path: Path) -> list[int]:
    return [r["question_id"] for r in read_jsonl(path)]


def test_run_writes_answers_protocol_metrics_and_tables(pope_root: Path, varied_model_dir: Path,
                                                        tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    results = run_pope(_cfg(pope_root, varied_model_dir, run_dir, set="all"))
    assert list(results) == ["random", "popular", "adversarial"]
    for pope_set, metrics in results.items():
        labels = read_pope_questions(DataLayout(pope_root).pope_file(pope_set))
        assert _ids(run_dir / pope_set / "answers.jsonl") == [q.question_id for q in labels]
        assert metrics["n"] == 24 and metrics["TP"] + metrics["FP"] + metrics["TN"] + metrics["FN"] == 24
        protocol = json.loads((run_dir / pope_set / "protocol.json").read_text())
        assert protocol["prompt_variant"] == "raw" and protocol["decoding"]["max_new_tokens"] == 4
        assert protocol["batch_size"] == 5 and protocol["dtype"] == "float32" and protocol["image_mode"] == "pad"
        assert len(protocol["questions_sha256"]) == 64 and "transformers" in protocol["environment"]["versions"]
    assert json.loads((run_dir / "metrics.json").read_text()) == results
    table = (run_dir / "metrics.md").read_text().splitlines()
    assert table[0].startswith("| Set | Rule | Accuracy") and len(table) == 5
    assert (run_dir / "metrics.csv").read_text().splitlines()[1].startswith("random,pope,")
    # the yes questions are shared, so recall is identical across the three sets
    assert len({m["recall"] for m in results.values()}) == 1


def test_resume_after_a_kill_answers_only_what_is_missing(
    pope_root: Path, varied_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = tmp_path / "run"
    cfg = _cfg(pope_root, varied_model_dir, run_dir, set="popular")
    first = run_pope(cfg)
    answers = run_dir / "popular" / "answers.jsonl"
    complete = answers.read_text()
    lines = complete.splitlines(keepends=True)
    answers.write_text("".join(lines[:10]) + lines[10][:15])  # killed while writing the 11th record

    generated: list[int] = []
    real = infer.PopeAnswerer.generate

    def counting(self: infer.PopeAnswerer, questions: list[str], features: list) -> list[str]:
        generated.append(len(questions))
        return real(self, questions, features)

    monkeypatch.setattr(infer.PopeAnswerer, "generate", counting)
    assert run_pope(cfg) == first
    assert sum(generated) == 14
    assert answers.read_text() == complete  # same answers, sorted, nothing duplicated

    generated.clear()
    assert run_pope(cfg) == first and generated == []  # nothing left: rescoring only


def test_force_answers_the_set_again_and_keeps_the_earlier_answers(
    pope_root: Path, varied_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = tmp_path / "run"
    first = run_pope(_cfg(pope_root, varied_model_dir, run_dir, set="all"))
    earlier = {s: (run_dir / s / "answers.jsonl").read_text() for s in first}

    generated: list[int] = []
    real = infer.PopeAnswerer.generate

    def counting(self: infer.PopeAnswerer, questions: list[str], features: list) -> list[str]:
        generated.append(len(questions))
        return real(self, questions, features)

    monkeypatch.setattr(infer.PopeAnswerer, "generate", counting)
    forced = run_pope(_cfg(pope_root, varied_model_dir, run_dir, set="popular", force=True))
    assert sum(generated) == 24, "every question of the forced set is answered again"
    assert forced == {"popular": first["popular"]}  # the same model and protocol give the same answers
    (replaced,) = run_dir.glob("replaced-*")
    assert [p.name for p in replaced.iterdir()] == ["popular"]
    assert (replaced / "popular" / "answers.jsonl").read_text() == earlier["popular"]  # moved, not deleted
    assert (run_dir / "random" / "answers.jsonl").read_text() == earlier["random"]  # other sets untouched
    assert json.loads((run_dir / "metrics.json").read_text()) == first  # the tables still hold every set

    generated.clear()
    run_pope(_cfg(pope_root, varied_model_dir, run_dir, set="popular"))  # an ordinary rerun finds it finished
    assert generated == [] and len(list(run_dir.glob("replaced-*"))) == 1


def test_a_different_protocol_is_refused(pope_root: Path, varied_model_dir: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_pope(_cfg(pope_root, varied_model_dir, run_dir, limit=6))
    with pytest.raises(ProtocolMismatchError, match=r"max_new_tokens.*Use a new run_dir"):
        run_pope(_cfg(pope_root, varied_model_dir, run_dir, limit=6, max_new_tokens=5))
    with pytest.raises(ProtocolMismatchError, match="prompt_variant"):
        run_pope(_cfg(pope_root, varied_model_dir, run_dir, prompt_variant="short"))
    # the scoring rule is not part of the answers' protocol
    assert run_pope(_cfg(pope_root, varied_model_dir, run_dir, limit=6, rule="strict"))["random"]["rule"] == "strict"


def test_a_protocol_without_answers_never_blocks(pope_root: Path, varied_model_dir: Path, tmp_path: Path) -> None:
    from hadpo.models.loading import ModelLoadError

    run_dir = tmp_path / "run"
    with pytest.raises(ModelLoadError):  # a typo'd model path: the protocol is written, no answer is
        run_pope(_cfg(pope_root, tmp_path / "no-such-model", run_dir, limit=3))
    assert not (run_dir / "random" / "answers.jsonl").is_file()
    assert run_pope(_cfg(pope_root, varied_model_dir, run_dir, limit=3))["random"]["n"] == 3
    protocol = json.loads((run_dir / "random" / "protocol.json").read_text())
    assert protocol["model"] == str(varied_model_dir)


def test_limit_then_full_run_continues(pope_root: Path, varied_model_dir: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    assert run_pope(_cfg(pope_root, varied_model_dir, run_dir, limit=7))["random"]["n"] == 7
    assert len(_ids(run_dir / "random" / "answers.jsonl")) == 7
    assert run_pope(_cfg(pope_root, varied_model_dir, run_dir))["random"]["n"] == 24


@pytest.mark.slow
def test_two_processes_under_torchrun_merge_into_one_sorted_file(
    pope_root: Path, varied_model_dir: Path, tmp_path: Path
) -> None:
    single = tmp_path / "single"
    run_pope(_cfg(pope_root, varied_model_dir, single, set="adv"))
    double = tmp_path / "double"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "DS_ACCELERATOR": "cpu"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "hadpo.cli", "pope-run", "-p", "data_root", str(pope_root), "-p", "model", str(varied_model_dir),
        "-p", "run_dir", str(double), "-p", "set", "adv", "-p", "max_new_tokens", "4", "-p", "batch_size", "5",
        "-p", "device", "cpu", "-p", "progress", "False",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(printed) == 1 and json.loads(printed[0])["adversarial"]["n"] == 24
    assert not list((double / "adversarial").glob("answers.rank*.jsonl"))
    merged = (double / "adversarial" / "answers.jsonl").read_text()
    assert merged == (single / "adversarial" / "answers.jsonl").read_text()
    assert json.loads((double / "adversarial" / "protocol.json").read_text())["world_size"] == 2


def test_cli_build_then_run(tmp_path: Path, coco_root: Path, varied_model_dir: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    params = tmp_path / "pope.yaml"
    params.write_text(f"data_root: {coco_root}\nn_images: 8\nseed: 1\n")
    assert main(["pope-build", "-f", str(params), "-p", "seed", "2"]) == 0
    built = json.loads(capsys.readouterr().out)
    assert built["random"].endswith("coco_pope_random.json")
    assert len(read_pope_questions(built["random"])) == 48
    argv = ["pope-run", "-p", "data_root", str(coco_root), "-p", "model", str(varied_model_dir), "-p", "run_dir",
            str(tmp_path / "run"), "-p", "max_new_tokens", "3", "-p", "limit", "6", "-p", "device", "cpu",
            "-p", "progress", "False"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["random"]["n"] == 6
    assert main([*argv, "-p", "batch_size", "0"]) == 1
    assert "batch_size" in capsys.readouterr().err
    assert main([*argv, "-p", "set", "everything"]) == 1
    assert main([*argv, "-p", "num_beams", "5"]) == 1
    assert "'num_beams' is fixed to 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # the old one-flag-per-key form answers with the new one
        main(["pope-run", "--batch-size", "2", "--set", "adv"])
    assert capsys.readouterr().err.strip().endswith("hadpo pope-run -p batch_size 2 -p set adv")


def test_the_notebook_table_names_the_model_and_adapter_and_formats_by_kind(tmp_path: Path) -> None:
    from hadpo.eval.pope.stage import metrics_table

    metrics = {"rule": "pope", "accuracy": 0.5, "precision": 0.5, "recall": 1.0, "f1": 2 / 3, "yes_ratio": 1.0,
               "TP": 90, "FP": 90, "TN": 0, "FN": 0, "unparseable": 0, "n": 180}
    base = metrics_table(_cfg(tmp_path, tmp_path / "model", tmp_path / "run"), {"random": metrics})
    adapted = metrics_table(_cfg(tmp_path, tmp_path / "model", tmp_path / "run", adapter=str(tmp_path / "adapter")),
                            {"random": metrics})
    assert base.caption == f"{tmp_path / 'model'} (base model, no adapter); rule pope"
    assert adapted.caption == f"{tmp_path / 'model'} + adapter {tmp_path / 'adapter'}; rule pope"
    row = base.frame.to_dict("records")[0]
    assert list(row)[:6] == ["Set", "Accuracy (%)", "Precision (%)", "Recall (%)", "F1 (%)", "Yes ratio (%)"]
    assert row["TP"] == 90 and isinstance(row["TP"], int) and row["N"] == 180
    html = base._repr_html_()
    assert ">66.67<" in html and ">90<" in html and "blank level0" not in html  # no index column
