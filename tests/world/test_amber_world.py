"""The shapes world's AMBER: written in the release's formats, read back by the kit's readers, and scored as the
world means it (a true caption is perfect, a named partner is a hallucination)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from hadpo.data.amber_files import (
    check_amber,
    read_amber_annotations,
    read_amber_association,
    read_amber_queries,
    read_safe_words,
    release_files,
)
from hadpo.world.amber_world import GENERATIVE_QUERY, write_amber_world
from hadpo.world.bench import BenchImage, BenchObject, BenchWorld
from hadpo.world.palette import build_categories, category_pairs
from hadpo.world.text import describe


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
        _image(1, ("red circle", 0), ("green triangle", 2)),  # both partners absent
        _image(2, ("blue square", 1)),  # its partner, the red circle, absent
        _image(3, ("red circle", 0), ("blue square", 1)),  # a pair: no partner absent
    )
    return BenchWorld(root=tmp_path / "data", images=images, categories=categories,
                      pairs=category_pairs(categories), seed=0)


def test_the_files_are_the_releases_and_read_back(world):
    written = write_amber_world(world)
    data = world.root / "AMBER" / "data"
    assert all(p.is_file() for p in written) and len(written) == 3 + 9
    assert [(world.root / "AMBER" / "image" / f"AMBER_{k}.png").read_bytes() for k in (1, 2, 3)] == [
        i.png for i in world.images]
    files = release_files(data)
    queries = read_amber_queries(files["queries"])
    annotations = read_amber_annotations(files["annotations"])
    association = read_amber_association(files["association"])
    check_amber(queries, annotations, association, annotation_file=files["annotations"],
                association_file=files["association"])
    assert association == {"circle": (), "square": (), "triangle": (), "cross": ()}
    assert read_safe_words(files["safe_words"]) >= {"image", "left"}
    # The release's id order: every description, then attribute, existence and relation questions.
    assert [q.query_id for q in queries] == list(range(1, len(annotations) + 1))
    assert [(q.image, q.query) for q in queries[:3]] == [(f"AMBER_{k}.png", GENERATIVE_QUERY) for k in (1, 2, 3)]
    order = [annotations[q.query_id].dimension for q in queries]
    assert order == sorted(order, key=["generative", "attribute", "existence", "relation"].index)
    parts = {name: read_amber_queries(release_files(data, name)["queries"])
             for name in ("generative", "discriminative", "existence", "attribute", "relation")}
    assert parts["generative"] == queries[:3] and parts["discriminative"] == queries[3:]
    for name in ("existence", "attribute", "relation"):
        assert parts[name] == [q for q in queries if annotations[q.query_id].dimension == name]


def test_truth_hallu_and_questions_follow_the_scenes(world):
    write_amber_world(world)
    files = release_files(world.root / "AMBER" / "data")
    annotations = read_amber_annotations(files["annotations"])
    asked = {(q.image, q.query): annotations[q.query_id] for q in read_amber_queries(files["queries"])}
    # Generative: the shapes there; likely hallucinations the absent partners first, then the other absent shapes.
    assert [(annotations[k].truth, annotations[k].hallu) for k in (1, 2, 3)] == [
        (("circle", "triangle"), ("square", "cross")),
        (("square",), ("circle", "triangle", "cross")),
        (("circle", "square"), ("triangle", "cross")),
    ]

    def truth(image: int, question: str) -> tuple[str, str]:
        annotation = asked[(f"AMBER_{image}.png", question)]
        return annotation.kind, annotation.truth

    assert truth(1, "Is there a red circle in this image?") == ("discriminative-hallucination", "yes")
    assert truth(1, "Is there a blue square in this image?") == ("discriminative-hallucination", "no")
    assert truth(1, "Is there a yellow cross in this image?") == ("discriminative-hallucination", "no")
    assert truth(2, "Is there a red circle in this image?") == ("discriminative-hallucination", "no")
    assert truth(1, "Is the green triangle on the right in this image?") == ("discriminative-attribute-state", "yes")
    assert truth(2, "Is the blue square in the middle in this image?") == ("discriminative-attribute-state", "yes")
    wrong_column = [q for (image, q), a in asked.items() if image == "AMBER_2.png" and a.truth == "no"
                    and a.dimension == "attribute"]
    assert len(wrong_column) == 1 and "in the middle" not in wrong_column[0]
    # Image 3's partners are both present: its "no" existence question is about an absent category.
    absent = [q for (image, q), a in asked.items() if image == "AMBER_3.png" and a.dimension == "existence"
              and a.truth == "no"]
    assert len(absent) == 1 and ("green triangle" in absent[0] or "yellow cross" in absent[0])
    # Relation: one question per pair of objects, typed as the release types yes and no.
    relations = {q: a for (image, q), a in asked.items() if image == "AMBER_1.png" and a.dimension == "relation"}
    assert len(relations) == 1
    (question, annotation), = relations.items()
    left = question == "Is the red circle to the left of the green triangle in this image?"
    assert question in ("Is the red circle to the left of the green triangle in this image?",
                        "Is the green triangle to the left of the red circle in this image?")
    assert (annotation.kind, annotation.truth) == (("discriminative-relation", "yes") if left else ("relation", "no"))
    assert not any(a.dimension == "relation" for (image, _), a in asked.items() if image == "AMBER_2.png")


def test_a_true_caption_is_perfect_and_a_named_partner_a_hallucination(world, tmp_path):
    from hadpo.eval.amber.config import AmberConfig
    from hadpo.eval.amber.stage import run_amber

    write_amber_world(world)
    files = release_files(world.root / "AMBER" / "data")
    annotations = read_amber_annotations(files["annotations"])
    captions = {k: image.caption for k, image in enumerate(world.images, start=1)}
    yes_no = {k: a.truth.capitalize() for k, a in annotations.items() if not a.generative}
    planted = {1: " There is a blue square.", 2: " There is a red circle.", 3: ""}

    def score(name: str, descriptions: dict[int, str]) -> dict:
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps([{"id": k, "response": r} for k, r in {**descriptions, **yes_no}.items()]))
        cfg = AmberConfig.from_dict(dict(data_root=str(world.root), responses=str(path), rule="exact",
                                         run_dir=str(tmp_path / name), progress=False))
        return run_amber(cfg)

    perfect = score("perfect", captions)
    assert perfect["generative"]["chair"] == perfect["generative"]["hal"] == perfect["generative"]["cog"] == 0.0
    assert perfect["generative"]["cover"] == 1.0 and perfect["discriminative"]["all"]["f1"] == 1.0
    assert perfect["amber_score"] == 100.0
    fooled = score("partner", {k: captions[k] + planted[k] for k in captions})["generative"]
    # Object words: image 1 circle, triangle, square (hallucinated, a likely one); image 2 square, circle (likewise);
    # image 3 circle, square. CHAIR = 2/7, Hal = 2/3, Cover = 5/5, Cog = named 2 of (2 + 3 + 2) likely ones.
    assert fooled["chair"] == pytest.approx(2 / 7) and fooled["hal"] == pytest.approx(2 / 3)
    assert fooled["cover"] == 1.0 and fooled["cog"] == pytest.approx(2 / 7)


def test_the_same_world_writes_the_same_files(world, tmp_path):
    first = {p.relative_to(world.root): p.read_bytes() for p in write_amber_world(world)}
    again = BenchWorld(root=tmp_path / "again", images=world.images, categories=world.categories, pairs=world.pairs,
                       seed=world.seed)
    assert {p.relative_to(again.root): p.read_bytes() for p in write_amber_world(again)} == first
