"""Conversation strings must render exactly as HA-DPO's (training: Vicuna v1; evaluation: llava_v1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hadpo.models.prompts import (
    DESCRIBE_INSTRUCTION,
    DESCRIPTION_INSTRUCTIONS,
    SHORT_ANSWER_SUFFIX,
    get_template,
    strip_image_placeholder,
)

VICUNA = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
LLAVA = (
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions."
)


def test_training_string_is_vicuna_v1_with_eos_after_answer() -> None:
    """The answer as written, as the original's 'ASSISTANT: ' + answer + '</s>'; strip removes its whitespace."""
    template = get_template("vicuna_v1")
    head = f"{VICUNA} USER: <image>\nDescribe this image in detail. ASSISTANT: "
    assert template.full("Describe this image in detail.", "  A red circle. ", "</s>") == (
        f"{head}  A red circle. </s>")
    assert template.full("Describe this image in detail.", "  A red circle. ", "</s>", strip=True) == (
        f"{head}A red circle.</s>")


def test_pope_prompt_is_llava_v1_verbatim_question_ending_at_assistant() -> None:
    prompt = get_template("llava_v1").prompt("Is there a dog in the image?")
    assert prompt == f"{LLAVA} USER: <image>\nIs there a dog in the image? ASSISTANT:"
    assert SHORT_ANSWER_SUFFIX not in prompt


def test_plain_template_has_no_system_sentence() -> None:
    assert get_template("plain").prompt("Q?") == "USER: <image>\nQ? ASSISTANT:"


def test_full_is_prompt_plus_answer_suffix() -> None:
    conv = get_template("llava_v1")
    assert conv.full("Q?", "Yes.", "</s>") == conv.prompt("Q?") + conv.answer_suffix("Yes.", "</s>")
    assert conv.answer_suffix("Yes.", "</s>") == " Yes.</s>"


def test_description_instructions_in_original_order() -> None:
    assert DESCRIPTION_INSTRUCTIONS == (
        "Describe this image in detail.",
        "Take a look at this image and describe what you notice.",
        "Please provide a detailed description of the picture.",
        "Could you describe the contents of this image for me?",
    )
    assert DESCRIPTION_INSTRUCTIONS[0] == DESCRIBE_INSTRUCTION


def test_unknown_template_is_rejected() -> None:
    with pytest.raises(ValueError, match="vicuna_v1"):
        get_template("llama3")


@pytest.mark.parametrize(
    ("stored", "question"),
    [
        ("<image>\nIs there a cat in the image?", "Is there a cat in the image?"),
        ("Is there a cat in the image?\n<image>", "Is there a cat in the image?"),
        ("  Describe this image.  ", "Describe this image."),
    ],
)
def test_strip_image_placeholder(stored: str, question: str) -> None:
    assert strip_image_placeholder(stored) == question


def test_prompt_tokens_are_a_prefix_of_the_training_tokens(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    conv = get_template("vicuna_v1")
    for question, answer in [("Is there a red circle in the image?", "Yes, there is a red circle."), ("Q?", "No.")]:
        prompt_ids = tok(conv.prompt(question))["input_ids"]
        full_ids = tok(conv.full(question, answer, tok.eos_token))["input_ids"]
        assert full_ids[: len(prompt_ids)] == prompt_ids
        assert full_ids[-1] == tok.eos_token_id
