"""AMBER's files read as released (errors name file, record and field), the world's AMBER, and the stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hadpo.data.amber_files import read_amber_annotations, read_amber_queries
from hadpo.errors import DataError
from hadpo.eval.amber.config import AmberConfig
from hadpo.eval.amber.stage import SCORES_FILE, load_inputs, results_table, run_amber
from hadpo.io import read_jsonl


@pytest.fixture(scope="module")
def amber_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hadpo.world import WorldConfig, generate_world

    return generate_world(tmp_path_factory.mktemp("amber_world") / "data",
                          WorldConfig(seed=5, train_images=1, pope_images=0, shr_images=1, bench_images=4))


def test_reader_errors_name_the_file_record_and_field(tmp_path):
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps([{"id": 1, "type": "generative", "truth": ["dog"], "hallu": []},
                                {"id": 3, "type": "discriminative-hallucination", "truth": "yes"}]))
    with pytest.raises(DataError, match=r"record 1.*field 'id'.*must be 2"):
        read_amber_annotations(path)
    path.write_text(json.dumps([{"id": 1, "type": "discriminative-relation", "truth": "maybe"}]))
    with pytest.raises(DataError, match="'yes' or 'no'"):
        read_amber_annotations(path)
    queries = tmp_path / "query_all.json"
    queries.write_text(json.dumps([{"id": 1, "image": "AMBER_1.jpg", "query": "Describe this image."},
                                   {"id": 1, "image": "AMBER_1.jpg", "query": "Again?"}]))
    with pytest.raises(DataError, match="duplicate query id 1"):
        read_amber_queries(queries)


def test_the_worlds_amber_scores_a_perfect_answer_perfectly_and_a_partner_as_a_hallucination(amber_world, tmp_path):
    cfg = AmberConfig.from_dict(dict(data_root=str(amber_world), run_dir=str(tmp_path / "run"), progress=False))
    inputs = load_inputs(cfg)
    world = json.loads((amber_world / "world.json").read_text())
    shapes = {c["name"]: c["shape"] for c in world["categories"]}
    perfect: dict[int, str] = {}
    partner: dict[int, str] = {}
    for query in inputs.queries:
        annotation = inputs.annotations[query.query_id]
        if annotation.generative:
            perfect[query.query_id] = " ".join(f"There is a {w}." for w in annotation.truth)
            partner[query.query_id] = perfect[query.query_id] + f" There is a {annotation.hallu[0]}."
        else:
            perfect[query.query_id] = partner[query.query_id] = annotation.truth.capitalize()
    assert set(shapes.values()) >= {w for q in inputs.queries for w in inputs.annotations[q.query_id].truth
                                    if inputs.annotations[q.query_id].generative}
    for name, answers in (("perfect", perfect), ("partner", partner)):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps([{"id": i, "response": r} for i, r in answers.items()]))
        metrics = run_amber(cfg.replace(responses=str(path), run_dir=str(tmp_path / name)))
        gen, dis = metrics["generative"], metrics["discriminative"]
        assert gen["cover"] == 1.0 and dis["all"]["accuracy"] == 1.0 and dis["all"]["f1"] == 1.0
        if name == "perfect":
            assert gen["chair"] == 0 and gen["hal"] == 0 and gen["cog"] == 0 and metrics["amber_score"] == 100
        else:  # one named partner per description: every description hallucinates, Cog counts it
            assert gen["hal"] == 1.0 and gen["cog"] > 0 and gen["chair"] > 0
    assert {r["dimension"] for r in read_jsonl(tmp_path / "perfect" / SCORES_FILE) if r["kind"] != "generative"} == {
        "existence", "attribute", "relation"}


def test_stage_describes_answers_scores_and_resumes(amber_world, tiny_model_dir, tmp_path):
    cfg = AmberConfig.from_dict(dict(data_root=str(amber_world), run_dir=str(tmp_path / "run"), model=str(
        tiny_model_dir), device="cpu", max_new_tokens=6, answer_max_new_tokens=3, batch_size=4, limit=2,
        progress=False))
    metrics = run_amber(cfg)
    scores = read_jsonl(tmp_path / "run" / SCORES_FILE)
    # limit 2 of each kind: 2 descriptions, 2 existence, 2 attribute, 2 relation questions
    assert len(scores) == 8 and metrics["generative"]["descriptions"] == 2 and metrics["complete"]
    assert metrics["discriminative"]["all"]["questions"] == 6
    before = (tmp_path / "run" / "discriminative" / "answers.jsonl").read_bytes()
    again = run_amber(cfg)
    assert again["generative"] == metrics["generative"]
    assert (tmp_path / "run" / "discriminative" / "answers.jsonl").read_bytes() == before
    html = results_table(cfg, metrics)._repr_html_()
    assert "CHAIR (%)" in html and "Cog (%)" in html
