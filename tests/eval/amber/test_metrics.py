"""AMBER's measures on hand-worked items: each object word, each count, each rate."""

from __future__ import annotations

import pytest

from hadpo.data.amber_files import AmberAnnotation
from hadpo.eval.amber.metrics import (
    Vocabulary,
    amber_score,
    discriminative_counts,
    generative_metrics,
    read_yes_no,
    score_generative,
)

VOCABULARY = Vocabulary(
    association={"dog": ("puppy",), "grass": (), "sky": (), "cloud": (), "frisbee": (), "ball": (), "cat": ()},
    safe_words=frozenset({"sky"}),
)


def test_one_description_word_by_word():
    annotation = AmberAnnotation(1, "generative", ("dog", "grass", "frisbee"), ("ball", "cat", "cloud"))
    # object words: puppies → puppy (dog's association: covers dog), grass (covers grass), sky (safe: counted, never a
    # hallucination), balls → ball (hallucinated; a hallu object: named), cat (hallucinated, named), cloud
    # (hallucinated, named), "running" and "blue" are no vocabulary words.
    item = score_generative(1, "Two puppies running on grass under a blue sky with balls, a cat and a cloud.",
                            annotation, VOCABULARY)
    assert (item.objects, item.hallucinated, item.truth, item.covered, item.hallu, item.named) == (6, 3, 3, 2, 3, 3)


def test_the_set_measures_cog_lower_is_better():
    a = score_generative(1, "A dog on the grass.", AmberAnnotation(1, "generative", ("dog", "grass"), ("cat",)),
                         VOCABULARY)
    b = score_generative(2, "A cat and a ball.", AmberAnnotation(2, "generative", ("ball",), ("cat", "frisbee")),
                         VOCABULARY)
    m = generative_metrics([a, b])
    # a: 2 words, 0 hallucinated, 2/2 covered, 0/1 named. b: 2 words, cat hallucinated (named 1/2), ball covered.
    # CHAIR = 1/4; Cover = 3/3; Hal = 1/2; Cog = 1/3 (the description that named its expected hallucination scores
    # worse: Cog, like CHAIR and Hal, is better lower).
    assert m["chair"] == 0.25 and m["cover"] == 1.0 and m["hal"] == 0.5 and m["cog"] == pytest.approx(1 / 3)


def test_discriminative_no_is_the_positive_class():
    pairs = [("no", "no"), ("no", "yes"), ("yes", "no"), ("yes", "yes"), ("no", "no"), ("yes", None)]
    m = discriminative_counts(pairs)
    # TP (truth no, said no) = 2; said no = 3; truth no = 3 → precision 2/3, recall 2/3, F1 2/3; accuracy 3/6.
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3) and m["accuracy"] == 0.5 and m["unreadable"] == 1


def test_answers_are_read_by_rule_and_the_score_combines_chair_and_f1():
    assert read_yes_no("No", "exact") == "no" and read_yes_no("No, there is not.", "exact") is None
    assert read_yes_no("No, there is no cat in the image.", "pope") == "no"
    assert read_yes_no("Yes, there is a cat.", "pope") == "yes"
    assert amber_score(0.10, 0.80) == pytest.approx(85.0)  # (100 - 10 + 80) / 2
