"""SHR end to end on a small shapes world: describe with the tiny LLaVA, judge, score, resume."""

from __future__ import annotations

import json

import pytest

from hadpo.cli import main
from hadpo.errors import DataError, ParamsError
from hadpo.eval.shr.config import ShrConfig
from hadpo.eval.shr.inputs import load_shr_inputs
from hadpo.eval.shr.prompt import format_judgement
from hadpo.eval.shr.stage import run_shr
from hadpo.io import read_json, read_jsonl
from hadpo.judge.stub_server import StubChatServer

ORIGINAL_KEYS = ("num_images", "sents_per_image", "words_per_image", "hal_sents_per_image", "hal_words_per_image",
                 "hal_sents_ratio", "hal_words_ratio")


def test_run_shr_with_the_oracle(shr_world, tiny_model_dir, tmp_path):
    cfg = ShrConfig.from_dict(dict(data_root=str(shr_world), model=str(tiny_model_dir), run_dir=str(tmp_path / "shr"),
                    judge="oracle", num_beams=2, max_new_tokens=10, batch_size=4, device="cpu", num_runs=2,
                    progress=False))
    metrics = run_shr(cfg)
    run_dir = tmp_path / "shr"
    descriptions = read_jsonl(run_dir / "descriptions.jsonl")
    assert [d["image_id"] for d in descriptions] == [i.image_id for i in load_shr_inputs(shr_world)]
    judgements = read_json(run_dir / "judgement.json")
    assert list(judgements) == ["run1", "run2"]
    assert set(judgements["run1"]) == {d["image_id"] for d in descriptions}
    assert read_json(run_dir / "metrics.json") == json.loads(json.dumps(metrics))
    assert all(k in metrics["run1"] for k in ORIGINAL_KEYS)
    assert metrics["num_runs"] == 2 and "gram-4-repetition" in metrics and "mean_hal_ratio" in metrics
    assert metrics["length"]["num_images"] == 5 and "tokens_per_image" in metrics["length"]
    protocol = metrics["protocol"]
    assert protocol["judge"]["model"] == "shapes-oracle"
    assert protocol["describe"]["decoding"]["num_beams"] == 2
    assert set(protocol["data"]["sha256"]) >= {"shr/val_images_final.json", "VG/region_descriptions.json"}

    # a rerun describes nothing new (the file is untouched) and gives the same metrics
    before = (run_dir / "descriptions.jsonl").read_bytes()
    again = run_shr(cfg)
    assert (run_dir / "descriptions.jsonl").read_bytes() == before
    assert {k: v for k, v in again.items() if k != "protocol"} == {k: v for k, v in metrics.items() if k != "protocol"}


def test_shr_judge_command_with_an_openai_compatible_server(shr_world, tmp_path, monkeypatch, captions):
    responses = tmp_path / "responses.json"
    responses.write_text(json.dumps(captions))
    monkeypatch.setenv("HADPO_TEST_CLI_KEY", "sk-cli-secret-31f")

    def answer(body: dict) -> str:
        block = body["messages"][0]["content"].split("Sentences to judge:\n", 1)[1].strip().splitlines()
        # the last sentence of every description names an absent object
        return format_judgement([("correct", "checked")] * (len(block) - 1) + [("hallucination", "absent")])

    with StubChatServer(answer) as server:
        argv = ["shr-judge", str(responses), "-p", "data_root", str(shr_world), "-p", "run_dir", str(tmp_path / "out"),
                "-p", "judge", "openai", "-p", "base_url", server.url, "-p", "judge_model", "stub",
                "-p", "api_key_env", "HADPO_TEST_CLI_KEY", "-p", "progress", "False"]
        assert main(argv) == 0
        assert server.count == 1 + 5 and server.probes == 1  # the probe, then one request per image
        assert main(argv) == 0
        assert server.count == 6  # the rerun was served from the cache: nothing to judge, so not even a probe
    metrics = read_json(tmp_path / "out" / "metrics.json")
    run1 = metrics["run1"]
    assert run1["num_images"] == 5 and run1["num_unjudged"] == 0
    # one hallucinated sentence per image
    assert run1["hal_sents_per_image"] == 1.0
    assert metrics["model_base"] is None and metrics["protocol"]["responses"]["path"] == str(responses)
    assert metrics["protocol"]["judge"]["model"] == "stub"
    files = b"".join(p.read_bytes() for p in (tmp_path / "out").iterdir())
    assert b"sk-cli-secret-31f" not in files


def test_missing_description_is_a_located_error(shr_world, tmp_path, captions):
    partial = dict(list(captions.items())[:2])
    path = tmp_path / "partial.json"
    path.write_text(json.dumps(partial))
    with pytest.raises(DataError, match="no description for 3 SHR image"):
        run_shr(ShrConfig.from_dict(dict(data_root=str(shr_world), responses=str(path), run_dir=str(tmp_path / "o"),
                          judge="oracle", progress=False)))


