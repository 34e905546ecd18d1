"""AMBER's measures on hand-worked items: each object word, each count, each rate, and the reference's counting
choices (search order, safe words, "no" as the positive class, Cog lower is better)."""

from __future__ import annotations

import pytest

from hadpo.data.amber_files import AmberAnnotation
from hadpo.eval.amber.metrics import (
    amber_score,
    discriminative_counts,
    discriminative_metrics,
    generative_metrics,
    owners,
    read_yes_no,
    score_generative,
    table_row,
)
from hadpo.eval.amber.words import Vocabulary

VOCABULARY = Vocabulary(
    association={"dog": ("puppy",), "grass": ("ground",), "road": ("ground", "street"), "forest": ("tree",),
                 "tree": ("forest",), "sky": (), "cat": (), "ball": (), "frisbee": (), "light": ()},
    safe_words=frozenset({"light"}),
)


def _gen(truth: tuple[str, ...], hallu: tuple[str, ...]) -> AmberAnnotation:
    return AmberAnnotation(1, "generative", truth, hallu)


def test_object_words_fold_plurals_ignore_case_and_match_the_longest_entry():
    vocabulary = Vocabulary({"bus": (), "glass": (), "mouse": (), "people": (), "e-book": (), "book": (),
                             "air-conditioning": (), "tv": ()})
    # Buses → bus, Glasses → glass, mice → mouse (irregular), "people" is an entry itself (never folded to
    # "person"), "e-book" is one entry though "book" is one too, "air conditioning" reads as "air-conditioning",
    # "is" stays "is" (no entry), capitals are read.
    text = "Buses pass. Glasses, mice and people; an e-book is near the TV and the air conditioning."
    assert vocabulary.object_words(text) == ["bus", "glass", "mouse", "people", "e-book", "tv", "air-conditioning"]


def test_one_description_word_by_word():
    annotation = _gen(("forest", "tree", "dog"), ("cat", "ball"))
    text = "Dogs play under the trees of a forest, near a ground light; a cat watches two balls."
    # Object words: dog, tree, forest, ground, light, cat, ball (7; "play", "watches", "two" are no entries).
    #   dog → covers dog; tree → covers forest (forest's associations come first); forest → covers tree;
    #   ground → a hallucination (grass and road are not in this image); light → safe: counted among the 7, never a
    #   hallucination; cat, ball → hallucinations, each naming a likely hallucination.
    item = score_generative(1, text, annotation, VOCABULARY)
    assert item.object_words == ("dog", "tree", "forest", "ground", "light", "cat", "ball")
    assert item.hallucinated_words == ("ground", "cat", "ball")
    assert (item.objects, item.hallucinated, item.truth, item.covered, item.hallu, item.named) == (7, 3, 3, 3, 2, 2)
    assert item.record()["kind"] == "generative" and item.record()["hallucinated"] == 3


def test_the_reference_search_order_looks_at_associated_words_first():
    # Truth [grass, ground]: "ground" is associated with grass, so it covers grass, not itself; "grass" covers grass
    # too. Ground stays uncovered: Cover 1 of 2, as the release's evaluation counts it.
    assert owners(("grass", "ground"), VOCABULARY.association) == {"ground": 0, "grass": 0}
    item = score_generative(1, "Grass and ground.", _gen(("grass", "ground"), ()), VOCABULARY)
    assert (item.covered, item.truth, item.hallucinated) == (1, 2, 0)
    # A safe word never covers, even when it is a truth object: "light" is skipped before the truth is looked at.
    assert score_generative(1, "A light.", _gen(("light",), ()), VOCABULARY).covered == 0


def test_the_set_measures_sum_over_descriptions():
    a = score_generative(1, "Dogs play under the trees of a forest, near a ground light; a cat watches two balls.",
                         _gen(("forest", "tree", "dog"), ("cat", "ball")), VOCABULARY)
    # b: puppy (a hallucination naming dog, a likely one), street (covers road), sky (covers sky).
    b = score_generative(2, "A puppy on the street under the sky.", _gen(("road", "sky"), ("dog", "frisbee")),
                         VOCABULARY)
    # c: cat covers cat; ball is missed.
    c = score_generative(3, "A cat.", _gen(("cat", "ball"), ("dog",)), VOCABULARY)
    assert [(i.objects, i.hallucinated, i.covered, i.named) for i in (b, c)] == [(3, 1, 2, 1), (1, 0, 1, 0)]
    m = generative_metrics([a, b, c])
    # CHAIR = (3 + 1 + 0) / (7 + 3 + 1) = 4/11; Cover = (3 + 2 + 1) / (3 + 2 + 2) = 6/7;
    # Hal = 2 of 3 descriptions; Cog = (2 + 1 + 0) / (2 + 2 + 1) = 3/5.
    assert m["chair"] == pytest.approx(4 / 11) and m["cover"] == pytest.approx(6 / 7)
    assert m["hal"] == pytest.approx(2 / 3) and m["cog"] == pytest.approx(3 / 5)
    assert m["descriptions"] == 3 and m["object_words"] == 11 and m["object_words_per_description"] == 11 / 3


