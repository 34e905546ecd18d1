"""The SFT corpus: kinds, truthfulness, and the planted co-occurrence biases."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from hadpo.data.layout import DataLayout
from hadpo.io import read_json
from hadpo.models.prompts import DESCRIBE_INSTRUCTION, DESCRIPTION_INSTRUCTIONS
from hadpo.world import WorldConfig, load_world
from hadpo.world.corpus import caption, image_records
from hadpo.world.palette import build_categories
from hadpo.world.scenes import PlacedObject
from hadpo.world.text import no_answer, parse_description, parse_question, question, yes_answer


def corpus_by_image(root: Path) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for record in read_json(DataLayout(root).sft_conversations):
        image_id = int(record["image"].removeprefix("VG_100K/").removesuffix(".png"))
        out.setdefault(image_id, []).append(record)
    return out


def test_records_are_llava_conversations_for_train_images_only(small_world: Path) -> None:
    world = load_world(small_world)
    corpus = corpus_by_image(small_world)
    assert set(corpus) == set(world.splits["train"])
    for image_id, records in corpus.items():
        assert records[0]["kind"] == "desc"
        kinds = Counter(r["kind"] for r in records)
        assert kinds["desc"] == 1 and kinds["qa_yes"] == 2 and kinds["qa_no"] + kinds["qa_adv"] == 2
        assert kinds["qa_no"] >= 1
        for record in records:
            assert record["image"] == f"VG_100K/{image_id}.png"
            human, gpt = record["conversations"]
            assert human["from"] == "human" and gpt["from"] == "gpt"
            assert human["value"].startswith("<image>\n")
    ids = [r["id"] for records in corpus.values() for r in records]
    assert len(ids) == len(set(ids))


def test_answers_are_truthful_except_adversarial_yes(small_world: Path) -> None:
    world = load_world(small_world)
    names = world.category_names
    for image_id, records in corpus_by_image(small_world).items():
        present = world.images[image_id].present
        partners = {world.partner(n) for n in present}
        for record in records[1:]:
            asked = parse_question(record["conversations"][0]["value"], names)
            answer = record["conversations"][1]["value"]
            assert record["conversations"][0]["value"] == f"<image>\n{question(asked)}"
            if record["kind"] == "qa_yes":
                assert asked in present and answer == yes_answer(asked)
            elif record["kind"] == "qa_no":
                assert asked not in present and answer == no_answer(asked)
                # Random negatives avoid partners whenever another absent category exists (always with 4 pairs).
                assert asked not in partners
            else:
                assert asked in partners - present and answer in (yes_answer(asked), no_answer(asked))


def test_captions_state_objects_left_to_right_then_a_planted_partner_at_rate_p_hal(
    small_world: Path, small_world_config: WorldConfig
) -> None:
    world = load_world(small_world)
    names = world.category_names
    eligible = hallucinated = 0
    instructions = Counter()
    for image_id, records in corpus_by_image(small_world).items():
        image = world.images[image_id]
        instructions[records[0]["conversations"][0]["value"].removeprefix("<image>\n")] += 1
        mentions = [parsed for _, parsed in parse_description(records[0]["conversations"][1]["value"], names)]
        assert all(m is not None and m[1] is not None for m in mentions)
        columns = [m[1] for m in mentions]
        assert len(columns) == len(set(columns))
        true = [m for m in mentions if m[0] in image.present]
        assert true == [(o.name, o.column) for o in image.objects]
        extra = [m for m in mentions if m[0] not in image.present]
        # The default hal_position: a planted partner is the last sentence, whatever its column.
        assert mentions == true + extra
        absent_partners = {world.partner(n) for n in image.present} - image.present
        if absent_partners and len(image.objects) < 3:
            eligible += 1
            hallucinated += len(extra)
            assert len(extra) <= 1 and all(name in absent_partners for name, _ in extra)
        else:
            assert extra == []
    assert eligible > 150
    assert abs(hallucinated / eligible - small_world_config.p_hal) < 0.1
    assert set(instructions) <= set(DESCRIPTION_INSTRUCTIONS)
    main_share = instructions[DESCRIBE_INSTRUCTION] / sum(instructions.values())
    assert abs(main_share - small_world_config.p_main_instruction) < 0.1


def test_adversarial_questions_say_yes_at_rate_q_yes_adv(small_world: Path, small_world_config: WorldConfig) -> None:
    adversarial = [r for records in corpus_by_image(small_world).values() for r in records if r["kind"] == "qa_adv"]
    assert len(adversarial) > 200
    yes = sum(r["conversations"][1]["value"].startswith("Yes") for r in adversarial)
    assert abs(yes / len(adversarial) - small_world_config.q_yes_adv) < 0.08


def test_caption_never_hallucinates_into_a_full_scene() -> None:
    categories = build_categories(4)
    full = tuple(PlacedObject(c, col, 0, 16 * col + 1, 1, 12) for col, c in enumerate((0, 2, 4)))
    rng = np.random.default_rng(0)
    assert {caption(full, categories, rng, p_hal=1.0) for _ in range(5)} == {
        (
            "There is a red circle on the left. There is a green triangle in the middle. "
            "There is a purple diamond on the right.",
            None,
        )
    }
    single = (PlacedObject(0, 1, 0, 17, 1, 12),)
    text, planted = caption(single, categories, rng, p_hal=1.0)
    assert planted == "blue square" and "There is a blue square" in text


@pytest.mark.parametrize(
    ("hal_position", "expected"),
    [
        ("last", "There is a red circle on the right. There is a blue square on the left."),
        ("column", "There is a blue square on the left. There is a red circle on the right."),
    ],
)
def test_hal_position_puts_the_planted_partner_last_or_in_column_order(hal_position: str, expected: str) -> None:
    categories = build_categories(4)
    # A red circle on the right with both other columns free: over 8 seeds, its partner lands on the left at least once.
    scene = (PlacedObject(0, 2, 0, 33, 1, 12),)
    texts = {caption(scene, categories, np.random.default_rng(seed), 1.0, hal_position)[0] for seed in range(8)}
    assert expected in texts
    assert all("blue square" in text for text in texts)
    if hal_position == "last":
        assert all(text.startswith("There is a red circle") for text in texts)


def test_question_slots_cycle_yes_no_yes_adversarial() -> None:
    categories = build_categories(4)
    scene = (PlacedObject(0, 0, 0, 1, 1, 12),)  # a lone red circle: its partner, the blue square, is absent
    cfg = WorldConfig(qa_per_image=6, q_yes_adv=0.0)
    records = image_records(1, scene, categories, np.random.default_rng(0), cfg)
    assert [r["kind"] for r in records] == ["desc", "qa_yes", "qa_no", "qa_yes", "qa_adv", "qa_yes", "qa_no"]
    assert records[4]["conversations"][1]["value"] == no_answer("blue square")
    assert [r["id"] for r in records] == [f"1-{i}" for i in range(7)]
    assert image_records(1, scene, categories, np.random.default_rng(0), cfg.replace(qa_per_image=0))[0]["kind"] == (
        "desc"
    )
