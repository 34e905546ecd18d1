"""Sentence splitting and de-duplication as the original SHR code."""

from __future__ import annotations

from hadpo.eval.shr.sentences import judged_sentences, numbered_sentences, split_sentences, word_count


def test_split_strips_and_drops_empty_pieces():
    assert split_sentences("A cat sits.  It is black..\nThe end") == ["A cat sits", "It is black", "The end"]
    assert split_sentences("") == [] and split_sentences(" . . ") == []


def test_exact_duplicates_and_substrings_of_earlier_sentences_are_dropped():
    text = "There is a red circle on the left. There is a red circle. There is a red circle on the left. A dog."
    # "There is a red circle" is inside the first kept sentence; the repeat is an exact duplicate
    assert split_sentences(text) == ["There is a red circle on the left", "A dog"]


def test_a_longer_later_sentence_is_kept():
    # only substrings of *earlier* kept sentences go; a later superstring stays
    assert split_sentences("A dog. A dog runs.") == ["A dog", "A dog runs"]


def test_every_period_splits_like_the_original():
    assert split_sentences("It costs 3.5 dollars.") == ["It costs 3", "5 dollars"]


def test_numbering_and_judged_form():
    sentences = judged_sentences("One thing. Two things")
    assert sentences == ["One thing.", "Two things."]
    assert numbered_sentences(sentences) == "1. One thing.\n2. Two things."


def test_words_are_single_space_pieces():
    assert word_count("There is a dog.") == 4
    assert word_count("two  spaces") == 3  # as the original's split(' ')