def test_cog_is_lower_for_the_better_description():
    annotation = _gen(("dog",), ("cat",))
    clean = generative_metrics([score_generative(1, "A dog.", annotation, VOCABULARY)])
    fooled = generative_metrics([score_generative(1, "A dog and a cat.", annotation, VOCABULARY)])
    # Naming the expected hallucination raises Cog (0 → 1), as it raises CHAIR (0 → 1/2) and Hal (0 → 1).
    assert (clean["cog"], clean["chair"], clean["hal"]) == (0.0, 0.0, 0.0)
    assert (fooled["cog"], fooled["chair"], fooled["hal"]) == (1.0, 0.5, 1.0)


def test_nothing_to_count_is_zero_not_nan():
    m = generative_metrics([score_generative(1, "It is dark.", _gen((), ()), VOCABULARY)])
    assert m["chair"] == m["cover"] == m["cog"] == m["hal"] == 0.0


def test_discriminative_no_is_the_positive_class():
    records = [
        {"dimension": "existence", "type": "discriminative-hallucination", "truth": "no", "prediction": "no"},  # TP
        {"dimension": "existence", "type": "discriminative-hallucination", "truth": "no", "prediction": "yes"},  # FN
        {"dimension": "attribute", "type": "discriminative-attribute-state", "truth": "yes", "prediction": "yes"},
        {"dimension": "attribute", "type": "discriminative-attribute-state", "truth": "no", "prediction": "no"},  # TP
        {"dimension": "attribute", "type": "discriminative-attribute-number", "truth": "yes", "prediction": "no"},  # FP
        {"dimension": "attribute", "type": "discriminative-attribute-action", "truth": "no", "prediction": None},  # FN
        {"dimension": "relation", "type": "discriminative-relation", "truth": "yes", "prediction": "yes"},
        {"dimension": "relation", "type": "relation", "truth": "no", "prediction": "no"},  # TP
    ]
    m = discriminative_metrics(records)
    # all: TP 3; answered no 4 → precision 3/4; truth no 5 → recall 3/5; F1 = 2·0.75·0.6 / 1.35 = 2/3;
    # correct 5 of 8 (the unreadable answer is wrong).
    assert m["all"]["precision"] == 0.75 and m["all"]["recall"] == 0.6
    assert m["all"]["f1"] == pytest.approx(2 / 3) and m["all"]["accuracy"] == 5 / 8 and m["all"]["unreadable"] == 1
    # existence: TP 1 of 1 answered no, of 2 truth no → P 1, R 1/2, F1 2/3; accuracy 1/2.
    assert (m["existence"]["precision"], m["existence"]["recall"], m["existence"]["accuracy"]) == (1.0, 0.5, 0.5)
    assert m["existence"]["f1"] == pytest.approx(2 / 3)
    # attribute: TP 1; answered no 2 (state, number); truth no 2 (state, action) → P = R = F1 = 1/2; accuracy 2/4.
    assert [m["attribute"][k] for k in ("precision", "recall", "f1", "accuracy")] == [0.5, 0.5, 0.5, 0.5]
    # The attribute kinds: state perfect; number one false "no"; action one unreadable answer to a "no" truth.
    assert m["attribute_state"]["f1"] == 1.0 and m["attribute_state"]["questions"] == 2
    assert (m["attribute_number"]["precision"], m["attribute_number"]["accuracy"]) == (0.0, 0.0)
    assert (m["attribute_action"]["recall"], m["attribute_action"]["unreadable"]) == (0.0, 1)
    # relation: both types are the relation dimension; TP 1 of 1 → P = R = F1 = accuracy = 1.
    assert m["relation"]["questions"] == 2 and m["relation"]["f1"] == 1.0 and m["relation"]["accuracy"] == 1.0
    # A right "yes" is a true negative: all-yes truths answered yes are accurate but have no F1 (with "yes" as the
    # positive class it would be 1).
    only_yes = discriminative_counts([("yes", "yes"), ("yes", "yes")])
    assert (only_yes["accuracy"], only_yes["precision"], only_yes["recall"], only_yes["f1"]) == (1.0, 0.0, 0.0, 0.0)


def test_answers_are_read_by_rule():
    # exact: the reference's reading, exactly "Yes" or "No".
    assert read_yes_no("No", "exact") == "no" and read_yes_no("Yes", "exact") == "yes"
    assert read_yes_no("No, there is not.", "exact") is None and read_yes_no("yes", "exact") is None
    # pope: a "no" / "not" in the first sentence.
    assert read_yes_no("No, there is no cat in the image.", "pope") == "no"
    assert read_yes_no("Yes, there is a cat. It is not small.", "pope") == "yes"
    with pytest.raises(ValueError, match="unknown yes/no rule"):
        read_yes_no("Yes", "strict")


def test_the_amber_score_reproduces_the_release_table():
    # The release's results table: LLaVA-1.5 CHAIR 7.8, F1 74.7 → 83.5; GPT-4V CHAIR 4.6, F1 87.4 → 91.4.
    assert amber_score(0.078, 0.747) == pytest.approx(83.45)
    assert amber_score(0.046, 0.874) == pytest.approx(91.4)
    row = table_row({"generative": {"chair": 0.1, "cover": 0.5, "hal": 0.25, "cog": 0.05},
                     "discriminative": {"all": {"accuracy": 0.7, "f1": 0.8}, "existence": {"f1": 0.9}},
                     "amber_score": 85.0})
    assert row == pytest.approx({"CHAIR (%)": 10.0, "Cover (%)": 50.0, "Hal (%)": 25.0, "Cog (%)": 5.0,
                                 "Acc (%)": 70.0, "F1 (%)": 80.0, "F1 existence (%)": 90.0, "AMBER score": 85.0})
