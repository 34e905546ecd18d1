"""CHAIR on hand-worked descriptions: each mention, each number."""

from __future__ import annotations

import pytest

from hadpo.eval.chair.metrics import ChairItem, chair_metrics, score_description, table_row
from hadpo.eval.chair.synonyms import parse_synonyms

TABLE = parse_synonyms("dog: dog\ncat: cat\nperson: person, man, woman\ncar: car\nbench: bench\n", "t")


def test_hand_worked_chair():
    # Image a: truth {dog, person}. "A man and a dog sit on a bench. The dog looks at a cat."
    #   mentions: person (man), dog, bench, dog, cat → 5; hallucinated: bench, cat → 2; covered: dog, person.
    a = score_description("a", "A man and a dog sit on a bench. The dog looks at a cat.", ["dog", "person"], TABLE)
    assert a.mentions == ("person", "dog", "bench", "dog", "cat")
    assert a.hallucinated == ("bench", "cat") and a.covered == ("dog", "person") and a.words == 15
    # Image b: truth {car, person, dog}. "A woman stands by a car." mentions: person, car → 2; none hallucinated;
    #   covered: car, person (dog missed).
    b = score_description("b", "A woman stands by a car.", ["car", "person", "dog"], TABLE)
    assert b.hallucinated == () and b.covered == ("car", "person") and b.words == 6
    m = chair_metrics([a, b])
    # CHAIR_i = 2 / (5 + 2) = 0.2857; CHAIR_s = 1 / 2; recall = (2 + 2) / (2 + 3) = 0.8;
    # words/desc = (15 + 6) / 2 = 10.5; mentions/desc = 7 / 2; objects/desc = (4 distinct + 2) / 2 = 3.
    assert m["chair_i"] == pytest.approx(2 / 7)
    assert m["chair_s"] == 0.5 and m["recall"] == pytest.approx(0.8)
    assert m["words_per_description"] == 10.5 and m["mentions_per_description"] == 3.5
    assert m["objects_per_description"] == 3 and m["images"] == 2 and m["hallucinated_mentions"] == 2
    row = table_row(m)
    assert row["CHAIR_i (%)"] == pytest.approx(100 * 2 / 7) and row["images"] == 2


def test_a_description_without_objects_counts_zero_not_nan():
    item = score_description("c", "It is a sunny day.", ["dog"], TABLE)
    m = chair_metrics([item])
    assert m["chair_i"] == 0.0 and m["mentions"] == 0 and m["recall"] == 0.0


def test_records_round_trip():
    item = score_description("a", "A dog and a cat.", ["dog"], TABLE)
    assert ChairItem.from_record(item.record()) == item
