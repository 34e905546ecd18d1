"""Encoding: image-token expansion as LlavaProcessor, answer-only supervision, length checks, batch layouts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from PIL import Image

from hadpo.data.encode import (
    IGNORE_INDEX,
    Encoder,
    collate_packed,
    collate_padded,
    collate_padded_pairs,
)
from hadpo.data.pairs import PreferencePair
from hadpo.errors import DataError
from hadpo.models.image import prepare_image
from hadpo.models.prompts import Conversation, get_template

QUESTION = "Is there a red circle in the image?"
YES = "Yes, there is a red circle in the image."
NO = "No, there is no blue square in the image."


@pytest.fixture(scope="module")
def processor(tiny_model_dir: Path):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def encoder(processor) -> Encoder:
    return Encoder(processor)


def _image(width: int = 60, height: int = 36, colour=(200, 30, 30)) -> Image.Image:
    return Image.new("RGB", (width, height), colour)


def test_prompt_and_pixels_match_llava_processor(encoder: Encoder, processor) -> None:
    image = _image()
    prompt = get_template("vicuna_v1").prompt(QUESTION)
    reference = processor(
        images=[prepare_image(image, "pad", processor.image_processor.image_mean)], text=[prompt], return_tensors="pt"
    )

    assert encoder.prompt_ids(QUESTION) == tuple(reference["input_ids"][0].tolist())
    assert encoder.image_token_count == 9  # 48 px / 16 px patches, CLS dropped
    assert encoder.prompt_ids(QUESTION).count(encoder.image_token_id) == 9
    torch.testing.assert_close(encoder.pixel_values(image), reference["pixel_values"][0])


def test_pad_mode_pads_before_the_processor_crop(processor, tmp_path: Path) -> None:
    # A wide image: "crop" lets the processor cut the sides, "pad" keeps them (on a mean-colour canvas).
    image = _image(96, 32)
    path = tmp_path / "wide.png"
    image.save(path)
    padded = Encoder(processor, image_mode="pad").pixel_values(path)
    cropped = Encoder(processor, image_mode="crop").pixel_values(path)
    assert padded.shape == cropped.shape == (3, 48, 48)
    assert not torch.allclose(padded, cropped)
    with pytest.raises(DataError, match=r"missing\.png"):
        Encoder(processor).pixel_values(tmp_path / "missing.png")


def test_only_answer_and_eos_are_supervised(encoder: Encoder, processor) -> None:
    sample = encoder.encode_sft(_image(), QUESTION, YES)
    tok = processor.tokenizer

    labels = sample.labels
    first = sample.first_answer_index
    assert first == len(sample.prompt_ids)
    assert all(label == IGNORE_INDEX for label in labels[:first])  # BOS, system, image tokens, question
    assert list(labels[first:]) == list(sample.answer_ids)
    assert sample.answer_ids[-1] == tok.eos_token_id
    assert tok.decode(sample.answer_ids) == f" {YES}</s>"
    # The prompt + answer ids are the tokenisation of the whole training string (image expanded).
    full = get_template("vicuna_v1").full(QUESTION, YES, tok.eos_token)
    expected = encoder._expand(tok(full)["input_ids"])
    assert sample.input_ids == expected


def test_pair_shares_the_prompt(encoder: Encoder) -> None:
    pair = encoder.encode_pair(_image(), QUESTION, YES, NO)
    assert pair.prompt_ids == encoder.prompt_ids(QUESTION)
    assert pair.answers == (pair.chosen_ids, pair.rejected_ids)
    assert pair.chosen_ids != pair.rejected_ids


def test_boundary_merge_falls_back_to_offsets(processor) -> None:
    # A template whose prompt ends inside a word: "... Is the" + "re a red circle" tokenises "there" as one
    # token, so the prompt's own ids are not a prefix; the straddling token must start the answer.
    class MidWord(Conversation):
        def prompt(self, question: str) -> str:
            return f"USER: <image>\n{question} ASSISTANT: Is the"

        def answer_suffix(self, answer: str, eos: str, *, strip: bool = False) -> str:
            return f"{answer}{eos}"

    encoder = Encoder(processor, template="plain")
    encoder.template = MidWord("midword", None)
    tok = processor.tokenizer
    full_ids = tok(encoder.template.prompt("Q?") + "re a red circle")["input_ids"]
    prompt_only = tok(encoder.template.prompt("Q?"))["input_ids"]
    assert full_ids[: len(prompt_only)] != prompt_only  # the case under test really happens

    prompt, answer = encoder.split_answer("Q?", "re a red circle")
    assert tok.decode(answer) == " there a red circle</s>"
    assert encoder._expand(full_ids) == prompt + answer[:-1]


def test_overflow_is_an_error_naming_the_record(processor) -> None:
    encoder = Encoder(processor, max_length=40)
    pair = PreferencePair("17", QUESTION, YES, NO + " " + NO, "qa", "pope_data.json", "3")
    with pytest.raises(DataError, match=r"pope_data\.json.*record '3'.*field 'chosen'.*exceeds max_length 40"):
        encoder.check_lengths([pair])
    with pytest.raises(DataError, match="exceeds max_length"):
        encoder.encode_preference(pair, _image())
    roomy = Encoder(processor, max_length=200)
    assert roomy.check_lengths([pair]) == len(roomy.encode_preference(pair, _image()).prompt_ids) + max(
        len(a) for a in roomy.encode_preference(pair, _image()).answers
    )


@dataclass
class _Sft:
    question: str
    answer: str


def test_bad_texts_are_located_errors(encoder: Encoder) -> None:
    with pytest.raises(DataError, match=r"sft\.jsonl.*record 1.*field 'answer'.*<image>"):
        encoder.check_lengths([_Sft(QUESTION, YES), _Sft(QUESTION, "<image> yes")], file="sft.jsonl")
    with pytest.raises(DataError, match=r"field 'rejected'.*empty"):
        encoder.encode_pair(_image(), QUESTION, YES, "  ")


def test_packed_layout(encoder: Encoder) -> None:
    short = encoder.encode_pair(_image(), QUESTION, YES, "No.")
    long = encoder.encode_pair(_image(40, 40), "Describe this image in detail.", "There is a red circle.", NO)
    batch = collate_packed([short, long], encoder.pad_id)
    padded = collate_padded_pairs([short, long], encoder.pad_id)

    for row, item in enumerate([short, long]):
        p, c, r = len(item.prompt_ids), len(item.chosen_ids), len(item.rejected_ids)
        assert batch.input_ids[row, : p + c + r].tolist() == list(item.prompt_ids + item.chosen_ids + item.rejected_ids)
        assert (batch.input_ids[row, p + c + r :] == encoder.pad_id).all()
        assert batch.position_ids[row, p : p + c].tolist() == list(range(p, p + c))
        assert batch.position_ids[row, p + c : p + c + r].tolist() == list(range(p, p + r))
        allowed = batch.allowed[row]
        rejected_first = p + c
        assert allowed[rejected_first, :p].all() and not allowed[rejected_first, p : p + c].any()
        assert allowed[rejected_first, rejected_first] and not allowed[rejected_first, rejected_first + 1 :].any()
        assert allowed[p + c - 1, : p + c].all() and not allowed[p + c - 1, p + c :].any()
        # Each answer's targets are exactly the supervised labels of its padded sequence.
        for k, side in enumerate((padded.chosen, padded.rejected)):
            labels = side.labels[row]
            assert batch.targets[row, k][batch.answer_mask[row, k]].tolist() == labels[labels != IGNORE_INDEX].tolist()
            assert batch.gather_positions[row, k, 0] == p - 1
        assert batch.gather_positions[row, 1, 1] == p + c  # rejected token 1 is predicted by rejected token 0

    assert batch.answer_lengths.tolist() == [
        [len(short.chosen_ids), 2 + 1],
        [len(long.chosen_ids), len(long.rejected_ids)],
    ]
    assert batch.pixel_values.shape == (2, 3, 48, 48)


def test_packed_rows_with_fewer_answers_have_masked_slots(encoder: Encoder) -> None:
    """A pair row next to a single-answer row (mDPO's conditional rows): S = 2, the single row's second slot is
    fully masked (length 0, targets -100), its first slot is laid out as in an SFT batch, and it is padded to
    the pair row's length with padding that attends only to itself."""
    pair = encoder.encode_pair(_image(), QUESTION, YES, NO)
    single = encoder.encode_sft(_image(40, 40), QUESTION, YES)
    batch = collate_packed([pair, single], encoder.pad_id)
    alone = collate_packed([single], encoder.pad_id)
    p, a = len(single.prompt_ids), len(single.answer_ids)
    assert batch.targets.shape[:2] == (2, 2)
    assert batch.answer_lengths[1].tolist() == [a, 0]
    assert (batch.targets[1, 1] == IGNORE_INDEX).all() and not batch.answer_mask[1, 1].any()
    width = alone.targets.shape[-1]
    assert batch.targets[1, 0, :width].tolist() == alone.targets[0, 0].tolist()
    assert batch.gather_positions[1, 0, :a].tolist() == alone.gather_positions[0, 0, :a].tolist()
    assert batch.input_ids[1, : p + a].tolist() == list(single.input_ids)
    assert (batch.input_ids[1, p + a :] == encoder.pad_id).all()
    pad = batch.allowed[1, p + a :, p + a :]
    assert torch.equal(pad, torch.eye(pad.shape[0], dtype=torch.bool))
    assert not batch.allowed[1, p + a :, : p + a].any()


def test_padded_batch_is_right_padded(encoder: Encoder) -> None:
    a = encoder.encode_sft(_image(), QUESTION, YES)
    b = encoder.encode_sft(_image(), QUESTION, "No.")
    batch = collate_padded([a, b], encoder.pad_id)
    n = len(b.input_ids)
    assert batch.attention_mask[1].tolist() == [1] * n + [0] * (batch.input_ids.shape[1] - n)
    assert (batch.labels[1, n:] == IGNORE_INDEX).all()
    assert batch.first_answer_index.tolist() == [a.first_answer_index, b.first_answer_index]
    moved = batch.to("cpu", torch.float64)
    assert moved.pixel_values.dtype == torch.float64 and moved.input_ids.dtype == torch.long
