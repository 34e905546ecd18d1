"""Building the POPE sets: determinism, POPE's structure and each negative-sampling strategy."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from hadpo.data.layout import POPE_SETS, DataLayout
from hadpo.data.pope_files import read_pope_questions
from hadpo.errors import DataError, ParamsError
from hadpo.eval.pope.build import (
    ImageObjects,
    build_pope_files,
    build_pope_sets,
    coco_image_objects,
    question_text,
)
from hadpo.eval.pope.config import PopeBuildConfig


def _object(text: str) -> str:
    """The object of a question "Is there a(n) X in the image?"."""
    return text.removeprefix("Is there ").split(" ", 1)[1].removesuffix(" in the image?")


def _build(root: Path, **kw: object) -> dict[str, Path]:
    return build_pope_files(PopeBuildConfig.from_dict({"data_root": str(root), "n_images": 8, "seed": 5, **kw}))


def test_same_seed_same_bytes_other_seed_other_draw(coco_root: Path, tmp_path: Path) -> None:
    first = {s: p.read_bytes() for s, p in _build(coco_root).items()}
    second = {s: p.read_bytes() for s, p in _build(coco_root, out_dir=str(tmp_path / "again")).items()}
    other = {s: p.read_bytes() for s, p in _build(coco_root, seed=6, out_dir=str(tmp_path / "other")).items()}
    assert first == second
    assert first["random"] != other["random"]


def test_files_go_where_the_layout_expects(coco_root: Path) -> None:
    paths = _build(coco_root)
    layout = DataLayout(coco_root)
    assert paths == {s: layout.pope_file(s) for s in POPE_SETS}
    manifest = json.loads((layout.pope_dir / "coco_pope_build.json").read_text())
    assert manifest["params"]["seed"] == 5 and manifest["sets"]["adversarial"]["questions"] == 48


def test_pope_structure(coco_root: Path) -> None:
    paths = _build(coco_root)
    truth = {img.image: set(img.objects) for img in coco_image_objects(DataLayout(coco_root).coco_instances)}
    sets = {s: read_pope_questions(p) for s, p in paths.items()}
    for questions in sets.values():
        assert [q.question_id for q in questions] == list(range(1, 49))
        assert [q.label for q in questions] == ["yes", "no"] * 24
        per_image = Counter(q.image for q in questions)
        assert len(per_image) == 8 and set(per_image.values()) == {6}
        for q in questions:
            obj = _object(q.text)
            assert (obj in truth[q.image]) == (q.label == "yes"), q
        for image in per_image:
            asked = [_object(q.text) for q in questions if q.image == image]
            assert len(set(asked)) == 6  # no object asked twice about one image
    # images with fewer than 3 categories are never drawn
    assert not {"COCO_val2014_000000001000.jpg", "COCO_val2014_000000001001.jpg"} & set(per_image)
    yes = {s: [(q.question_id, q.image, q.text) for q in qs if q.label == "yes"] for s, qs in sets.items()}
    assert yes["random"] == yes["popular"] == yes["adversarial"]


def test_articles_follow_the_released_files() -> None:
    assert question_text("umbrella") == "Is there an umbrella in the image?"
    assert question_text("apple") == "Is there an apple in the image?"
    assert question_text("scissors") == "Is there a scissors in the image?"
    assert question_text("hair drier") == "Is there a hair drier in the image?"


def test_yes_objects_are_the_first_three_annotated() -> None:
    images = [ImageObjects("1.jpg", ("a1", "b", "c", "d")), ImageObjects("2.jpg", ("e", "f", "g", "h"))]
    sets = build_pope_sets(images, n_images=2, seed=0, template="{}")
    yes = {q.image: [] for q in sets["random"]}
    for q in sets["random"]:
        if q.label == "yes":
            yes[q.image].append(q.text)
    assert yes == {"1.jpg": ["a1", "b", "c"], "2.jpg": ["e", "f", "g"]}


def test_popular_negatives_are_the_most_frequent_absent_categories() -> None:
    images = [
        ImageObjects("1.jpg", ("x", "y", "z")),
        ImageObjects("2.jpg", ("x", "y", "w")),
        ImageObjects("3.jpg", ("x", "v", "w")),
        ImageObjects("4.jpg", ("u", "t", "s")),
    ]
    sets = build_pope_sets(images, n_images=4, seed=1, template="{}")
    by_image: dict[str, list[str]] = {}
    for q in sets["popular"]:
        if q.label == "no":
            by_image.setdefault(q.image, []).append(q.text)
    # frequencies: x 3, y 2, w 2, then z v u t s once each (ties keep first-seen order in the draw)
    assert by_image["4.jpg"] == ["x", "y", "w"]
    assert by_image["1.jpg"][0] == "w"


def test_adversarial_negatives_are_top_co_occurring_with_each_positive() -> None:
    images = [
        ImageObjects("1.jpg", ("fork", "knife", "cup")),
        ImageObjects("2.jpg", ("fork", "knife", "plate")),
        ImageObjects("3.jpg", ("fork", "plate", "bowl")),
        ImageObjects("4.jpg", ("fork", "cup", "dog")),
        ImageObjects("5.jpg", ("cat", "sofa", "tv")),
    ]
    sets = build_pope_sets(images, n_images=5, seed=2, template="{}")
    adv = [q for q in sets["adversarial"] if q.image == "5.jpg"]
    # cat/sofa/tv co-occur only with each other (all present): no candidate, so random fallbacks, all absent
    assert all(q.text not in {"cat", "sofa", "tv"} for q in adv if q.label == "no")
    qs = [q.text for q in sets["adversarial"] if q.image == "4.jpg"]
    # fork co-occurs with knife (2), plate (2), cup (2), bowl, dog: knife is first seen -> the negative
    assert qs[:2] == ["fork", "knife"]
    # cup's partners: fork, knife, dog; fork and dog are present, knife already asked -> fallback
    assert qs[3] not in {"fork", "cup", "dog", "knife"}
    # dog's partners: fork and cup (present) -> fallback, absent and not asked before
    assert qs[5] not in {"fork", "cup", "dog", "knife", qs[3]}


def test_counts_come_from_the_drawn_images_only() -> None:
    images = [ImageObjects(f"{i}.jpg", ("a", "b", "c")) for i in range(3)] + [
        ImageObjects("big.jpg", ("d", "e", "f")),
    ]
    sets = build_pope_sets(images, n_images=3, seed=4, template="{}")
    drawn = {q.image for q in sets["random"]}
    allowed = {o for img in images if img.image in drawn for o in img.objects}
    assert {q.text for q in sets["random"]} <= allowed


def test_too_few_images_or_categories_is_a_data_error(coco_root: Path) -> None:
    with pytest.raises(DataError, match="only 14 image"):
        _build(coco_root, n_images=20)
    tiny = [ImageObjects("1.jpg", ("a", "b", "c")), ImageObjects("2.jpg", ("a", "b", "d"))]
    with pytest.raises(DataError, match="no category left") as err:
        build_pope_sets(tiny, n_images=2, seed=0, source="inst.json")
    assert err.value.file == "inst.json"


def test_bad_build_params() -> None:
    with pytest.raises(ParamsError, match="n_images"):
        PopeBuildConfig(n_images=0)
    with pytest.raises(ParamsError, match="template"):
        PopeBuildConfig(question_template="Is there a cat?")
    with pytest.raises(ParamsError, match="unknown parameter"):
        PopeBuildConfig.from_dict({"images": 5})


def test_official_file_layout_loads_as_it_is(tmp_path: Path) -> None:
    """Lines copied in the released files' exact layout, including the older release's image_id and id 0."""
    path = tmp_path / "coco_pope_random.json"
    path.write_text(
        '{"question_id": 1, "image": "COCO_val2014_000000310196.jpg", "text": "Is there a snowboard in the image?", '
        '"label": "yes"}\n'
        '{"question_id": 2, "image": "COCO_val2014_000000310196.jpg", "text": "Is there an apple in the image?", '
        '"label": "no"}\n'
        '{"question_id": 0, "image": "COCO_val2014_000000548882.jpg", "image_id": 548882, "text": '
        '"Is there a dining table in the image?", "label": "yes"}\n'
    )
    questions = read_pope_questions(path)
    assert [(q.question_id, q.label) for q in questions] == [(1, "yes"), (2, "no"), (0, "yes")]
    assert _object(questions[1].text) == "apple"