def test_shr_judge_command_reports_bad_input(shr_world, tmp_path, capsys):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"2": 5}))
    assert main(["shr-judge", str(path), "-p", "data_root", str(shr_world), "-p", "judge", "oracle",
                 "-p", "run_dir", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "record '2'" in err and len(err.strip().splitlines()) == 1


def test_the_old_override_forms_answer_with_the_new_one(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["shr", "--params", "x.yaml", "--set", "num_runs=3", "--json"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.endswith("hadpo shr -f x.yaml -p num_runs 3 --json")


def test_config_rejects_unknown_and_bad_values():
    with pytest.raises(ParamsError, match="judge"):
        ShrConfig.from_dict({"judge": "gpt"})
    with pytest.raises(ParamsError, match="'temperature' \\(did you mean"):
        ShrConfig.from_dict({"temperature": 0.7})
    with pytest.raises(ParamsError, match="num_runs"):
        ShrConfig.from_dict({"num_runs": 0})
    with pytest.raises(ParamsError, match="unknown parameter"):
        ShrConfig.from_dict({"beams": 5})


def test_shr_command_reads_a_params_file(shr_world, tmp_path, capsys, captions):
    responses = tmp_path / "responses.json"
    responses.write_text(json.dumps(captions))
    params = tmp_path / "shr.yaml"
    params.write_text(f"data_root: {shr_world}\njudge: oracle\nresponses: {responses}\nprogress: false\n")
    assert main(["shr", "-f", str(params), "-p", "run_dir", str(tmp_path / "o"), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    # the oracle finds exactly the planted absent object in every image
    assert printed["run1"]["hal_sents_per_image"] == 1.0 and printed["run1"]["num_images"] == 5
    assert "protocol" not in printed and (tmp_path / "o" / "metrics.json").is_file()


def test_force_judges_again_and_keeps_the_earlier_results_and_the_inputs(shr_world, tmp_path, captions):
    run_dir = tmp_path / "o"
    run_dir.mkdir()
    responses = run_dir / "responses.json"  # an input inside the run folder stays where the config says
    responses.write_text(json.dumps(captions))
    cfg = ShrConfig.from_dict(dict(data_root=str(shr_world), judge="oracle", responses=str(responses),
                                   run_dir=str(run_dir), progress=False))
    first = run_shr(cfg)
    earlier = (run_dir / "judgement.json").read_text()
    forced = run_shr(cfg.replace(force=True))
    assert forced["run1"] == first["run1"]  # the same descriptions judged by the same oracle
    (replaced,) = run_dir.glob("replaced-*")
    assert (replaced / "judgement.json").read_text() == earlier and (replaced / "metrics.json").is_file()
    assert responses.is_file() and not (replaced / "responses.json").exists()
    assert (run_dir / "judgement.json").is_file() and (run_dir / "metrics.json").is_file()


def test_the_original_protocol_is_one_switch_away(shr_world, tmp_path, monkeypatch, captions):
    """A user's template file, the original's slot format, reading and counting, and the original's judge settings."""
    responses = tmp_path / "responses.json"
    responses.write_text(json.dumps(captions))
    template = tmp_path / "their_prompt.txt"
    template.write_text("\nRegions:\n{}\n\nFacts:\n{}\n\nComments:\n{}\n")

    def answer(body: dict) -> str:
        comments = body["messages"][0]["content"].split("Comments:\n", 1)[1].strip().splitlines()
        return format_judgement([("correct", "checked")] * (len(comments) - 1) + [("hallucination", "absent")])

    with StubChatServer(answer) as server:
        assert main(["shr-judge", str(responses), "-p", "data_root", str(shr_world), "-p", "run_dir",
                     str(tmp_path / "out"), "-p", "judge", "openai", "-p", "base_url", server.url, "-p", "api_key_env",
                     "", "-p", "progress", "False", "-p", "judge_prompt", str(template), "-p", "judge_format",
                     "original", "-p", "counting", "original", "-p", "judge_model", "gpt-4", "-p",
                     "judge_temperature", "0.7", "-p", "judge_max_tokens", "800", "-y", 'judge_stop: ["###"]',
                     "-p", "judge_seed", "None"]) == 0
        bodies = [b for b in server.requests if "Comments:" in b["messages"][0]["content"]]
    first = load_shr_inputs(shr_world)[0]
    body = next(b for b in bodies if captions[first.image_id].split(".")[0] in b["messages"][0]["content"])
    assert (body["model"], body["temperature"], body["max_tokens"], body["stop"]) == ("gpt-4", 0.7, 800, ["###"])
    assert "seed" not in body
    prompt = body["messages"][0]["content"]
    assert prompt.startswith("\nRegions:\n[") and prompt.endswith("\n\n")  # the template, used verbatim
    assert "1. " + captions[first.image_id].split(".")[0].strip() + "\n" in prompt  # no period after a sentence
    metrics = read_json(tmp_path / "out" / "metrics.json")
    judging = metrics["protocol"]["judging"]
    assert judging["judge_prompt"]["source"] == str(template) and len(judging["judge_prompt"]["sha256"]) == 64
    assert (judging["judge_format"], judging["counting"]) == ("original", "original")
    judge = metrics["protocol"]["judge"]
    assert (judge["model"], judge["temperature"], judge["max_tokens"], judge["stop"]) == ("gpt-4", 0.7, 800, ["###"])
    assert metrics["counting"] == "original" and metrics["run1"]["hal_sents_per_image"] == 1.0


def test_the_notebook_table_names_the_model_and_shows_ratios_in_percent(tmp_path) -> None:
    from hadpo.eval.shr.stage import results_table

    run = {"num_images": 8, "num_unjudged": 0, "num_skipped": 0, "sents_per_image": 2.0, "words_per_image": 16.0,
           "hal_sents_per_image": 2.0, "hal_words_ratio": 1.0}
    metrics = {"run1": run, "mean_hal_ratio": 1.0, "gram-1-repetition": 0.5625, "gram-4-repetition": 0.692,
               "complete": True}
    cfg = ShrConfig.from_dict({"data_root": str(tmp_path), "model": str(tmp_path / "model"), "judge": "oracle",
                               "adapter": str(tmp_path / "adapter")})
    row = results_table(cfg, metrics).frame.to_dict("records")[0]
    assert row["Model"] == str(tmp_path / "model") and row["Adapter"] == str(tmp_path / "adapter")
    assert row["SHR (%)"] == 100.0 and row["1-gram rep (%)"] == pytest.approx(56.25)
    assert row["judged"] == 8 and isinstance(row["judged"], int) and row["complete"] == "yes"
