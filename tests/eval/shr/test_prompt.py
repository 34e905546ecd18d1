"""The judge prompt's content and structure."""

from __future__ import annotations

import re

import pytest

from hadpo.data.vg import Region as VGRegion
from hadpo.errors import DataError
from hadpo.eval.shr.prompt import (
    JUDGEMENT_HEADER,
    JudgePrompt,
    NormalizedRegion,
    Region,
    build_judge_prompt,
    format_judgement,
    prompt_blocks,
    region_lines,
)


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
        [NormalizedRegion(0.1, 0.1, 0.4, 0.3, "a red circle")],
        ["A red circle is on the left.", "There is no blue square in the image."],
        ["There is a red circle on the left", "There is a blue square in the middle"],
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


REGIONS = [NormalizedRegion(0.1, 0.25, 0.5, 1.0, "a red circle"), NormalizedRegion(0.123, 0.0, 0.456, 0.5, "  "),
           NormalizedRegion(0.0, 0.0, 0.3333, 0.6667, "sky ")]
FACTS = ["A red circle is on the left.", " There is no square. "]
SENTENCES = ["There is a red circle", "There is a blue square"]


def test_kit_slot_format():
    blocks = prompt_blocks(REGIONS, FACTS, SENTENCES, "kit")
    assert blocks == {
        "regions": "[0.10, 0.25, 0.50, 1.00]: a red circle\n[0.00, 0.00, 0.33, 0.67]: sky",
        "facts": "A red circle is on the left.\nThere is no square.",
        "sentences": "1. There is a red circle.\n2. There is a blue square.",
    }
    assert prompt_blocks([], [], SENTENCES, "kit")["facts"] == "(none)"


def test_original_slot_format():
    # boxes as Python lists of floats through '%.2f', phrases and facts as stored (a blank phrase is not empty),
    # a newline after every line, no period after a sentence, nothing for an empty list
    blocks = prompt_blocks(REGIONS, FACTS, SENTENCES, "original")
    assert blocks == {
        "regions": "[0.1, 0.25, 0.5, 1.0]: a red circle\n[0.12, 0.0, 0.46, 0.5]:   \n[0.0, 0.0, 0.33, 0.67]: sky \n",
        "facts": "A red circle is on the left.\n There is no square. \n",
        "sentences": "1. There is a red circle\n2. There is a blue square\n",
    }
    assert prompt_blocks([], [], SENTENCES, "original")["regions"] == ""


def test_a_template_file_with_named_slots(tmp_path):
    path = tmp_path / "judge.txt"
    path.write_text("Regions:\n{regions}\nFacts:\n{facts}\nJudge {{each}} one:\n{sentences}")
    template = JudgePrompt.from_file(path)
    prompt = build_judge_prompt(REGIONS[:1], FACTS[:1], SENTENCES[:1], template=template, judge_format="original")
    assert prompt == ("Regions:\n[0.1, 0.25, 0.5, 1.0]: a red circle\n\nFacts:\nA red circle is on the left.\n\n"
                      "Judge {each} one:\n1. There is a red circle\n")
    assert template.record() == {"source": str(path), "sha256": template.sha256} and len(template.sha256) == 64


def test_a_template_file_with_three_positional_slots_as_the_original(tmp_path):
    path = tmp_path / "original.txt"
    path.write_text("\nRegions:\n{}\n\nFacts:\n{}\n\nComments:\n{}\n")
    prompt = build_judge_prompt(REGIONS[:1], [], SENTENCES, template=JudgePrompt.from_file(path),
                                judge_format="original")
    assert prompt == ("\nRegions:\n[0.1, 0.25, 0.5, 1.0]: a red circle\n\n\nFacts:\n\n\nComments:\n"
                      "1. There is a red circle\n2. There is a blue square\n\n")


@pytest.mark.parametrize(
    "text,message",
    [("{regions} {facts}", "has no {sentences} slot"),
     ("{regions} {facts} {sentences} {image}", "unknown slot(s) {image}"),
     ("{} {}", "2 positional slot(s)"),
     ("{regions!r} {facts} {sentences}", "format spec or conversion"),
     ("{regions} {facts} {sentences} {", "not a valid template")],
    ids=["missing", "unknown", "two-positional", "conversion", "unbalanced"],
)
def test_bad_template_files_name_the_file_and_the_problem(tmp_path, text, message):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(DataError, match=re.escape(message)) as raised:
        JudgePrompt.from_file(path)
    assert str(path) in str(raised.value)


def test_a_missing_template_file_is_named(tmp_path):
    with pytest.raises(DataError, match="judge prompt template not found"):
        JudgePrompt.from_file(tmp_path / "nope.txt")


def test_the_kit_template_has_the_three_slots():
    assert JudgePrompt.kit().text.count("{regions}") == JudgePrompt.kit().text.count("{sentences}") == 1
    assert JUDGEMENT_HEADER in JudgePrompt.kit().text and JudgePrompt.kit().record()["source"] == "kit"
