"""HA-DPO pair construction: the offline sampling replayed by hand, the mixing order, and the 'all' variant."""

from __future__ import annotations

import json
import random

import pytest

from hadpo.data.hadpo_files import DescRecord, PopeRecord, read_desc_data, read_pope_data
from hadpo.data.pairs import PreferencePair, build_hadpo_pairs
from hadpo.errors import DataError
from hadpo.models.prompts import DESCRIPTION_INSTRUCTIONS

DESC = [
    DescRecord("17", ("c17a", "c17b", "c17c"), ("r17a", "r17b", "r17c")),
    DescRecord("4", ("c4a", "c4b"), ("r4a", "r4b", "r4c")),
    DescRecord("99", ("c99a",), ("r99a", "r99b")),
]
POPE = [
    PopeRecord("17", "Is there a cat in the image?", "no", "No, there is no cat.", "Yes, there is a cat.", False),
    PopeRecord("17", "Is there a dog in the image?", "yes", "Yes.", "No.", True),
    PopeRecord("4", "<image>\nIs there a car in the image?", None, "Yes, a car.", "No car.", None),
]


def test_offline_replays_the_original_rng_order() -> None:
    # The original: random.seed(42) once, then per image in file order choice(chosen), choice(rejected),
    # choice(instructions). Replay that on the global-compatible generator by hand.
    rng = random.Random(42)
    expected_desc = []
    for rec in DESC:
        chosen = rng.choice(list(rec.chosen))
        rejected = rng.choice(list(rec.rejected))
        question = rng.choice(list(DESCRIPTION_INSTRUCTIONS))
        expected_desc.append((rec.image_id, question, chosen, rejected, "desc"))
    expected_qa = [
        ("17", "Is there a cat in the image?", "No, there is no cat.", "Yes, there is a cat.", "qa"),
        ("4", "Is there a car in the image?", "Yes, a car.", "No car.", "qa"),
    ]

    pairs = build_hadpo_pairs(DESC, POPE, sampling="offline", seed=42)

    got = [(p.image_id, p.question, p.chosen, p.rejected, p.kind) for p in pairs]
    assert got == expected_qa + expected_desc + expected_desc


def test_offline_matches_module_level_random_seed() -> None:
    # The private generator must give the same draws as the original's global random.seed(42).
    state = random.getstate()
    try:
        random.seed(42)
        draws = [
            (random.choice(r.chosen), random.choice(r.rejected), random.choice(DESCRIPTION_INSTRUCTIONS)) for r in DESC
        ]
    finally:
        random.setstate(state)
    desc = [p for p in build_hadpo_pairs(DESC, [], seed=42)][: len(DESC)]
    assert [(p.chosen, p.rejected, p.question) for p in desc] == draws


def test_offline_pairs_record_their_source() -> None:
    pairs = build_hadpo_pairs(DESC, POPE, desc_file="d.json", pope_file="p.json")
    assert pairs[0] == PreferencePair(
        "17", "Is there a cat in the image?", "No, there is no cat.", "Yes, there is a cat.", "qa", "p.json", "0"
    )
    assert pairs[1].record == "2"  # list index of the kept record, not of the kept list
    desc = pairs[2]
    assert desc.source == "d.json"
    i = DESC[0].chosen.index(desc.chosen)
    j = DESC[0].rejected.index(desc.rejected)
    assert desc.record == f"17 chosen[{i}] rejected[{j}]"


def test_offline_reads_released_formats(tmp_path) -> None:
    # End to end through the file readers: a dict keyed by image id keeps file order (not sorted order).
    desc_path, pope_path = tmp_path / "desc_data.json", tmp_path / "pope_data.json"
    desc_path.write_text(
        json.dumps({r.image_id: {"chosen": list(r.chosen), "rejected": list(r.rejected)} for r in DESC})
    )
    pope_path.write_text(
        json.dumps(
            [
                {
                    "image_id": 17,
                    "question": "Is there a cat?",
                    "answer": "no",
                    "chosen": "No.",
                    "reject": "Yes.",
                    "correct": False,
                }
            ]
        )
    )
    from_files = build_hadpo_pairs(read_desc_data(desc_path), read_pope_data(pope_path))
    from_records = build_hadpo_pairs(DESC, [])
    assert [p.image_id for p in from_files] == ["17", "17", "4", "99", "17", "4", "99"]
    assert [(p.chosen, p.rejected, p.question) for p in from_files[1:]] == [
        (p.chosen, p.rejected, p.question) for p in from_records
    ]


def test_all_pairs_same_index_rewrites_once_each() -> None:
    rng = random.Random(7)
    expected = []
    for rec in DESC:
        for c, r in zip(rec.chosen, rec.rejected, strict=False):
            expected.append((rec.image_id, rng.choice(DESCRIPTION_INSTRUCTIONS), c, r))

    pairs = build_hadpo_pairs(DESC, POPE, sampling="all", seed=7)

    assert [p.kind for p in pairs] == ["qa", "qa"] + ["desc"] * 6  # 3 + 2 + 1: extras of the longer list dropped
    assert [(p.image_id, p.question, p.chosen, p.rejected) for p in pairs[2:]] == expected
    assert pairs == build_hadpo_pairs(DESC, POPE, sampling="all", seed=7)


def test_empty_rewrite_list_is_a_located_error() -> None:
    bad = [*DESC, DescRecord("5", (), ("r",))]
    with pytest.raises(DataError, match=r"d\.json.*record '5'.*field 'chosen'"):
        build_hadpo_pairs(bad, [], desc_file="d.json")


def test_unknown_sampling_is_rejected() -> None:
    with pytest.raises(ValueError, match="sampling"):
        build_hadpo_pairs(DESC, POPE, sampling="cross")  # type: ignore[arg-type]
