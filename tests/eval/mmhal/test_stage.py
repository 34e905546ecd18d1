"""The MMHal-Bench stage on the shapes world: the world's questions, the offline oracle, a judge that fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hadpo.cli import main
from hadpo.data.mmhal_files import QUESTION_TYPES, read_mmhal
from hadpo.errors import DataError, JudgeIncomplete, ParamsError
from hadpo.eval.mmhal.config import MmhalConfig
from hadpo.eval.mmhal.stage import SCORES_FILE, question_file, results_table, run_mmhal
from hadpo.io import read_json, read_jsonl
from hadpo.judge.stub_server import StubChatServer

KEY_ENV = "HADPO_TEST_MMHAL_KEY"


@pytest.fixture(scope="module")
def mmhal_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hadpo.world import WorldConfig, generate_world

    return generate_world(tmp_path_factory.mktemp("mmhal_world") / "data",
                          WorldConfig(seed=5, train_images=1, pope_images=0, shr_images=1, bench_images=8))


def _config(world: Path, run_dir: Path, **extra) -> MmhalConfig:
    return MmhalConfig.from_dict({"data_root": str(world), "run_dir": str(run_dir), "judge": "oracle",
                                  "progress": False, **extra})


def _filled(world: Path, tmp_path: Path, answer) -> Path:
    items = json.loads((world / "MMHal-Bench" / "response_template.json").read_text())
    for item in items:
        item["model_answer"] = answer(item)
    path = tmp_path / "answers.json"
    path.write_text(json.dumps(items))
    return path


def test_the_worlds_questions_cover_every_type_and_the_oracle_rates_by_the_annotations(mmhal_world, tmp_path):
    items = read_mmhal(question_file(_config(mmhal_world, tmp_path)))
    assert [i.question_type for i in items] == list(QUESTION_TYPES)
    assert all((mmhal_world / "MMHal-Bench" / "images" / i.image_file).is_file() for i in items)
    right = run_mmhal(_config(mmhal_world, tmp_path / "right", responses=str(
        _filled(mmhal_world, tmp_path, lambda item: item["gt_answer"]))))
    assert right["complete"] and right["judged"] == 8 and right["hallucination_rate"] == 0 and right["score"] >= 3
    # naming an absent object in every answer is a hallucination, whatever else the answer says
    world = json.loads((mmhal_world / "world.json").read_text())
    names = [c["name"] for c in world["categories"]]

    def absent(item: dict) -> str:
        there = " ".join(item["image_content"])
        return item["gt_answer"] + " There is a " + next(n for n in names if n not in there) + "."

    wrong = run_mmhal(_config(mmhal_world, tmp_path / "wrong",
                              responses=str(_filled(mmhal_world, tmp_path, absent))))
    assert wrong["hallucination_rate"] == 1.0 and wrong["score"] < 3
    assert [r["rating"] < 3 for r in read_jsonl(tmp_path / "wrong" / SCORES_FILE)] == [True] * 8


def test_stage_answers_with_the_model_and_resumes(mmhal_world, tiny_model_dir, tmp_path):
    cfg = _config(mmhal_world, tmp_path / "run", model=str(tiny_model_dir), device="cpu", max_new_tokens=6,
                  batch_size=4, limit=4)
    metrics = run_mmhal(cfg)
    assert metrics["questions"] == 4 and metrics["complete"] and metrics["judge"]["calls"]["requests"] == 4
    records = read_jsonl(tmp_path / "run" / "answers.jsonl")
    items = read_mmhal(question_file(cfg))
    # each question answered once, asked its own question
    assert [(r["image_id"], r["instruction"]) for r in records] == [(str(i.index), i.question) for i in items[:4]]
    assert read_json(tmp_path / "run" / "answers.protocol.json")["instruction"] == "per item"
    scores = read_jsonl(tmp_path / "run" / SCORES_FILE)
    assert [(s["id"], s["question_type"], s["status"]) for s in scores] == [
        (str(i.index), i.question_type, "judged") for i in items[:4]]
    assert all(0 <= s["rating"] <= 6 for s in scores)
    answers = (tmp_path / "run" / "answers.jsonl").read_bytes()
    assert run_mmhal(cfg)["score"] == metrics["score"] and (tmp_path / "run" / "answers.jsonl").read_bytes() == answers
    assert "Score (0-6)" in results_table(cfg, metrics)._repr_html_()

    # Answers on file under other decoding settings, or for another question, are refused, not reused...
    with pytest.raises(ParamsError, match=r"answers.protocol.json: the answers on file were made with decoding="):
        run_mmhal(cfg.replace(max_new_tokens=7))
    changed = tmp_path / "changed.json"
    template = json.loads(question_file(cfg).read_text())
    template[1]["question"] = "How many shapes can you see?"
    changed.write_text(json.dumps(template))
    with pytest.raises(ParamsError, match=r"question 1 was answered as .*, the question file now asks 'How many"):
        run_mmhal(cfg.replace(questions=str(changed)))
    # ...and force sets the earlier results aside and answers again.
    again = run_mmhal(cfg.replace(questions=str(changed), force=True))
    assert again["complete"] and len(list((tmp_path / "run").glob("replaced-*/answers.jsonl"))) == 1
    assert read_jsonl(tmp_path / "run" / "answers.jsonl")[1]["instruction"] == "How many shapes can you see?"


def test_a_missing_image_stops_the_run_before_the_judge_or_the_model(mmhal_world, tmp_path):
    cfg = _config(mmhal_world, tmp_path / "run", model=str(tmp_path / "no-model-here"),
                  images_dir=str(tmp_path / "no-images"), judge="openai", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(DataError) as caught:
        run_mmhal(cfg)
    error = caught.value
    assert (error.file, error.field) == (str(question_file(cfg)), "image_src")
    assert "8 unreadable images" in str(error) and "no-images/3.png (missing; record 0)" in str(error)
    assert not (tmp_path / "run" / "answers.jsonl").exists()


def test_a_rerun_takes_every_rating_from_the_judge_cache(mmhal_world, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "mmhal-test-placeholder")
    answers = _filled(mmhal_world, tmp_path, lambda item: item["gt_answer"])
    args = ["mmhal-judge", str(answers), "-p", "data_root", str(mmhal_world), "-p", "run_dir", str(tmp_path / "run"),
            "-p", "judge", "openai", "-p", "judge_model", "judge-x", "-p", "api_key_env", KEY_ENV,
            "-p", "progress", "False"]
    with StubChatServer(lambda body: "It answers what was asked.\nRating: 4") as server:
        assert main([*args, "-p", "base_url", server.url]) == 0
        assert server.count == 1 + 8  # the probe, then one request per question
        assert main([*args, "-p", "base_url", server.url]) == 0
        assert server.count == 1 + 8  # finished: nothing asked, not even a probe
    metrics = read_json(tmp_path / "run" / "metrics.json")
    assert metrics["complete"] and metrics["score"] == 4.0 and metrics["hallucination_rate"] == 0.0
    assert metrics["judge"]["calls"]["requests"] == 0 and metrics["protocol"]["responses"]["path"] == str(answers)


def test_a_judge_whose_replies_are_unreadable_fails_the_run_loudly(mmhal_world, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(KEY_ENV, "mmhal-test-placeholder")
    answers = _filled(mmhal_world, tmp_path, lambda item: "I do not know.")
    with StubChatServer(lambda body: "I refuse to rate this.") as server:
        code = main(["mmhal-judge", str(answers), "-p", "data_root", str(mmhal_world), "-p", "run_dir",
                     str(tmp_path / "run"), "-p", "judge", "openai", "-p", "base_url", server.url, "-p",
                     "judge_model", "judge-x", "-p", "api_key_env", KEY_ENV, "-p", "progress", "False",
                     "-p", "judge_attempts", "2"])
        with pytest.raises(JudgeIncomplete):  # the stage itself raises; the command line turns it into one line
            run_mmhal(_config(mmhal_world, tmp_path / "run2", responses=str(answers), judge="openai",
                              base_url=server.url, api_key_env=KEY_ENV, judge_model="judge-x"))
    assert code == 1
    err = capsys.readouterr().err
    assert "MMHal-Bench judgement incomplete: 8 of 8 questions unjudged" in err
    metrics = read_json(tmp_path / "run" / "metrics.json")
    assert metrics["complete"] is False and metrics["score"] is None and metrics["judge"]["unusable_replies"] == 16
