"""Turn (image, question, answers) into model inputs: token ids, supervision, pixel values, and batches.

Token layout of every sample (LLaVA-1.5 training format, ``hadpo.models.prompts``)::

    <s> <system> USER: <image>×N \\n <question> ASSISTANT:  | <answer> </s>
    '------------------ prompt (never supervised) -------'  '- answer -'

The ``<image>`` placeholder is expanded to the model's N image tokens exactly as ``LlavaProcessor`` does
(576 for llava-1.5-7b-hf). Only the answer tokens and the final EOS are supervised; the BOS, the system
sentence, the image tokens, the question and padding never are.

Two batch layouts come out of the collators:

- :class:`PackedBatch` (the kit's fast path, :mod:`hadpo.train.logps`): one row per sample holding the
  prompt once followed by each answer (``prompt + chosen + rejected`` for a pair, ``prompt + answer`` for
  SFT), with a block-causal ``allowed`` mask in which an answer sees the prompt and itself, never another
  answer, and position ids that restart at the prompt length for every answer. Right padded.
- :class:`PaddedBatch` / :class:`PaddedPairBatch`: ordinary right-padded sequences with ``-100`` labels, as
  the original collator built them (the naive reference path).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hadpo.errors import DataError
from hadpo.models.image import ImageMode, prepare_image
from hadpo.models.prompts import IMAGE_PLACEHOLDER, get_template

if TYPE_CHECKING:
    import torch
    from PIL import Image

IGNORE_INDEX = -100


@dataclass(frozen=True)
class EncodedPair:
    """A preference pair: the shared prompt ids (image tokens expanded) and each answer's ids (ending in EOS)."""

    prompt_ids: tuple[int, ...]
    chosen_ids: tuple[int, ...]
    rejected_ids: tuple[int, ...]
    pixel_values: torch.Tensor

    @property
    def answers(self) -> tuple[tuple[int, ...], ...]:
        """The answers in packing order: chosen, then rejected."""
        return (self.chosen_ids, self.rejected_ids)


@dataclass(frozen=True)
class EncodedSample:
    """A supervised sample: prompt ids (image tokens expanded) and answer ids (ending in EOS)."""

    prompt_ids: tuple[int, ...]
    answer_ids: tuple[int, ...]
    pixel_values: torch.Tensor

    @property
    def answers(self) -> tuple[tuple[int, ...], ...]:
        """The single answer, in the same shape as :attr:`EncodedPair.answers`."""
        return (self.answer_ids,)

    @property
    def first_answer_index(self) -> int:
        """Index of the first answer token in :attr:`input_ids` (SFT may up-weight its prediction)."""
        return len(self.prompt_ids)

    @property
    def input_ids(self) -> tuple[int, ...]:
        """Prompt followed by answer."""
        return self.prompt_ids + self.answer_ids

    @property
    def labels(self) -> tuple[int, ...]:
        """``-100`` on the prompt (BOS, system, image tokens, question), the answer ids elsewhere."""
        return (IGNORE_INDEX,) * len(self.prompt_ids) + self.answer_ids


class _Batch:
    """Dataclass mixin: move every tensor field to a device (and floating ones to a dtype)."""

    def to(self, device: Any = None, dtype: Any = None):
        """A copy with tensors on ``device``; ``dtype`` applies to floating-point tensors only (pixels)."""
        import torch

        moved = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, torch.Tensor):
                value = value.to(device=device, dtype=dtype if value.is_floating_point() else None)
            elif isinstance(value, _Batch):
                value = value.to(device, dtype)
            moved[f.name] = value
        return type(self)(**moved)


