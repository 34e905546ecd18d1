"""The shapes-world annotation oracle: labels, reply format, and reading VG-format annotations."""

from __future__ import annotations

import json

from hadpo.eval.shr.judge import ShrItem, ShrProtocol, judge_run
from hadpo.eval.shr.parse import parse_judgement
from hadpo.world.shr_oracle import column_of, oracle_client, oracle_labels, world_objects, world_oracle
from hadpo.world.text import parse_sentence

CATEGORIES = ["red circle", "blue square", "green triangle", "yellow cross"]
OBJECTS = {"7": [("red circle", 0), ("blue square", 1)]}


def parse(sentence: str):
    return parse_sentence(sentence, CATEGORIES)


def test_labels_follow_object_and_column():
    sentences = [
        "There is a red circle on the left.",  # there, right column
        "There is a blue square on the right.",  # there, wrong column
        "There is a green triangle in the middle.",  # absent
        "The picture looks calm.",  # names no object
        "There is a red circle.",  # no column named: presence is enough
        "There is no yellow cross in the image.",  # a denial claims nothing
    ]
    labels = [label for label, _ in oracle_labels(sentences, OBJECTS["7"], parse)]
    assert labels == ["correct", "hallucination", "hallucination", "cannot judge", "correct", "cannot judge"]
    reasons = dict(enumerate(r for _, r in oracle_labels(sentences, OBJECTS["7"], parse)))
    assert reasons[1] == "the blue square is in the middle, not on the right"


def test_reply_parses_with_the_llm_parser_and_judges():
    client = oracle_client(OBJECTS, parse)
    item = ShrItem("7", "There is a red circle on the left. There is a green triangle.", (), ())
    run = judge_run([item], client)
    assert run["7"]["status"] == "judged"
    assert [s["classification"] for s in run["7"]["judgement"]] == ["correct", "hallucination"]
    assert parse_judgement(run["7"]["raw_judgement"], 2).ok
    assert client.protocol()["model"] == "shapes-oracle"


def test_unknown_image_is_an_error_reply_then_unjudged():
    run = judge_run([ShrItem("99", "There is a red circle.", (), ())], oracle_client(OBJECTS, parse),
                    protocol=ShrProtocol(max_attempts=2))
    assert run["99"]["status"] == "unjudged" and "no annotations for image 99" in run["99"]["error"]
    assert run["99"]["reason"] == "no reply" and run["99"]["attempts"] == 1  # a failed call is not asked again


def test_columns_are_thirds_of_the_width():
    assert [column_of(x, 12, 48) for x in (2, 18, 34)] == [0, 1, 2]
    assert column_of(40, 20, 48) == 2  # a centre past the edge clamps


def test_world_objects_from_vg_files(tmp_path):
    vg = tmp_path / "VG"
    vg.mkdir()
    (vg / "image_data.json").write_text(json.dumps([
        {"image_id": 7, "url": "https://x/VG_100K/7.png", "width": 48, "height": 48, "coco_id": None},
    ]))
    (vg / "objects.json").write_text(json.dumps([
        {"image_id": 7, "objects": [
            {"object_id": 1, "names": ["red circle"], "x": 2, "y": 18, "w": 12, "h": 12},
            {"object_id": 2, "names": ["blue square"], "x": 34, "y": 2, "w": 12, "h": 12},
        ]},
    ]))
    (tmp_path / "world.json").write_text(json.dumps({"categories": [{"name": n} for n in CATEGORIES]}))
    assert world_objects(tmp_path) == {"7": [("red circle", 0), ("blue square", 2)]}
    client = world_oracle(tmp_path)
    # "green triangle" appears in no image but world.json lists it, so naming it is a hallucination
    run = judge_run([ShrItem("7", "There is a green triangle. There is a blue square on the right.", (), ())],
                    client)
    assert [s["classification"] for s in run["7"]["judgement"]] == ["hallucination", "correct"]
