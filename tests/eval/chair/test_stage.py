"""The CHAIR stage on a small shapes world with the untrained tiny LLaVA: resumable, recorded, scored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hadpo.errors import DataError, ParamsError
from hadpo.eval.chair.config import ChairConfig
from hadpo.eval.chair.inputs import load_chair_images, sample_ids
from hadpo.eval.chair.stage import DESCRIPTIONS_FILE, METRICS_FILE, SCORES_FILE, results_table, run_chair
from hadpo.eval.chair.synonyms import load_synonyms
from hadpo.io import read_jsonl
from hadpo.world.chair_world import chair_files


@pytest.fixture(scope="module")
def bench_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hadpo.world import WorldConfig, generate_world

    return generate_world(tmp_path_factory.mktemp("chair_world") / "data",
                          WorldConfig(seed=5, train_images=1, pope_images=0, shr_images=1, bench_images=6))


def _config(world: Path, run_dir: Path, model: Path, **extra) -> ChairConfig:
    files = chair_files(world)
    values = dict(
        data_root=str(world), instances=str(files["instances"]), captions=str(files["captions"]),
        images_dir=str(files["images_dir"]), synonyms=str(files["synonyms"]), num_images=4, image_seed=1,
        model=str(model), device="cpu", max_new_tokens=6, batch_size=3, run_dir=str(run_dir), progress=False)
    return ChairConfig.from_dict({**values, **extra})


def test_the_worlds_ground_truth_is_its_objects(bench_world):
    files = chair_files(bench_world)
    table = load_synonyms(files["synonyms"])
    images = load_chair_images(files["instances"], files["captions"], files["images_dir"], table, num_images=None,
                               seed=0)
    meta = json.loads((bench_world / "world.json").read_text())
    assert len(images) == 6 == meta["counts"]["images"]["bench"]
    instances = json.loads(files["instances"].read_text())
    names = {c["id"]: c["name"] for c in instances["categories"]}
    for image in images:
        annotated = {names[a["category_id"]] for a in instances["annotations"] if str(a["image_id"]) == image.image_id}
        assert set(image.truth) == annotated and image.path.is_file()
    assert sample_ids([3, 1, 2], 2, seed=0) == sample_ids([1, 2, 3], 2, seed=0)  # the file order does not matter


def test_stage_describes_scores_and_resumes(bench_world, tiny_model_dir, tmp_path):
    cfg = _config(bench_world, tmp_path / "run", tiny_model_dir)
    metrics = run_chair(cfg)
    run = tmp_path / "run"
    described = read_jsonl(run / DESCRIPTIONS_FILE)
    scores = read_jsonl(run / SCORES_FILE)
    assert len(described) == len(scores) == 4 == metrics["images"] and metrics["complete"] is True
    assert [s["image_id"] for s in scores] == metrics["protocol"]["data"]["image_ids"]
    mentions = sum(len(s["mentions"]) for s in scores)
    hallucinated = sum(len(s["hallucinated"]) for s in scores)
    assert metrics["chair_i"] == (hallucinated / mentions if mentions else 0.0)
    assert metrics["protocol"]["describe"]["instruction"] == "Please describe this image in detail."
    # A rerun loads no model and rewrites the same numbers; another decoding protocol is refused.
    before = (run / DESCRIPTIONS_FILE).read_bytes()
    assert run_chair(cfg)["chair_i"] == metrics["chair_i"]
    assert (run / DESCRIPTIONS_FILE).read_bytes() == before
    with pytest.raises(ParamsError, match="decoding"):
        run_chair(cfg.replace(num_beams=2, num_images=5))
    table = results_table(cfg, metrics)
    assert "CHAIR_i (%)" in table._repr_html_() and "none" in table._repr_html_()


def test_a_responses_file_is_scored_without_a_model(bench_world, tmp_path):
    cfg = _config(bench_world, tmp_path / "run", Path("/nonexistent-model"), num_images=2)
    files = chair_files(bench_world)
    table = load_synonyms(files["synonyms"])
    images = load_chair_images(files["instances"], files["captions"], files["images_dir"], table, num_images=2,
                               seed=1)
    first, second = images
    absent = next(c for c in table.categories if c not in first.truth)
    responses = {first.image_id: f"There is a {first.truth[0]}. There is a {absent}.",
                 second.image_id: "It is dark."}
    path = tmp_path / "responses.json"
    path.write_text(json.dumps(responses))
    metrics = run_chair(cfg.replace(responses=str(path)))
    # 2 mentions in the first description, one of them absent; none in the second.
    assert metrics["chair_i"] == 0.5 and metrics["chair_s"] == 0.5
    assert metrics["recall"] == pytest.approx(1 / (len(first.truth) + len(second.truth)))
    path.write_text(json.dumps({first.image_id: "x"}))
    with pytest.raises(DataError, match="no description"):
        run_chair(cfg.replace(responses=str(path), force=True))
    # force set the earlier results aside (never deleted) before the bad file stopped the run
    assert [p.name for p in (tmp_path / "run").glob("replaced-*/" + METRICS_FILE)] == [METRICS_FILE]


def test_two_torchrun_ranks_write_what_one_process_writes(bench_world, tiny_model_dir, tmp_path):
    """The real launcher: ``torchrun --nproc_per_node 2 -m hadpo.cli chair`` (gloo on the CPU) splits the images,
    rank 0 merges the rank files and scores; the result is the single process's, byte for byte."""
    import os
    import subprocess
    import sys

    from hadpo.distributed import free_port

    single = _config(bench_world, tmp_path / "single", tiny_model_dir, num_images=5)
    run_chair(single)
    args = ["-p", "data_root", single.data_root]
    for key in ("instances", "captions", "images_dir", "synonyms"):
        args += ["-p", key, str(getattr(single, key))]
    args += ["-p", "num_images", "5", "-p", "image_seed", "1", "-p", "model", str(tiny_model_dir), "-p", "device",
             "cpu", "-p", "max_new_tokens", "6", "-p", "batch_size", "3", "-p", "run_dir", str(tmp_path / "two"),
             "-p", "progress", "False"]
    torchrun = Path(sys.executable).parent / "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([str(torchrun), "--nproc_per_node", "2", "--master_port", str(free_port()), "-m",
                           "hadpo.cli", "chair", *args], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "two" / DESCRIPTIONS_FILE).read_bytes() == (tmp_path / "single" / DESCRIPTIONS_FILE).read_bytes()
    assert (tmp_path / "two" / SCORES_FILE).read_bytes() == (tmp_path / "single" / SCORES_FILE).read_bytes()
    assert not list((tmp_path / "two").glob("descriptions.rank*.jsonl"))
    assert done.stdout.count("CHAIR_i (%)") == 1  # rank 0 alone prints
