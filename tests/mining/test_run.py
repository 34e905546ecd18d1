"""Mining end to end on the shapes world: planted descriptions, the oracle judge, the tiny model answering."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hadpo.data.hadpo_files import read_desc_data, read_pope_data
from hadpo.data.pairs import build_hadpo_pairs
from hadpo.errors import ParamsError
from hadpo.eval.pope.score import parse_pope
from hadpo.eval.shr.sentences import split_sentences
from hadpo.io import atomic_write_jsonl, read_json, read_jsonl
from hadpo.mining.annotations import load_annotations
from hadpo.mining.config import DataConfig
from hadpo.mining.leak import load_eval_images
from hadpo.mining.mine import mine
from hadpo.mining.select import select_images
from hadpo.mining.stage import pair_previews, preview_pairs
from hadpo.world.mining_oracle import mining_oracle
from hadpo.world.shr_oracle import world_categories, world_objects
from hadpo.world.text import parse_sentence


def config(root: Path, run_dir: Path, model: Path, **kw) -> DataConfig:
    base = {"source": "mine", "data_root": str(root), "run_dir": str(run_dir), "model": str(model),
            "judge": "oracle", "n_images": 6, "min_objects": 1, "max_objects": 3, "min_regions": 1, "device": "cpu",
            "num_beams": 1, "max_new_tokens": 6, "qa_max_new_tokens": 8, "batch_size": 4, "chunk_size": 4,
            "progress": False, "name": "mined"}
    return DataConfig.from_dict(dict(**{**base, **kw}))


def plant(cfg: DataConfig, planted_descriptions) -> dict[str, str]:
    """Write descriptions for the images the run will select, so the describe step finds them done."""
    selection = select_images(cfg, load_annotations(cfg.data_root), load_eval_images(cfg.data_root))
    ids = [str(im["image_id"]) for im in selection["images"]]
    texts = planted_descriptions(Path(cfg.data_root), ids)
    atomic_write_jsonl(Path(cfg.run_dir) / "descriptions.jsonl",
                       [{"image_id": i, "response": texts[i], "num_tokens": 0} for i in ids])
    return texts


def requests(client) -> int:
    """Requests a chat client answered."""
    return client.faults()["requests"]


def without_calls(stats: dict) -> dict:
    """The stats without the judge's request counts of the invocation that wrote them."""
    return {**stats, "judge": {k: v for k, v in stats["judge"].items() if k != "calls"}}


@pytest.fixture(scope="module")
def mined(mining_world, tiny_model_dir, tiny_loaded, tmp_path_factory, planted_descriptions):
    """A mining run on a copy of the world (its outputs go under the data root)."""
    import shutil

    root = tmp_path_factory.mktemp("mined") / "data"
    shutil.copytree(mining_world, root)
    cfg = config(root, root.parent / "run", tiny_model_dir)
    texts = plant(cfg, planted_descriptions)
    client = mining_oracle(root)
    stats = mine(cfg, client=client, loaded=tiny_loaded)
    return cfg, texts, stats, client


