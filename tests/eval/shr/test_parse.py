"""Parsing judge replies by the original's rule, with a usability verdict."""

from __future__ import annotations

from hadpo.eval.shr.parse import judgement_lines, label_of, parse_judgement, unusable_reason


def test_lines_after_the_first_judgement_line_with_numbers_dropped():
    reply = "Sure.\nJudgement:\n1. Correct: the circle is there.\n\n2. hallucination: no square.\n3. Cannot judge: mood"
    parsed = parse_judgement(reply, 3)
    assert parsed.ok
    assert parsed.lines == ["Correct: the circle is there.", "hallucination: no square.", "Cannot judge: mood"]
    assert parsed.labels == ["correct", "hallucination", "cannot judge"]


def test_header_may_share_its_line_and_later_headers_are_lines():
    # the first line *containing* "Judgement:" starts the list, as the original
    assert judgement_lines("Here is my Judgement:\n1. correct: a") == ["correct: a"]
    assert judgement_lines("no header here") is None


def test_label_is_text_before_first_colon_lowercased():
    assert label_of("Hallucination: the dog: absent") == "hallucination"
    assert label_of("correct") == "correct"


def test_a_line_with_only_a_number_is_dropped():
    assert parse_judgement("Judgement:\n1.\n1. correct: x", 1).labels == ["correct"]


def test_unusable_replies_say_why():
    assert "no 'Judgement:'" in (parse_judgement("1. correct: x", 1).error or "")
    assert "2 judgement line(s) for 3" in (parse_judgement("Judgement:\n1. correct: a\n2. correct: b", 3).error or "")
    bad = parse_judgement("Judgement:\n1. correct: a\n2. partially: b", 2)
    assert not bad.ok and "line 2" in (bad.error or "") and "'partially'" in (bad.error or "")


def test_original_reading_keeps_what_the_kit_strips():
    reply = "Judgement:\r\n1. correct : fine\n   2. hallucination: no dog\n3. Cannot judge: mood"
    kit = parse_judgement(reply, 3)
    assert kit.ok and kit.labels == ["correct", "hallucination", "cannot judge"]
    original = parse_judgement(reply, 3, "original")
    # "\r" stays on its line (split on "\n" only), the space before ":" stays, the indented line keeps its number
    assert original.labels == ["correct ", "2. hallucination", "cannot judge"]
    assert not original.ok and unusable_reason(original, "original") is None  # kept: the original re-asks nothing
    assert unusable_reason(kit, "kit") is None


def test_original_reading_asks_again_only_without_a_judgement_line():
    assert unusable_reason(parse_judgement("I cannot help.", 2, "original"), "original") is not None
    short = parse_judgement("Judgement:\n1. correct: x", 2, "original")
    assert short.error == "1 judgement line(s) for 2 sentence(s)" and unusable_reason(short, "original") is None
    assert unusable_reason(parse_judgement("Judgement:\n1. correct: x", 2), "kit") == short.error
