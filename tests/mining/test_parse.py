"""Reading the three reply formats: what is accepted, and why a reply is refused."""

from __future__ import annotations

from hadpo.mining.parse import parse_correction, parse_questions, parse_rewrites
from hadpo.mining.prompts import (
    annotation_text,
    correct_prompt,
    format_correction,
    format_questions,
    format_rewrites,
    qa_prompt,
    rewrite_prompt,
)


def test_correction_round_trips_and_tolerates_markdown():
    reply = format_correction([("correct", "ok"), ("hallucination", "no cat")], "There is a dog.")
    parsed = parse_correction(reply, 2)
    assert parsed.ok and parsed.labels == ["correct", "hallucination"] and parsed.hallucinated == [1]
    assert parsed.corrected == "There is a dog."
    fancy = ("**Judgement:**\n1. **correct**: ok\n2. *hallucination*: no cat\n\n## Corrected description:\n"
             "\"There is a dog\nnext to a tree.\"")
    parsed = parse_correction(fancy, 2)
    assert parsed.ok and parsed.corrected == "There is a dog next to a tree."


def test_correction_without_hallucination_has_no_positive():
    parsed = parse_correction(format_correction([("correct", "ok"), ("cannot judge", "mood")], None), 2)
    assert parsed.ok and parsed.corrected is None and parsed.hallucinated == []
    # a copied description is not a correction when nothing was wrong
    echoed = parse_correction("Judgement:\n1. correct: ok\nCorrected description:\nThere is a dog.", 1)
    assert echoed.ok and echoed.corrected is None


def test_unusable_corrections_say_why():
    assert "Corrected description" in parse_correction("Judgement:\n1. correct: ok", 1).error
    assert "2 judgement line(s) for 3" in parse_correction(format_correction([("correct", "")] * 2, None), 3).error
    assert "unknown label" in parse_correction("Judgement:\n1. wrong: x\nCorrected description: NONE", 1).error
    missing = parse_correction(format_correction([("hallucination", "no cat")], None), 1)
    assert "no corrected description" in missing.error


def test_rewrites_keep_the_first_k_complete_pairs():
    reply = format_rewrites([("plain", "P1", "N1"), ("terse", "P2", "N2"), ("lively", "P3", "N3")])
    parsed = parse_rewrites(reply, 2)
    assert parsed.ok and [(p.style, p.positive, p.negative) for p in parsed.pairs] == [("plain", "P1", "N1"),
                                                                                      ("terse", "P2", "N2")]
    loose = "Style 1: plain\nPositive 1: first line\ncontinued\nNegative 1: N1\nPositive: P2\nNegative: N2"
    parsed = parse_rewrites(loose, 2)
    assert parsed.ok and parsed.pairs[0].positive == "first line continued" and parsed.pairs[1].negative == "N2"
    assert "2 rewrite pair(s) for the 3 asked" in parse_rewrites(reply.rsplit("Style 3", 1)[0], 3).error
    assert "no negative" in parse_rewrites("Style 1: x\nPositive: P", 1).error


def test_questions_are_checked_against_the_pope_rule_and_capped():
    items = [("Is there a cat in the image?", "no", "No, there is no cat in the image.",
              "Yes, there is a cat in the image."),
             ("Is there a fox in the image?", "no", "No, there is no fox in the image.",
              "Yes, there is a fox in the image."),
             ("Is there a dog in the image?", "yes", "Yes, there is a dog in the image.",
              "No, there is no dog in the image.")]
    parsed = parse_questions(format_questions(items), max_no=1, max_yes=5)
    assert parsed.ok and [(q.question, q.answer) for q in parsed.items] == [("Is there a cat in the image?", "no"),
                                                                            ("Is there a dog in the image?", "yes")]
    assert parse_questions("Questions: none", max_no=3, max_yes=3).items == []
    listed = "1. Question: Is there a cat?\n- Answer: No.\n- Correct answer: No, none.\n- Incorrect answer: Yes, one."
    parsed = parse_questions(listed, max_no=3, max_yes=3)
    assert [(q.answer, q.incorrect) for q in parsed.items] == [("no", "Yes, one.")]
    assert "no 'Question' blocks" in parse_questions("I cannot help.", max_no=3, max_yes=3).error
    swapped = format_questions([("Is there a cat in the image?", "no", "Yes, there is a cat.", "No, there is none.")])
    assert "does not read as 'no'" in parse_questions(swapped, max_no=3, max_yes=3).error
    assert "expected yes or no" in parse_questions(format_questions([("Q?", "maybe", "Yes.", "No.")]),
                                                   max_no=3, max_yes=3).error
    assert "lacks incorrect" in parse_questions("Question 1: Q?\nAnswer: yes\nCorrect: Yes.", max_no=3,
                                                max_yes=3).error


def test_prompts_carry_their_inputs(mining_world):
    from hadpo.mining.annotations import load_annotations

    image = next(iter(load_annotations(mining_world).values()))
    notes = annotation_text(image)
    assert notes.startswith("Objects:\n[") and "Regions:" in notes and image.objects[0].name in notes
    prompt = correct_prompt(notes, ["There is a cat.", "It is sunny."])
    assert "1. There is a cat.\n2. It is sunny." in prompt and notes in prompt
    assert "pairs of rewrites" in rewrite_prompt("POS", "NEG", 3) and "Write 3 pairs" in rewrite_prompt("P", "N", 3)
    qa = qa_prompt(notes, "POS", "NEG", ["There is a cat."], max_hallucinated=2, max_present=1,
                   yes_example="Yes, a dog.", no_example="No dog.")
    assert "up to 2 question(s)" in qa and "There is a cat." in qa and '"Yes, a dog."' in qa