def test_outputs_are_in_the_released_schema_and_load_for_training(mined):
    cfg, texts, stats, _ = mined
    desc_path, pope_path = Path(stats["files"]["desc_data"]), Path(stats["files"]["pope_data"])
    assert desc_path == Path(cfg.data_root) / "hadpo" / "mined" / "desc_data.json"
    raw = read_json(desc_path)
    hallucinating = [i for n, i in enumerate(texts) if n % 2 == 0]
    assert list(raw) == hallucinating  # one entry per image with a hallucination, in selection order
    assert all(set(v) == {"chosen", "rejected"} and len(v["chosen"]) == len(v["rejected"]) == 3 for v in raw.values())
    pope = read_json(pope_path)
    assert pope and all(set(r) == {"image_id", "question", "answer", "chosen", "reject", "correct"} for r in pope)
    assert all(isinstance(r["image_id"], int) and r["answer"] in ("yes", "no") for r in pope)
    desc, qa = read_desc_data(desc_path), read_pope_data(pope_path)
    offline = build_hadpo_pairs(desc, qa, "offline")
    assert sum(p.kind == "desc" for p in offline) == 2 * len(desc)
    assert stats["pairs"]["offline"] == {"desc": 2 * len(desc), "qa": sum(1 for r in qa if not r.correct),
                                         "total": 2 * len(desc) + sum(1 for r in qa if not r.correct)}
    assert stats["pairs"]["all"]["desc"] == 3 * len(desc)
    previews = pair_previews(cfg, n=2)
    assert [p.kind for p in previews] == ["desc", "desc", "qa", "qa"][: len(previews)] and len(previews) >= 2
    # The judge's hallucinated sentences of each previewed image are known, and shown whole in the page.
    assert all(p.hallucinated for p in previews if p.kind == "desc")
    page = preview_pairs(cfg, n=2)._repr_html_()
    assert previews[0].rejected.split(".")[0] in page and 'class="hal"' in page
    manifest = read_json(desc_path.parent / "mining.json")
    assert manifest["judge"]["model"] == "shapes-mining-oracle" and manifest["config"]["name"] == "mined"


def test_pairs_differ_in_facts_not_style(mined):
    cfg, _, _, _ = mined
    objects = world_objects(cfg.data_root)
    names = world_categories(cfg.data_root, objects)
    for image_id, record in read_json(Path(cfg.data_root) / "hadpo" / "mined" / "desc_data.json").items():
        present = {name for name, _ in objects[image_id]}
        for chosen, rejected in zip(record["chosen"], record["rejected"], strict=True):
            chosen_claims = [parse_sentence(s, names) for s in split_sentences(chosen)]
            rejected_claims = [parse_sentence(s, names) for s in split_sentences(rejected)]
            assert all(c is None or c[0] in present for c in chosen_claims)
            assert any(c is not None and c[0] not in present for c in rejected_claims)
            # the positive's sentences, phrased the same way, are all in the negative
            assert set(split_sentences(chosen)) <= set(split_sentences(rejected))


def test_qa_records_follow_the_model_answers(mined):
    cfg, _, stats, _ = mined
    run_dir = Path(cfg.run_dir)
    answers = {(str(r["image_id"]), r["index"]): r["model_answer"] for r in read_jsonl(run_dir / "qa_answers.jsonl")}
    items = {r["image_id"]: r["items"] for r in read_jsonl(run_dir / "qa_items.jsonl")}
    pope = read_json(Path(stats["files"]["pope_data"]))
    expected = []
    for image_id, qs in items.items():
        for index, item in enumerate(qs):
            expected.append((int(image_id), item["question"], parse_pope(answers[(image_id, index)]) == item["answer"]))
    assert [(r["image_id"], r["question"], r["correct"]) for r in pope] == expected
    assert {r["answer"] for r in pope} == {"yes", "no"}
    assert stats["qa"]["items"] == len(pope) and stats["qa"]["model_correct"] == sum(r["correct"] for r in pope)


def test_stats_count_hallucinations_pairs_and_leaks(mined):
    cfg, texts, stats, _ = mined
    assert read_json(Path(cfg.run_dir) / "data_stats.json") == json.loads(json.dumps(stats))
    images = stats["images"]
    assert images["selected"] == images["described"] == images["judged"] == 6
    assert images["with_hallucination"] == 3 and images["without_hallucination"] == 3
    sentences = sum(len(split_sentences(t)) for t in texts.values())
    assert stats["sentences"]["judged"] == sentences and stats["sentences"]["hallucination"] == 4
    assert stats["sentences"]["hallucination_rate"] == round(4 / sentences, 4)
    assert stats["rewrites"]["mean_per_image"] == 3.0 and stats["leaks"]["total"] == 7
    assert stats["skipped"]["correct"]["count"] == 0 and stats["judge"]["model"] == "shapes-mining-oracle"


