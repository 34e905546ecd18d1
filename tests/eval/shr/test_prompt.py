"""The judge prompt's content and structure."""

from __future__ import annotations

import pytest

from hadpo.data.vg import Region as VGRegion
from hadpo.eval.shr.prompt import JUDGEMENT_HEADER, Region, build_judge_prompt, format_judgement, region_lines


def test_region_boxes_are_normalised_to_two_decimals():
    regions = [Region(10, 20, 30, 40, "a red circle"), Region(0, 0, 5, 5, "  "), Region(50, 0, 50, 100, "sky ")]
    # x1 = 10/100, y1 = 20/200, x2 = 40/100, y2 = 60/200; the blank phrase is dropped
    assert region_lines(regions, 100, 200) == [
        "[0.10, 0.10, 0.40, 0.30]: a red circle",
        "[0.50, 0.00, 1.00, 0.50]: sky",
    ]


def test_vg_reader_regions_are_accepted():
    region = VGRegion(region_id=1, image_id=5, phrase="a dog", x=0, y=0, width=48, height=24)
    assert region_lines([region], 48, 48) == ["[0.00, 0.00, 1.00, 0.50]: a dog"]


def test_bad_image_size_is_an_error():
    with pytest.raises(ValueError, match="positive"):
        region_lines([], 0, 10)


def test_prompt_holds_regions_facts_numbered_sentences_and_format():
    prompt = build_judge_prompt(
        ["[0.10, 0.10, 0.40, 0.30]: a red circle"],
        ["A red circle is on the left.", "There is no blue square in the image."],
        ["There is a red circle on the left.", "There is a blue square in the middle."],
    )
    regions_at = prompt.index("[0.10, 0.10, 0.40, 0.30]: a red circle")
    facts_at = prompt.index("There is no blue square in the image.")
    sentences_at = prompt.index("1. There is a red circle on the left.\n2. There is a blue square in the middle.")
    assert regions_at < facts_at < sentences_at  # the original's slot order
    for word in ("hallucination", "correct", "cannot judge", JUDGEMENT_HEADER, "reason"):
        assert word in prompt


def test_empty_facts_and_regions_are_marked():
    prompt = build_judge_prompt([], [], ["A."])
    assert prompt.count("(none)") == 2


def test_format_judgement_matches_the_requested_format():
    assert format_judgement([("correct", "yes"), ("hallucination", "no dog")]) == (
        "Judgement:\n1. correct: yes\n2. hallucination: no dog"
    )
