"""MMHal-Bench's score and hallucination rate from ratings, worked by hand."""

from __future__ import annotations

from hadpo.eval.mmhal.metrics import mmhal_metrics


def _records(*rows: tuple[str, int | None]) -> dict[str, dict]:
    return {str(k): {"question_type": kind, "rating": rating, "status": "judged" if rating is not None else "unjudged"}
            for k, (kind, rating) in enumerate(rows)}


def test_score_per_type_hallucination_rate_and_counts():
    m = mmhal_metrics(_records(("counting", 6), ("counting", 2), ("adversarial", 0), ("holistic", 4),
                               ("holistic", None), ("attribute", 3)))
    # judged ratings 6, 2, 0, 4, 3 (the unjudged one left out): mean 15 / 5 = 3.0;
    # below 3: 2 and 0 → 2 / 5 = 0.4 (3 is "no hallucination, not informative", not counted)
    assert (m["questions"], m["judged"], m["unjudged"]) == (6, 5, 1)
    assert m["score"] == 3.0 and m["hallucination_rate"] == 0.4
    # per type, in the release's order (attribute, adversarial, ..., counting, ..., holistic):
    # attribute 3 / 1 = 3.0; adversarial 0 / 1 = 0.0; counting (6 + 2) / 2 = 4.0; holistic 4 / 1 = 4.0
    assert list(m["score_by_type"].items()) == [("attribute", 3.0), ("adversarial", 0.0), ("counting", 4.0),
                                                ("holistic", 4.0)]
    # below 3 per type: attribute 0 / 1, adversarial 1 / 1, counting 1 / 2, holistic 0 / 1
    assert m["hallucination_rate_by_type"] == {"attribute": 0.0, "adversarial": 1.0, "counting": 0.5,
                                               "holistic": 0.0}
    assert m["judged_by_type"] == {"attribute": 1, "adversarial": 1, "counting": 2, "holistic": 1}
    assert m["rating_counts"] == {"0": 1, "1": 0, "2": 1, "3": 1, "4": 1, "5": 0, "6": 1}


def test_a_type_of_the_users_own_comes_after_the_releases_and_nothing_judged_is_no_score():
    m = mmhal_metrics(_records(("mood", 5), ("other", 1)))
    # 5 and 1: mean 3.0; below 3: 1 of 2
    assert list(m["score_by_type"]) == ["other", "mood"] and m["score"] == 3.0 and m["hallucination_rate"] == 0.5
    empty = mmhal_metrics(_records(("counting", None)))
    assert (empty["score"], empty["hallucination_rate"], empty["score_by_type"]) == (None, None, {})
    assert empty["judged_by_type"] == {"counting": 0} and empty["unjudged"] == 1
