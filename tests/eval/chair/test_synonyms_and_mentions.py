"""The synonym table's file format and the mention matcher, worked by hand."""

from __future__ import annotations

import pytest

from hadpo.errors import DataError
from hadpo.eval.chair.mentions import find_mentions, text_words
from hadpo.eval.chair.synonyms import NOT_AN_OBJECT, load_synonyms, parse_synonyms

TABLE = """
# a comment
dog: dog, puppy
hot dog: hot dog, hotdog
person: person, people, man, men
sports ball: ball, baseball
baseball bat: baseball bat
-: baseball field
"""


def test_the_table_reads_categories_phrases_and_the_not_an_object_entries():
    table = parse_synonyms(TABLE, "t.txt")
    assert table.categories == ("dog", "hot dog", "person", "sports ball", "baseball bat")
    assert table.phrases[("hot", "dog")] == "hot dog"
    assert table.phrases[("baseball", "field")] == NOT_AN_OBJECT
    assert table.longest == 2
    assert parse_synonyms(table.to_text(), "again").phrases == table.phrases


def test_a_phrase_naming_two_categories_is_an_error_naming_both_lines(tmp_path):
    with pytest.raises(DataError, match=r"record 'line 2': phrase 'dog' names 'dog' \(line 1\) and 'cat'"):
        parse_synonyms("dog: dog\ncat: cat, dog\n", "t.txt")
    with pytest.raises(DataError, match="line 1"):
        parse_synonyms("no colon here\n", "t.txt")
    with pytest.raises(DataError, match="synonym table not found"):
        load_synonyms(tmp_path / "missing.txt")


def test_plurals_fold_only_onto_table_words():
    table = parse_synonyms("bus: bus\nglass: glass\nperson: person\nknife: knife\n", "t")
    # "buses" → "bus" and "knives" → "knife" (table words); "bus", "glass" stay; "is"/"this" are never touched.
    assert text_words("This is a bus, two buses, a glass and knives.", table) == [
        "this", "is", "a", "bus", "two", "bus", "a", "glass", "and", "knife"]


def test_mentions_take_the_longest_phrase_and_set_aside_non_objects():
    table = parse_synonyms(TABLE, "t.txt")
    text = "A man eats a hot dog near two dogs. The men play on the baseball field with a baseball bat and a ball."
    # man → person; "hot dog" (not dog); dogs → dog; men → person; "baseball field" dropped; "baseball bat" (not
    # the ball); ball → sports ball.
    assert [(m.category, m.phrase) for m in find_mentions(text, table)] == [
        ("person", "man"), ("hot dog", "hot dog"), ("dog", "dog"), ("person", "men"),
        ("baseball bat", "baseball bat"), ("sports ball", "ball")]


def test_the_kits_coco_table_covers_the_80_categories():
    table = load_synonyms("coco")
    assert len(table.categories) == 80
    assert {"person", "dining table", "tv", "hair drier", "teddy bear", "sports ball"} <= set(table.categories)
    cats = [m.category for m in find_mentions("Two people sit at a table with a teddy bear and a cellphone on the "
                                              "tennis court.", table)]
    assert cats == ["person", "dining table", "teddy bear", "cell phone"]