@dataclass(frozen=True)
class PackedBatch(_Batch):
    """Packed rows ``prompt + answer_0 [+ answer_1]``, right padded to length L; S answers per row.

    ``gather_positions[b, s, t]`` is the index of the hidden state that predicts token ``t`` of answer ``s``
    (the last prompt token for ``t == 0``); ``targets[b, s, t]`` is that token, ``-100`` past the answer's end.
    """

    input_ids: torch.Tensor  # (B, L) long
    position_ids: torch.Tensor  # (B, L) long
    allowed: torch.Tensor  # (B, L, L) bool: query i may attend key j
    pixel_values: torch.Tensor  # (B, 3, H, W)
    prompt_lengths: torch.Tensor  # (B,) long
    answer_lengths: torch.Tensor  # (B, S) long
    gather_positions: torch.Tensor  # (B, S, T) long
    targets: torch.Tensor  # (B, S, T) long

    @property
    def answer_mask(self) -> torch.Tensor:
        """(B, S, T) bool: True on real answer tokens."""
        return self.targets != IGNORE_INDEX


@dataclass(frozen=True)
class PaddedBatch(_Batch):
    """Right-padded full sequences with labels (``-100`` off the answer) and a 2D attention mask."""

    input_ids: torch.Tensor  # (B, L) long
    labels: torch.Tensor  # (B, L) long
    attention_mask: torch.Tensor  # (B, L) long
    pixel_values: torch.Tensor  # (B, 3, H, W)
    first_answer_index: torch.Tensor  # (B,) long


@dataclass(frozen=True)
class PaddedPairBatch(_Batch):
    """The original collator's layout: chosen and rejected padded separately, each with its own image copy."""

    chosen: PaddedBatch
    rejected: PaddedBatch


def _answers_of(record: Any) -> tuple[tuple[str, str], ...]:
    if hasattr(record, "chosen") and hasattr(record, "rejected"):
        return (("chosen", record.chosen), ("rejected", record.rejected))
    return (("answer", record.answer),)


