"""The AMBER stage on a small shapes world with the untrained tiny LLaVA: described, answered, scored, resumed,
recorded; responses files scored without a model; the command lines; two torchrun ranks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hadpo.data.amber_files import read_amber_annotations, read_amber_queries, release_files
from hadpo.data.layout import DataLayout
from hadpo.errors import DataError, ParamsError
from hadpo.eval.amber.config import AmberConfig
from hadpo.eval.amber.stage import (
    DISCRIMINATIVE_DIR,
    GENERATIVE_FILE,
    METRICS_FILE,
    SCORES_FILE,
    results_table,
    run_amber,
)
from hadpo.eval.pope.infer import ProtocolMismatchError
from hadpo.io import read_jsonl


@pytest.fixture(scope="module")
def amber_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hadpo.world import WorldConfig, generate_world

    return generate_world(tmp_path_factory.mktemp("amber_world") / "data",
                          WorldConfig(seed=5, train_images=1, pope_images=0, shr_images=1, bench_images=4))


def _config(world: Path, run_dir: Path, model: Path | str, **extra) -> AmberConfig:
    values = dict(data_root=str(world), run_dir=str(run_dir), model=str(model), device="cpu", max_new_tokens=6,
                  answer_max_new_tokens=3, batch_size=4, limit=2, progress=False)
    return AmberConfig.from_dict({**values, **extra})


def _annotations(world: Path) -> dict:
    return read_amber_annotations(release_files(DataLayout(world).amber_data)["annotations"])


def _no_model(*args, **kwargs):
    raise AssertionError("a model was loaded")


def test_stage_describes_answers_scores_and_resumes(amber_world, tiny_model_dir, tmp_path, monkeypatch):
    run = tmp_path / "run"
    cfg = _config(amber_world, run, tiny_model_dir)
    metrics = run_amber(cfg)
    scores = read_jsonl(run / SCORES_FILE)
    annotations = _annotations(amber_world)
    # limit 2 of each kind: 2 descriptions, then 2 attribute, 2 existence and 2 relation questions.
    assert [(s["kind"], s.get("dimension")) for s in scores] == [("generative", None)] * 2 + [
        ("discriminative", d) for d in ("attribute", "attribute", "existence", "existence", "relation", "relation")]
    assert all(s["truth"] == annotations[s["id"]].truth for s in scores if s["kind"] == "discriminative")
    assert metrics["complete"] and metrics["generative"]["descriptions"] == 2
    assert metrics["discriminative"]["all"]["questions"] == 6 and metrics["amber_score"] is not None
    assert metrics["generative"]["object_words"] == sum(s["objects"] for s in scores if s["kind"] == "generative")
    described = read_jsonl(run / GENERATIVE_FILE)
    assert [r["instruction"] for r in described] == ["Describe this image."] * 2  # each query's own text
    assert metrics["protocol"]["describe"]["instruction"] == "per item"
    assert metrics["protocol"]["answer"]["decoding"]["max_new_tokens"] == 3
    assert metrics["protocol"]["answer"]["prompt_variant"] == "raw"
    answers = run / DISCRIMINATIVE_DIR / "answers.jsonl"
    assert sorted(r["question_id"] for r in read_jsonl(answers)) == [s["id"] for s in scores[2:]]

    # A rerun loads no model and rewrites the same numbers.
    monkeypatch.setattr("hadpo.models.loading.load_model", _no_model)
    before = (answers.read_bytes(), (run / GENERATIVE_FILE).read_bytes())
    again = run_amber(cfg)
    assert (again["generative"], again["discriminative"]) == (metrics["generative"], metrics["discriminative"])
    assert (answers.read_bytes(), (run / GENERATIVE_FILE).read_bytes()) == before
    # Another answer protocol, or a question asked differently under the same id, is refused before any answer.
    with pytest.raises(ProtocolMismatchError, match="max_new_tokens"):
        run_amber(cfg.replace(answer_max_new_tokens=5))
    queries = json.loads(release_files(DataLayout(amber_world).amber_data)["queries"].read_text())
    asked = scores[2]["id"]
    edited = tmp_path / "query_all.json"
    edited.write_text(json.dumps([{**q, "query": "Is it there?"} if q["id"] == asked else q for q in queries]))
    with pytest.raises(ProtocolMismatchError, match=f"query {asked} was answered as"):
        run_amber(cfg.replace(queries=str(edited)))
    monkeypatch.undo()
    # Another decoding of the descriptions is refused when one is left to describe.
    with pytest.raises(ParamsError, match="decoding"):
        run_amber(cfg.replace(max_new_tokens=7, limit=3))
    html = results_table(cfg, metrics)._repr_html_()
    assert all(column in html for column in ("CHAIR (%)", "Cog (%)", "F1 existence (%)", "AMBER score", "none"))


def test_a_responses_file_is_scored_without_a_model(amber_world, tmp_path, monkeypatch):
    monkeypatch.setattr("hadpo.models.loading.load_model", _no_model)
    annotations = _annotations(amber_world)
    queries = read_amber_queries(release_files(DataLayout(amber_world).amber_data)["queries"])
    # Every description names its first truth object and one absent object; every answer is "Yes".
    responses = [{"id": q.query_id, "response": (f"A {annotations[q.query_id].truth[0]} and a "
                                                 f"{annotations[q.query_id].hallu[0]}." if
                                                 annotations[q.query_id].generative else "Yes")} for q in queries]
    path = tmp_path / "responses.json"
    path.write_text(json.dumps(responses))
    cfg = _config(amber_world, tmp_path / "run", "/nonexistent-model", responses=str(path), limit=None,
                  rule="exact")
    metrics = run_amber(cfg)
    generative = [a for a in annotations.values() if a.generative]
    # 2 object words per description, one hallucinated (and named: it is a likely hallucination).
    assert metrics["generative"]["chair"] == 0.5 and metrics["generative"]["hal"] == 1.0
    assert metrics["generative"]["cover"] == pytest.approx(len(generative) / sum(len(a.truth) for a in generative))
    assert metrics["generative"]["cog"] == pytest.approx(len(generative) / sum(len(a.hallu) for a in generative))
    # Never "no": precision, recall and F1 of the "no" class are 0; the AMBER score is (100 - 50 + 0) / 2.
    truths = [a.truth for a in annotations.values() if not a.generative]
    assert metrics["discriminative"]["all"]["f1"] == 0.0 and metrics["amber_score"] == 25.0
    assert metrics["discriminative"]["all"]["accuracy"] == pytest.approx(truths.count("yes") / len(truths))
    assert metrics["model_base"] is None and metrics["protocol"]["responses"]["path"] == str(path)
    assert "Responses" in results_table(cfg, metrics)._repr_html_()

    # Only the discriminative part: no AMBER score.
    part = run_amber(cfg.replace(evaluation="discriminative", run_dir=str(tmp_path / "part")))
    assert part["generative"] is None and part["amber_score"] is None
    assert part["discriminative"] == metrics["discriminative"]
    # A file missing answers fails naming the first missing query; force set the earlier results aside first.
    path.write_text(json.dumps(responses[:3]))
    with pytest.raises(DataError, match=f"no response to {len(queries) - 3} of the {len(queries)} all queries"):
        run_amber(cfg.replace(force=True))
    assert [p.name for p in (tmp_path / "run").glob("replaced-*/" + METRICS_FILE)] == [METRICS_FILE]


def test_a_broken_image_stops_the_run_before_any_model_loads(amber_world, tmp_path, monkeypatch):
    monkeypatch.setattr("hadpo.models.loading.load_model", _no_model)
    root = tmp_path / "data"
    shutil.copytree(DataLayout(amber_world).amber_dir, root / "AMBER")
    (root / "AMBER" / "image" / "AMBER_2.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"AMBER_2\.png.*0 bytes"):
        run_amber(_config(root, tmp_path / "run", "/nonexistent-model"))


def test_the_command_lines(amber_world, tmp_path, monkeypatch, capsys):
    from hadpo.cli import main

    monkeypatch.setenv("HADPO_ERROR_LOG", str(tmp_path / "errors.log"))
    annotations = _annotations(amber_world)
    path = tmp_path / "responses.json"
    path.write_text(json.dumps([{"id": k, "response": " ".join(a.truth) if a.generative else a.truth.capitalize()}
                                for k, a in annotations.items()]))
    common = ["-p", "data_root", str(amber_world), "-p", "progress", "False", "-p", "rule", "exact"]
    assert main(["amber-score", str(path), *common, "-p", "run_dir", str(tmp_path / "score")]) == 0
    out = capsys.readouterr().out
    assert "CHAIR (%): 0.0" in out and "AMBER score: 100.0" in out
    assert json.loads((tmp_path / "score" / METRICS_FILE).read_text())["amber_score"] == 100.0
    assert main(["amber", *common, "-p", "responses", str(path), "-p", "run_dir", str(tmp_path / "amber"),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["amber_score"] == 100.0
    assert main(["amber-score", str(tmp_path / "missing.json"), *common]) == 1
    assert "file not found" in capsys.readouterr().err


def test_two_torchrun_ranks_write_what_one_process_writes(amber_world, tiny_model_dir, tmp_path):
    """The real launcher: ``torchrun --nproc_per_node 2 -m hadpo.cli amber`` (gloo on the CPU) splits the images,
    rank 0 merges the rank files and scores; the result is the single process's, byte for byte."""
    import os
    import subprocess
    import sys

    from hadpo.distributed import free_port

    single = _config(amber_world, tmp_path / "single", tiny_model_dir, limit=3)
    run_amber(single)
    values = {"data_root": amber_world, "model": tiny_model_dir, "device": "cpu", "max_new_tokens": 6,
              "answer_max_new_tokens": 3, "batch_size": 4, "limit": 3, "run_dir": tmp_path / "two", "progress": False}
    args = [a for key, value in values.items() for a in ("-p", key, str(value))]
    torchrun = Path(sys.executable).parent / "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([str(torchrun), "--nproc_per_node", "2", "--master_port", str(free_port()), "-m",
                           "hadpo.cli", "amber", *args], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    for name in (GENERATIVE_FILE, f"{DISCRIMINATIVE_DIR}/answers.jsonl", SCORES_FILE):
        assert (tmp_path / "two" / name).read_bytes() == (tmp_path / "single" / name).read_bytes(), name
    assert not list((tmp_path / "two").rglob("*.rank*.jsonl"))
    assert done.stdout.count("CHAIR (%)") == 1  # rank 0 alone prints
