"""MMHal-Bench's judge prompt: the kit's wording with its four slots, a template file that replaces it (checked when
read), and the reading of the rating a reply ends with."""

from __future__ import annotations

import hashlib

import pytest

from hadpo.errors import DataError
from hadpo.eval.mmhal.prompt import KIT_TEMPLATE, MmhalPrompt, format_rating, parse_rating, prompt_blocks

BLOCKS = prompt_blocks(("Bird", "Tree"), "What colour is the bird?", "The bird is blue.", "It is red.")


def test_the_kits_prompt_holds_the_slots_in_order_and_the_whole_scale():
    prompt = MmhalPrompt.kit().fill(BLOCKS)
    at = [prompt.index(text) for text in ("Bird, Tree", "What colour is the bird?", "The bird is blue.", "It is red.")]
    assert at == sorted(at)  # image content, question, human answer, model answer
    for n in range(7):
        assert f"\n{n} = " in prompt
    assert prompt.rstrip().endswith('"Rating: N", N from 0 to 6.')
    assert MmhalPrompt.kit().record() == {"source": "kit", "sha256": hashlib.sha256(KIT_TEMPLATE.encode()).hexdigest()}


def test_empty_content_and_an_empty_answer_are_marked():
    kit = MmhalPrompt.kit().fill(prompt_blocks((), "How many?", "One.", "  "))
    assert "(none)" in kit and "(empty answer)" in kit


def test_a_template_file_replaces_the_kits_words_named_or_positional(tmp_path):
    named = tmp_path / "named.txt"
    named.write_text("A {answer} / Q {question} / GT {gt_answer} / C {image_content} {{literal}}")
    template = MmhalPrompt.from_file(named)
    assert template.fill(BLOCKS) == "A It is red. / Q What colour is the bird? / GT The bird is blue. / C Bird, Tree " \
                                    "{literal}"
    assert template.record()["source"] == str(named)
    positional = tmp_path / "positional.txt"
    positional.write_text("{} | {} | {} | {}")  # image content, question, human answer, model answer
    assert MmhalPrompt.from_file(positional).fill(BLOCKS) == (
        "Bird, Tree | What colour is the bird? | The bird is blue. | It is red.")


@pytest.mark.parametrize("text,says", [
    ("{question} {answer} {regions}", r"unknown slot\(s\) \{regions\}"),
    ("{question} {answer} {gt_answer}", r"the template has no \{image_content\} slot"),
    ("{} {} {}", r"3 positional slot\(s\) \{\}; a positional template has exactly 4"),
    ("{question:>5} {answer} {gt_answer} {image_content}", "may not carry a format spec"),
    ("{question", "not a valid template"),
])
def test_a_bad_template_file_is_refused_naming_it(tmp_path, text, says):
    path = tmp_path / "judge.txt"
    path.write_text(text)
    with pytest.raises(DataError, match=says) as caught:
        MmhalPrompt.from_file(path)
    assert caught.value.file == str(path)


def test_a_missing_template_file_is_named():
    with pytest.raises(DataError, match="judge prompt template not found"):
        MmhalPrompt.from_file("/nonexistent/judge.txt")


@pytest.mark.parametrize("reply,rating", [
    ("The answer is right.\nRating: 5", 5),
    ("**Rating:** 2", 2),
    ("rating = 0", 0),
    ("RATING: 6 (very informative)", 6),
    ("Rating: 3\nOn reflection, it is better than that.\nRating: 4", 4),  # the last word counts
    ("Rating: 4/6", 4),
    ("Rating: 7", None),
    ("Rating: 10", None),
    ("I would rate it five.", None),
    ("", None),
])
def test_the_rating_is_read_from_the_last_rating_line(reply, rating):
    assert parse_rating(reply) == rating


def test_an_offline_judges_reply_reads_back():
    assert parse_rating(format_rating(2, "It names a dog that is not there.")) == 2
