"""The sentence grammar: writers, parsers, and their agreement."""

from __future__ import annotations

import pytest

from hadpo.world.palette import MAX_PAIRS, build_categories
from hadpo.world.text import (
    COLUMNS,
    SENTENCE_STYLES,
    absence_fact,
    article,
    count_fact,
    describe,
    no_answer,
    object_phrase,
    object_sentence,
    parse_description,
    parse_question,
    parse_sentence,
    presence_fact,
    question,
    split_sentences,
    styled_sentence,
    yes_answer,
)

NAMES = [c.name for c in build_categories(MAX_PAIRS)]


def pope_says_no(answer: str) -> bool:
    """POPE's evaluate.py rule: text before the first '.', commas dropped, a 'No'/'not'/'no' word means no."""
    words = answer.split(".")[0].replace(",", "").split(" ")
    return any(w in ("No", "not", "no") for w in words)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("column", range(len(COLUMNS)))
def test_parse_sentence_round_trips_object_sentence(name: str, column: int) -> None:
    assert parse_sentence(object_sentence(name, column), NAMES) == (name, column)


def test_articles_follow_the_first_sound() -> None:
    assert article("orange ring") == "an"
    assert article("red circle") == "a"
    assert object_sentence("orange ring", 1) == "There is an orange ring in the middle."
    assert object_phrase("white heart", 2) == "a white heart on the right"


def test_describe_orders_objects_left_to_right() -> None:
    text = describe([("blue square", 2), ("red circle", 0)])
    assert text == "There is a red circle on the left. There is a blue square on the right."
    assert describe([]) == ""


def test_parse_sentence_tolerates_case_whitespace_and_missing_period() -> None:
    assert parse_sentence("  there IS a Red   Circle on the LEFT  ", NAMES) == ("red circle", 0)
    assert parse_sentence("A green triangle sits in the centre", NAMES) == ("green triangle", 1)
    assert parse_sentence("There is a yellow cross.", NAMES) == ("yellow cross", None)
    # Two column words make the position ambiguous, not wrong.
    assert parse_sentence("A red circle, left of the right edge.", NAMES) == ("red circle", None)


def test_parse_sentence_none_without_a_claimed_object() -> None:
    assert parse_sentence("There is a dark background.", NAMES) is None
    assert parse_sentence("", NAMES) is None
    assert parse_sentence("There is no red circle in the image.", NAMES) is None
    assert parse_sentence("There isn't a blue square here.", NAMES) is None
    assert parse_sentence(absence_fact("cyan star"), NAMES) is None
    # Only names of the given categories count.
    assert parse_sentence("There is a lime bar on the left.", NAMES[:8]) is None


def test_parse_sentence_takes_the_first_mention() -> None:
    assert parse_sentence("There is a blue square next to a red circle on the left.", NAMES) == ("blue square", 0)


def test_parse_description_splits_and_parses_each_sentence() -> None:
    text = "There is a red circle on the left. There is a dark background.  There is a blue square on the right"
    assert parse_description(text, NAMES) == [
        ("There is a red circle on the left.", ("red circle", 0)),
        ("There is a dark background.", None),
        ("There is a blue square on the right", ("blue square", 2)),
    ]
    assert split_sentences("  ") == []


def test_question_and_answers_match_llava_style_and_pope_parsing() -> None:
    assert question("orange ring") == "Is there an orange ring in the image?"
    assert yes_answer("red circle") == "Yes, there is a red circle in the image."
    assert no_answer("red circle") == "No, there is no red circle in the image."
    for name in NAMES:
        assert not pope_says_no(yes_answer(name))
        assert pope_says_no(no_answer(name))
        assert parse_question(question(name), NAMES) == name
    assert parse_question("Is there a dog in the image?", NAMES) is None


def test_facts_read_like_annotations() -> None:
    assert count_fact(1) == "The image contains exactly one object."
    assert count_fact(2) == "The image contains exactly two objects."
    assert presence_fact("orange ring", 0) == "An orange ring is on the left."
    assert absence_fact("yellow cross") == "There is no yellow cross in the image."
    assert parse_sentence(presence_fact("orange ring", 2), NAMES) == ("orange ring", 2)


def test_column_out_of_range_is_an_error() -> None:
    with pytest.raises(ValueError, match="column"):
        object_sentence("red circle", 3)


@pytest.mark.parametrize("style", range(len(SENTENCE_STYLES)))
@pytest.mark.parametrize("column", [None, 0, 1, 2])
def test_every_sentence_style_parses_back_to_its_claim(style: int, column: int | None) -> None:
    for name in NAMES:
        assert parse_sentence(styled_sentence(name, column, style), NAMES) == (name, column)


def test_sentence_styles_differ_and_style_zero_is_the_caption_sentence() -> None:
    assert styled_sentence("red circle", 0) == object_sentence("red circle", 0)
    assert styled_sentence("red circle", 0, 1) == "On the left, there is a red circle."
    assert styled_sentence("orange ring", None, 2) == "An orange ring is in the image."
    assert len({styled_sentence("red circle", 2, s) for s in range(len(SENTENCE_STYLES))}) == len(SENTENCE_STYLES)
    with pytest.raises(ValueError, match="style"):
        styled_sentence("red circle", 0, len(SENTENCE_STYLES))
