"""The shapes world's MMHal-Bench: the release's question file and image folder, questions of every type asked the
way the world allows, and the offline oracle rating answers from the annotations on MMHal-Bench's scale."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from hadpo.data.mmhal_files import image_path, read_mmhal
from hadpo.eval.mmhal.judge import MmhalProtocol, judge_answers
from hadpo.judge.local import LocalChatClient
from hadpo.world.bench import BenchImage, BenchObject, BenchWorld
from hadpo.world.mmhal_oracle import answer_claims, oracle_rating, oracle_responder
from hadpo.world.mmhal_world import BACKGROUND, write_mmhal_world
from hadpo.world.palette import build_categories, category_pairs
from hadpo.world.text import describe

#: The release's keys, in its order.
KEYS = ["question_type", "question_topic", "image_id", "image_src", "image_content", "question", "gt_answer",
        "model_answer"]


def _png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (12, 12), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def _image(k: int, *objects: tuple[str, int]) -> BenchImage:
    placed = tuple(BenchObject(name, column, (4 * column, 0, 4, 4)) for name, column in objects)
    return BenchImage(image_id=100 + k, coco_id=900 + k, png=_png((10 * k, 0, 0)), width=12, height=12,
                      objects=placed, caption=describe(objects))


@pytest.fixture
def world(tmp_path: Path) -> BenchWorld:
    """Four categories in two pairs: red circle / blue square, green triangle / yellow cross."""
    categories = build_categories(2)
    images = (
        _image(1, ("red circle", 0), ("green triangle", 2)),
        _image(2, ("blue square", 1)),  # its partner, the red circle, absent
        _image(3, ("yellow cross", 2)),  # one object: no comparison for it
        _image(4, ("red circle", 0), ("blue square", 1), ("green triangle", 2)),
        _image(5, ("green triangle", 0), ("yellow cross", 1)),
    )
    return BenchWorld(root=tmp_path / "data", images=images, categories=categories,
                      pairs=category_pairs(categories), seed=0)


NAMES = ["red circle", "blue square", "green triangle", "yellow cross"]


def test_the_question_file_is_the_releases_and_each_image_is_where_its_src_says(world):
    written = write_mmhal_world(world)
    root = world.root / "MMHal-Bench"
    assert written == [root / "images" / f"{100 + k}.png" for k in range(1, 6)] + [root / "response_template.json"]
    items = read_mmhal(root / "response_template.json")
    assert [list(r) for r in json.loads((root / "response_template.json").read_text())] == [KEYS] * 5
    assert [image_path(i, root / "images").read_bytes() for i in items] == [i.png for i in world.images]
    assert all(i.image_src == f"https://shapes.invalid/mmhal/{i.image_id}.png" and i.model_answer is None
               for i in items)
    # The types in the release's order; the comparison that fell on the one-object image 3 moves to image 4.
    assert [i.question_type for i in items] == ["attribute", "adversarial", "counting", "comparison", "relation"]
    assert [(i.question, i.gt_answer) for i in items] == [
        ("What colour is the circle in this image?", "The circle is red: it is a red circle on the left."),
        ("Where is the red circle in this image?", "There is no red circle in the image."),
        ("How many objects are there in this image?", "The image contains exactly one object."),
        ("Which is further to the left, the green triangle or the red circle?",
         "The red circle is further to the left: it is on the left, and the green triangle is on the right."),
        ("What is to the right of the green triangle?", "There is a yellow cross in the middle."),
    ]
    assert items[0].image_content == ("a red circle on the left", "a green triangle on the right")


def test_the_remaining_types_and_a_pair_with_both_partners_present(tmp_path):
    categories = build_categories(2)
    images = tuple(_image(k, ("red circle", 0), ("blue square", 2)) for k in range(1, 9))
    world = BenchWorld(root=tmp_path, images=images, categories=categories, pairs=category_pairs(categories), seed=0)
    write_mmhal_world(world)
    items = read_mmhal(tmp_path / "MMHal-Bench" / "response_template.json")
    got = {i.question_type: (i.question, i.gt_answer) for i in items}
    # Both partners are there: the adversarial question asks about the first absent category instead.
    assert got["adversarial"] == ("Where is the green triangle in this image?",
                                  "There is no green triangle in the image.")
    assert got["environment"] == ("What is the background of this image like?", BACKGROUND)
    assert got["holistic"] == ("Describe this image in detail.",
                               "There is a red circle on the left. There is a blue square on the right.")
    assert got["other"] == ("Which shapes are in this image?",
                            "There is a red circle on the left. There is a blue square on the right.")


def test_claims_are_read_clause_by_clause_and_relative_places_are_not_columns():
    claims = answer_claims("To the right of the red circle, there is a blue square in the middle. "
                           "There is no green triangle and no yellow cross.", NAMES)
    assert [(c.name, c.column, c.denied) for c in claims] == [
        ("red circle", None, False), ("blue square", 1, False), ("green triangle", None, True),
        ("yellow cross", None, True)]


CONTENT = ("a red circle on the left", "a green triangle on the right")


@pytest.mark.parametrize("kind,question,gt,answer,rating", [
    # a perfect answer: no hallucination, what was asked → 5
    ("holistic", "Describe this image in detail.",
     "There is a red circle on the left. There is a green triangle on the right.",
     "There is a red circle on the left and a green triangle on the right.", 5),
    # the same with the absent partner named too: informative, with hallucination → 2
    ("holistic", "Describe this image in detail.",
     "There is a red circle on the left. There is a green triangle on the right.",
     "There is a red circle on the left, a blue square in the middle and a green triangle on the right.", 2),
    # one present object only: true but not all that was asked → 4
    ("holistic", "Describe this image in detail.",
     "There is a red circle on the left. There is a green triangle on the right.", "There is a red circle.", 4),
    # a present object in the wrong column: hallucination; the other object is true, not all asked → 1
    ("holistic", "Describe this image in detail.",
     "There is a red circle on the left. There is a green triangle on the right.",
     "There is a red circle in the middle. There is a green triangle on the right.", 1),
    # the adversarial question: denying the partner → 5; placing it → 0
    ("adversarial", "Where is the blue square in this image?", "There is no blue square in the image.",
     "There is no blue square in the image.", 5),
    ("adversarial", "Where is the blue square in this image?", "There is no blue square in the image.",
     "The blue square is in the middle.", 0),
    ("adversarial", "Where is the blue square in this image?", "There is no blue square in the image.",
     "It is next to the red circle.", 1),  # places the absent square; names the (true) circle
    # counting: the right number → 5, a wrong one → 0, none → 3
    ("counting", "How many objects are there in this image?", "The image contains exactly two objects.",
     "There are 2 objects.", 5),
    ("counting", "How many objects are there in this image?", "The image contains exactly two objects.",
     "There are three objects.", 0),
    ("counting", "How many objects are there in this image?", "The image contains exactly two objects.",
     "It is hard to say.", 3),
    # the colour of the circle: red → 5, blue → 0
    ("attribute", "What colour is the circle in this image?", "The circle is red: it is a red circle on the left.",
     "It is red.", 5),
    ("attribute", "What colour is the circle in this image?", "The circle is red: it is a red circle on the left.",
     "The circle is blue.", 0),
    # which is further left: the circle → 5; the triangle (true object, wrong choice) → 1
    ("comparison", "Which is further to the left, the green triangle or the red circle?",
     "The red circle is further to the left: it is on the left, and the green triangle is on the right.",
     "The red circle is further to the left than the green triangle.", 5),
    ("comparison", "Which is further to the left, the green triangle or the red circle?",
     "The red circle is further to the left: it is on the left, and the green triangle is on the right.",
     "The green triangle is further to the left.", 1),
    # what is to the right of the circle: the triangle → 5; the absent square → 1 (the circle is named, true)
    ("relation", "What is to the right of the red circle?", "There is a green triangle on the right.",
     "To the right of the red circle there is a green triangle.", 5),
    ("relation", "What is to the right of the red circle?", "There is a green triangle on the right.",
     "To the right of the red circle there is a blue square.", 1),
    # the background: dark → 5, white → 0
    ("environment", "What is the background of this image like?", BACKGROUND, "It is black and grainy.", 5),
    ("environment", "What is the background of this image like?", BACKGROUND, "The background is white.", 0),
])
def test_the_oracle_rates_on_mmhals_scale(kind, question, gt, answer, rating):
    got, reason = oracle_rating(answer, gt, CONTENT, NAMES, question_type=kind, question=question)
    assert got == rating, reason
    assert reason.startswith("Hallucination:" if rating < 3 else "No hallucination")


def test_the_oracle_answers_through_the_judge_so_the_kits_parser_reads_it(world):
    """The world's own answers get 5 (>= 3) each; naming every image's absent partner gets < 3 each."""
    write_mmhal_world(world)
    items = read_mmhal(world.root / "MMHal-Bench" / "response_template.json")
    client = LocalChatClient(oracle_responder(NAMES), name="oracle")
    right = judge_answers(items, {i.index: i.gt_answer for i in items}, client, MmhalProtocol())
    assert [r["rating"] for r in right.values()] == [5] * 5 and all(r["attempts"] == 1 for r in right.values())
    partners = {"red circle": "blue square", "blue square": "red circle", "green triangle": "yellow cross",
                "yellow cross": "green triangle"}

    def with_partner(image: BenchImage) -> str:
        there = {o.name for o in image.objects}
        # An absent partner; image 5 has both of its pair, so any absent category (the red circle) instead.
        absent = next((partners[n] for n in there if partners[n] not in there), None) or next(
            n for n in NAMES if n not in there)
        return f"{image.caption} There is a {absent} in the middle."

    wrong = judge_answers(items, {i.index: with_partner(world.images[i.index]) for i in items}, client,
                          MmhalProtocol())
    assert all(r["rating"] < 3 and r["reply"].startswith("Hallucination:") for r in wrong.values())
