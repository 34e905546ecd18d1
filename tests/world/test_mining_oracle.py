"""The offline mining judge: exact corrections, fact-preserving style-matched rewrites, questions from labels."""

from __future__ import annotations

from collections import Counter

from hadpo.eval.shr.sentences import judged_sentences, split_sentences
from hadpo.judge.base import ChatRequest
from hadpo.mining.parse import parse_correction, parse_questions, parse_rewrites
from hadpo.world.mining_oracle import ORDERS, correct, mining_oracle, questions, restyle, style_of
from hadpo.world.shr_oracle import world_categories, world_objects
from hadpo.world.text import no_answer, object_sentence, parse_sentence, question, yes_answer

OBJECTS = [("red circle", 0), ("blue square", 2)]
NAMES = ["red circle", "orange circle", "blue square", "green triangle"]


def parse(sentence: str):
    return parse_sentence(sentence, NAMES)


def claims(text: str) -> Counter:
    return Counter(parse(s) for s in split_sentences(text))


def test_correction_removes_absent_objects_and_fixes_wrong_columns_only():
    sentences = judged_sentences("There is a red circle on the left. There is a green triangle in the middle. "
                                 "There is a blue square in the middle. The background is dark.")
    labels, corrected = correct(sentences, OBJECTS, parse)
    assert [label for label, _ in labels] == ["correct", "hallucination", "hallucination", "cannot judge"]
    assert corrected == ("There is a red circle on the left. There is a blue square on the right. "
                         "The background is dark.")
    assert correct(judged_sentences(object_sentence("red circle", 0)), OBJECTS, parse)[1] is None
    # nothing true left: the annotation caption stands in
    only_wrong = correct(judged_sentences("There is a green triangle on the left."), OBJECTS, parse)[1]
    assert only_wrong == "There is a red circle on the left. There is a blue square on the right."


def test_rewrites_keep_each_sides_facts_and_share_style_index_wise():
    positive = "There is a blue square on the right. There is a red circle on the left."
    negative = positive + " There is an orange circle in the middle."
    for i in range(6):
        pos, neg = restyle(positive, i, parse), restyle(negative, i, parse)
        assert claims(pos) == claims(positive) and claims(neg) == claims(negative)
        _, order = style_of(i)
        # same style: the negative is the positive's sentences plus the hallucinated one, phrased alike
        assert set(split_sentences(pos)) <= set(split_sentences(neg))
        if order == "left to right":
            assert [parse(s)[1] for s in split_sentences(neg)] == [0, 1, 2]
        if order == "right to left":
            assert [parse(s)[1] for s in split_sentences(neg)] == [2, 1, 0]
    assert len({restyle(negative, i, parse) for i in range(3)}) == 3
    assert set(ORDERS) == {style_of(i)[1] for i in range(3)}
    assert restyle("Something odd. There is a red circle on the left.", 2, parse).endswith("Something odd.")


def test_questions_ask_about_hallucinated_absent_and_present_objects():
    sentences = judged_sentences("There is a red circle in the middle. There is a green triangle on the left.")
    items = questions(sentences, ["hallucination", "hallucination"], OBJECTS, parse, max_hallucinated=3,
                      max_present=1)
    assert items == [(question("green triangle"), "no", no_answer("green triangle"), yes_answer("green triangle")),
                     (question("red circle"), "yes", yes_answer("red circle"), no_answer("red circle"))]


def test_the_oracle_client_answers_every_step_in_the_llm_format(mining_world):
    client = mining_oracle(mining_world)
    objects = world_objects(mining_world)
    categories = world_categories(mining_world, objects)
    image_id, objs = next((i, o) for i, o in objects.items() if len(o) == 1)
    absent = next(c for c in categories if c != objs[0][0])
    negative = f"{object_sentence(*objs[0])} {object_sentence(absent, (objs[0][1] + 1) % 3)}"
    sentences = judged_sentences(negative)
    replies = client.complete([
        ChatRequest.user("x", context={"step": "correct", "image_id": image_id, "sentences": sentences}),
        ChatRequest.user("x", context={"step": "rewrite", "image_id": image_id, "positive": object_sentence(*objs[0]),
                                       "negative": negative, "k": 3}),
        ChatRequest.user("x", context={"step": "qa", "image_id": image_id, "sentences": sentences,
                                       "labels": ["correct", "hallucination"], "max_hallucinated": 3,
                                       "max_present": 2}),
        ChatRequest.user("x", context={"step": "correct", "image_id": "999999", "sentences": sentences}),
    ])
    fixed = parse_correction(replies[0].text, 2)
    assert fixed.ok and fixed.labels == ["correct", "hallucination"] and fixed.corrected == sentences[0]
    assert parse_rewrites(replies[1].text, 3).ok
    qa = parse_questions(replies[2].text, max_no=3, max_yes=2)
    assert [(q.question, q.answer) for q in qa.items] == [(question(absent), "no"), (question(objs[0][0]), "yes")]
    assert not replies[3].ok and "999999" in replies[3].error
    assert client.protocol()["model"] == "shapes-mining-oracle"