def test_rerun_skips_finished_steps_and_redoes_only_what_is_missing(mined, tiny_loaded):
    cfg, _, stats, _ = mined
    desc_path = Path(stats["files"]["desc_data"])
    before = desc_path.read_bytes()
    client = mining_oracle(cfg.data_root)
    again = mine(cfg, client=client)  # no model given: nothing is left to describe or answer, so none is loaded
    assert requests(client) == 0 and desc_path.read_bytes() == before
    assert without_calls(again) == without_calls(stats)
    assert again["judge"]["calls"]["requests"] == 0 and stats["judge"]["calls"]["requests"] > 0
    rewrites = Path(cfg.run_dir) / "rewrites.jsonl"
    lines = rewrites.read_text().splitlines()
    rewrites.write_text("\n".join(lines[:-1]) + "\n")
    client = mining_oracle(cfg.data_root)
    assert without_calls(mine(cfg, client=client, loaded=tiny_loaded)) == without_calls(stats)
    assert requests(client) == 1 and desc_path.read_bytes() == before


def test_changed_settings_are_refused(mined):
    cfg, _, _, _ = mined
    with pytest.raises(ParamsError, match="step 'rewrite' was run with rewrites=3, now 2"):
        mine(cfg.replace(rewrites=2), client=mining_oracle(cfg.data_root))


def test_released_data_is_never_overwritten(mining_world, tiny_model_dir, tmp_path):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(mining_world, root)
    released = root / "hadpo" / "llava-v1.5"
    released.mkdir(parents=True)
    (released / "desc_data.json").write_text("{}")
    with pytest.raises(ParamsError, match="mining did not write"):
        mine(config(root, tmp_path / "run", tiny_model_dir, name="llava-v1.5"))
    with pytest.raises(ParamsError, match="source: mine"):
        mine(config(root, tmp_path / "run", tiny_model_dir, source="released"))


def test_force_mines_again_and_keeps_the_earlier_run_but_never_moves_released_data(
        mining_world, tiny_model_dir, tmp_path, planted_descriptions):
    import shutil

    from hadpo.mining import stage

    root = tmp_path / "data"
    shutil.copytree(mining_world, root)
    cfg = config(root, tmp_path / "run", tiny_model_dir)
    plant(cfg, planted_descriptions)
    first = stage.run(cfg)
    desc, pope = stage.training_files(cfg)
    earlier = desc.read_bytes()

    forced = stage.run(cfg.replace(force=True))
    (run_backup,) = Path(cfg.run_dir).glob("replaced-*")
    assert {"selection.json", "descriptions.jsonl", "corrections.jsonl", "data_stats.json"} <= {
        p.name for p in run_backup.iterdir()}
    (data_backup,) = desc.parent.glob("replaced-*")
    assert sorted(p.name for p in data_backup.iterdir()) == ["desc_data.json", "mining.json", "pope_data.json"]
    assert (data_backup / "desc_data.json").read_bytes() == earlier
    assert desc.is_file() and pope.is_file() and (Path(cfg.run_dir) / "descriptions.jsonl").is_file()
    assert forced["selection"] == first["selection"]  # the same images, now described by the model itself

    released = root / "hadpo" / "llava-v1.5"
    released.mkdir(parents=True)
    (released / "desc_data.json").write_text("{}")
    with pytest.raises(ParamsError, match="mining did not write"):
        stage.run(config(root, tmp_path / "run2", tiny_model_dir, name="llava-v1.5", force=True))
    assert [p.name for p in released.iterdir()] == ["desc_data.json"]


def test_the_model_describes_the_images_that_have_no_description(mining_world, tiny_model_dir, tiny_loaded, tmp_path):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(mining_world, root)
    cfg = config(root, tmp_path / "run", tiny_model_dir, n_images=2, max_new_tokens=4)
    stats = mine(cfg, loaded=tiny_loaded)
    records = read_jsonl(tmp_path / "run" / "descriptions.jsonl")
    assert len(records) == 2 and all(0 < r["num_tokens"] <= 4 for r in records)
    assert read_json(tmp_path / "run" / "descriptions.protocol.json")["decoding"]["max_new_tokens"] == 4
    assert stats["images"]["described"] == stats["images"]["judged"] == 2