class Encoder:
    """Encode LLaVA-1.5 training samples for a ``LlavaProcessor`` (tiny or ``llava-hf/llava-1.5-7b-hf``).

    Args:
        processor: the model's ``LlavaProcessor`` (tokenizer + image processor + image-token geometry).
        template: conversation template name (``vicuna_v1`` trains, as the original).
        image_mode: ``pad`` pads to a square with the mean colour first (LLaVA-1.5), ``crop`` does not.
        max_length: longest allowed ``prompt + answer`` sequence in tokens (``None``: no limit). Longer samples
            raise :class:`~hadpo.errors.DataError`; nothing is ever truncated.
        answer_whitespace: ``keep`` supervises an answer's leading and trailing spaces and newlines as the
            original does (one or two more tokens, e.g. ``. ▁ </s>``); ``strip`` removes them first.
    """

    def __init__(
        self, processor: Any, template: str = "vicuna_v1", image_mode: ImageMode = "pad", max_length: int | None = None,
        answer_whitespace: str = "keep",
    ) -> None:
        if answer_whitespace not in ("keep", "strip"):
            raise ValueError(f"answer_whitespace must be 'keep' or 'strip', got {answer_whitespace!r}")
        if image_mode not in ("pad", "crop"):
            raise ValueError(f"image_mode must be 'pad' or 'crop', got {image_mode!r}")
        if max_length is not None and max_length <= 0:
            raise ValueError(f"max_length must be positive or None, got {max_length!r}")
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.image_processor = processor.image_processor
        self.template = get_template(template)
        self.image_mode: ImageMode = image_mode
        self.max_length = max_length
        self.strip_answers = answer_whitespace == "strip"
        self.image_token_id: int = self.tokenizer.convert_tokens_to_ids(IMAGE_PLACEHOLDER)
        if self.tokenizer.eos_token_id is None or self.tokenizer.pad_token_id is None:
            raise ValueError("the tokenizer needs an EOS and a pad token")
        self.eos_id: int = self.tokenizer.eos_token_id
        self.pad_id: int = self.tokenizer.pad_token_id
        self.image_token_count: int = self._image_token_count()
        self._prompt_cache: dict[str, tuple[int, ...]] = {}

    # ----- geometry -------------------------------------------------------------------------------------------
    def _pixel_size(self) -> tuple[int, int]:
        ip = self.image_processor
        crop = getattr(ip, "crop_size", None)
        if getattr(ip, "do_center_crop", False) and crop:
            return int(crop["height"]), int(crop["width"])
        size = getattr(ip, "size", None) or {}
        if "height" in size and "width" in size:
            return int(size["height"]), int(size["width"])
        raise ValueError(f"cannot tell the processed image size from {type(ip).__name__}")

    def _image_token_count(self) -> int:
        # Same arithmetic as LlavaProcessor.replace_image_token: patches (+ CLS), minus CLS for "default".
        height, width = self._pixel_size()
        patch = self.processor.patch_size
        count = (height // patch) * (width // patch) + self.processor.num_additional_image_tokens
        if self.processor.vision_feature_select_strategy == "default":
            count -= 1
        return count

    # ----- text -----------------------------------------------------------------------------------------------
    def _tokenize(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=True)["input_ids"])

    def _expand(self, ids: Sequence[int]) -> tuple[int, ...]:
        out: list[int] = []
        for i in ids:
            out.extend([i] * self.image_token_count if i == self.image_token_id else [i])
        return tuple(out)

    @staticmethod
    def _check_text(text: str, field: str, where: tuple[str, Any]) -> None:
        if IMAGE_PLACEHOLDER in text:
            raise DataError(where[0], f"must not contain {IMAGE_PLACEHOLDER!r}", record=where[1], field=field)
        if not text.strip():
            raise DataError(where[0], "is empty", record=where[1], field=field)

    def prompt_ids(self, question: str) -> tuple[int, ...]:
        """BOS + system + ``USER: <image>×N\\n{question} ASSISTANT:`` as ids (cached per question)."""
        cached = self._prompt_cache.get(question)
        if cached is None:
            cached = self._expand(self._tokenize(self.template.prompt(question)))
            self._prompt_cache[question] = cached
        return cached

    def split_answer(self, question: str, answer: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(prompt ids, answer ids + EOS) of ``prompt + answer``, tokenised together as the model will see it.

        The answer starts where the prompt's own tokenisation ends when that is a prefix of the full
        tokenisation (always so for the kit's templates: the prompt ends at ``ASSISTANT:``). Otherwise a merge
        crossed the boundary, and the fast tokenizer's offsets decide: the first token ending past the prompt's
        last character starts the answer (a token straddling the boundary is supervised).
        """
        prompt_text = self.template.prompt(question)
        full_text = prompt_text + self.template.answer_suffix(answer, eos="", strip=self.strip_answers)
        prompt = self._tokenize(prompt_text)
        full = self._tokenize(full_text)
        if full[: len(prompt)] == prompt:
            cut = len(prompt)
        else:
            enc = self.tokenizer(full_text, add_special_tokens=True, return_offsets_mapping=True)
            boundary = len(prompt_text)
            cut = next((k for k, (_, end) in enumerate(enc["offset_mapping"]) if end > boundary), len(full))
        answer_ids = (*full[cut:], self.eos_id)
        prompt_ids = self._expand(full[:cut])
        # The boundary must leave the image in the prompt and at least one real answer token before EOS.
        # Explicit raises rather than `assert`, so the checks survive `python -O`.
        if not 0 < cut < len(full):
            raise AssertionError(f"no answer tokens found after the prompt for answer {answer!r}")
        if prompt_ids.count(self.image_token_id) != self.image_token_count or self.image_token_id in answer_ids:
            raise AssertionError(f"the image tokens are not all in the prompt for question {question!r}")
        return prompt_ids, answer_ids

    # ----- images ---------------------------------------------------------------------------------------------
    def pixel_values(self, image: str | Path | Image.Image) -> torch.Tensor:
        """(3, H, W) pixel values: pad to square (``pad`` mode) with the processor's mean, then its transform."""
        from PIL import Image as PILImage

        if isinstance(image, (str, Path)):
            try:
                with PILImage.open(image) as opened:
                    image = opened.convert("RGB")
            except OSError as err:
                raise DataError(image, f"cannot read image: {err}") from None
        prepared = prepare_image(image, self.image_mode, self.image_processor.image_mean)
        pixels = self.image_processor(images=[prepared], return_tensors="pt")["pixel_values"][0]
        expected = self._pixel_size()
        if tuple(pixels.shape[-2:]) != expected:
            raise AssertionError(f"the image processor gave {tuple(pixels.shape)}, expected size {expected}")
        return pixels

    # ----- samples --------------------------------------------------------------------------------------------
    def _check_length(self, n_prompt: int, n_answer: int, field: str, where: tuple[str, Any]) -> None:
        if self.max_length is not None and n_prompt + n_answer > self.max_length:
            raise DataError(
                where[0],
                f"sequence of {n_prompt + n_answer} tokens ({n_prompt} prompt incl. {self.image_token_count} image, "
                f"{n_answer} answer) exceeds max_length {self.max_length}",
                record=where[1],
                field=field,
            )

    def encode_pair(
        self,
        image: str | Path | Image.Image,
        question: str,
        chosen: str,
        rejected: str,
        *,
        where: tuple[str, Any] = ("<pair>", None),
    ) -> EncodedPair:
        """Encode a preference pair; ``where`` = (file, record) names the input in errors.

        Raises :class:`~hadpo.errors.DataError` if a text holds ``<image>`` or is empty, if either sequence
        exceeds ``max_length``, or if the two answers tokenise the shared prompt differently.
        """
        self._check_text(question, "question", where)
        encoded = {}
        for field, text in (("chosen", chosen), ("rejected", rejected)):
            self._check_text(text, field, where)
            prompt, answer = self.split_answer(question, text)
            self._check_length(len(prompt), len(answer), field, where)
            encoded[field] = (prompt, answer)
        if encoded["chosen"][0] != encoded["rejected"][0]:
            raise DataError(where[0], "chosen and rejected do not share the prompt tokens", record=where[1])
        return EncodedPair(
            prompt_ids=encoded["chosen"][0],
            chosen_ids=encoded["chosen"][1],
            rejected_ids=encoded["rejected"][1],
            pixel_values=self.pixel_values(image),
        )

    def encode_preference(self, pair: Any, image: str | Path | Image.Image) -> EncodedPair:
        """Encode a :class:`~hadpo.data.pairs.PreferencePair` with its image (errors name its source record)."""
        where = (pair.source, pair.record or pair.image_id)
        return self.encode_pair(image, pair.question, pair.chosen, pair.rejected, where=where)

    def encode_sft(
        self,
        image: str | Path | Image.Image,
        question: str,
        answer: str,
        *,
        where: tuple[str, Any] = ("<sample>", None),
    ) -> EncodedSample:
        """Encode one supervised sample (question, reference answer)."""
        self._check_text(question, "question", where)
        self._check_text(answer, "answer", where)
        prompt, answer_ids = self.split_answer(question, answer)
        self._check_length(len(prompt), len(answer_ids), "answer", where)
        return EncodedSample(prompt_ids=prompt, answer_ids=answer_ids, pixel_values=self.pixel_values(image))

    def check_lengths(self, records: Iterable[Any], file: str | None = None) -> int:
        """Pre-flight over all records without loading images; returns the longest sequence length.

        ``records`` are :class:`~hadpo.data.pairs.PreferencePair` objects or any objects with ``question``
        and ``answer``. Raises :class:`~hadpo.errors.DataError` naming the first record (its ``source``
        file and ``record``, or ``file`` and its index) whose ``prompt + answer`` exceeds ``max_length``.
        """
        longest = 0
        for index, rec in enumerate(records):
            where = (getattr(rec, "source", None) or file or "<records>", getattr(rec, "record", None) or index)
            for field, text in _answers_of(rec):
                self._check_text(text, field, where)
                prompt, answer = self.split_answer(rec.question, text)
                self._check_length(len(prompt), len(answer), field, where)
                longest = max(longest, len(prompt) + len(answer))
        return longest


# ----- collators ------------------------------------------------------------------------------------------------
def collate_packed(items: Sequence[EncodedPair | EncodedSample], pad_id: int) -> PackedBatch:
    """Pack each item as one row ``prompt + answer_0 [+ answer_1]`` (see :class:`PackedBatch`).

    Items may hold different numbers of answers: S is the most any item has, and a row with fewer answers has
    its missing slots fully masked (``targets`` all ``-100``, length 0), so their log-probs sum to 0 over no
    token. mDPO's conditional term uses this: pair rows ``prompt + chosen + rejected`` next to rows
    ``prompt(corrupted image) + chosen`` in one batch. Padding positions attend only to themselves, so no
    softmax row is empty; their outputs are never read.
    """
    import torch

    if not items:
        raise ValueError("cannot collate an empty batch")
    s = max(len(it.answers) for it in items)
    b = len(items)
    length = max(len(it.prompt_ids) + sum(len(a) for a in it.answers) for it in items)
    t_max = max(len(a) for it in items for a in it.answers)

    input_ids = torch.full((b, length), pad_id, dtype=torch.long)
    position_ids = torch.zeros((b, length), dtype=torch.long)
    allowed = torch.zeros((b, length, length), dtype=torch.bool)
    gather_positions = torch.zeros((b, s, t_max), dtype=torch.long)
    targets = torch.full((b, s, t_max), IGNORE_INDEX, dtype=torch.long)
    answer_lengths = torch.zeros((b, s), dtype=torch.long)
    prompt_lengths = torch.zeros(b, dtype=torch.long)

    for row, item in enumerate(items):
        p = len(item.prompt_ids)
        prompt_lengths[row] = p
        input_ids[row, :p] = torch.tensor(item.prompt_ids)
        position_ids[row, :p] = torch.arange(p)
        allowed[row, :p, :p] = torch.ones(p, p, dtype=torch.bool).tril()
        start = p
        for k, answer in enumerate(item.answers):
            n = len(answer)
            stop = start + n
            input_ids[row, start:stop] = torch.tensor(answer)
            # Every answer continues the prompt from position p, as if it were the only one.
            position_ids[row, start:stop] = torch.arange(p, p + n)
            allowed[row, start:stop, :p] = True
            allowed[row, start:stop, start:stop] = torch.ones(n, n, dtype=torch.bool).tril()
            answer_lengths[row, k] = n
            targets[row, k, :n] = torch.tensor(answer)
            # Token 0 of each answer is predicted by the last prompt token, token t by the answer's token t-1.
            gather_positions[row, k, 0] = p - 1
            gather_positions[row, k, 1:n] = torch.arange(start, stop - 1)
            start = stop
        pad = torch.arange(start, length)
        allowed[row, pad, pad] = True

    return PackedBatch(
        input_ids=input_ids,
        position_ids=position_ids,
        allowed=allowed,
        pixel_values=torch.stack([it.pixel_values for it in items]),
        prompt_lengths=prompt_lengths,
        answer_lengths=answer_lengths,
        gather_positions=gather_positions,
        targets=targets,
    )


def collate_padded(items: Sequence[EncodedSample], pad_id: int) -> PaddedBatch:
    """Right-pad full ``prompt + answer`` sequences; labels ``-100`` on the prompt and the padding."""
    import torch

    if not items:
        raise ValueError("cannot collate an empty batch")
    length = max(len(it.input_ids) for it in items)
    input_ids = torch.full((len(items), length), pad_id, dtype=torch.long)
    labels = torch.full((len(items), length), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(items), length), dtype=torch.long)
    for row, item in enumerate(items):
        n = len(item.input_ids)
        input_ids[row, :n] = torch.tensor(item.input_ids)
        labels[row, :n] = torch.tensor(item.labels)
        attention_mask[row, :n] = 1
    return PaddedBatch(
        input_ids=input_ids,
        labels=labels,
        attention_mask=attention_mask,
        pixel_values=torch.stack([it.pixel_values for it in items]),
        first_answer_index=torch.tensor([it.first_answer_index for it in items], dtype=torch.long),
    )


def collate_padded_pairs(items: Sequence[EncodedPair], pad_id: int) -> PaddedPairBatch:
    """The original layout: chosen and rejected sequences padded separately (see :func:`collate_padded`)."""
    chosen = [EncodedSample(it.prompt_ids, it.chosen_ids, it.pixel_values) for it in items]
    rejected = [EncodedSample(it.prompt_ids, it.rejected_ids, it.pixel_values) for it in items]
    return PaddedPairBatch(chosen=collate_padded(chosen, pad_id), rejected=collate_padded(rejected, pad_id))
