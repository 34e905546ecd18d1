"""The token ids around the image placeholder, as LLaVA-1.5 was trained to see them.

LLaVA's ``tokenizer_image_token`` tokenises the text before and after ``<image>`` separately, so with Llama-2's
SentencePiece model each chunk gets its own word-boundary mark: ``USER: <image>\\nIs`` is
``… 3148 1001 29901 29871 <image> 29871 13 3624 …``, a "▁" (29871) on both sides of the image. The kit tokenises
whole prompts (the image placeholder expanded to its 576 tokens), which gives the same ids only when the
tokenizer splits its input at special tokens and marks each piece as a fresh start. transformers 5's
``AutoProcessor`` over a model folder keeps ``tokenizer.json`` as stored and does; a ``LlamaTokenizer`` built
from ``tokenizer_config.json`` rebuilds its pre-tokeniser from the ``legacy`` flag and, with ``legacy`` false or
absent, drops the "▁" after the image, shifting every prompt by one token.

:func:`ensure_image_tokenization` checks a loaded tokenizer on a probe prompt and, when it differs, replaces it
with the one that keeps ``tokenizer.json`` as stored, or refuses it: a tokenizer that would shift the ids is never
used silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hadpo.errors import HadpoError

#: A prompt with text on both sides of the image, as every stage builds them.
PROBE = "USER: {image}\nIs there a dog in the image? ASSISTANT:"


class TokenizationError(HadpoError):
    """The model's tokenizer does not reproduce LLaVA's ids around the image placeholder."""


def chunked_ids(tokenizer: Any, text: str, image_token: str, image_token_id: int) -> list[int]:
    """Ids of ``text`` as LLaVA's ``tokenizer_image_token`` builds them: each chunk between image tokens on its
    own (BOS on the first only), one image id per placeholder."""
    chunks = text.split(image_token)
    ids = list(tokenizer(chunks[0]).input_ids)
    for chunk in chunks[1:]:
        ids.append(image_token_id)
        if chunk:
            ids += list(tokenizer(chunk, add_special_tokens=False).input_ids)
    return ids


def probe_ids(tokenizer: Any, image_token: str, image_token_id: int, image_tokens: int) -> tuple[list[int], list[int]]:
    """``(whole, chunked)``: the probe prompt tokenised whole (the placeholder expanded, as the stages do) and the
    LLaVA way."""
    text = PROBE.format(image=image_token * image_tokens)
    whole = list(tokenizer(text).input_ids)
    return whole, chunked_ids(tokenizer, text, image_token, image_token_id)


def _context(ids: list[int], image_token_id: int, width: int = 3) -> list[int]:
    """The ids around the image block (``width`` on each side), for a readable message."""
    first = ids.index(image_token_id)
    last = len(ids) - 1 - ids[::-1].index(image_token_id)
    return [*ids[max(0, first - width) : first + 1], *ids[last : last + 1 + width]]


def ensure_image_tokenization(processor: Any, image_token_id: int, image_tokens: int, source: str | Path | None,
                              ) -> str:
    """Make sure ``processor.tokenizer`` gives LLaVA's ids around the image; returns what was done.

    ``"kept"``: it does. ``"reloaded"``: it did not, and the tokenizer that keeps ``tokenizer.json`` of ``source``
    (the model folder or hub id) as stored (``PreTrainedTokenizerFast``) does; it replaces the processor's.
    Otherwise :class:`TokenizationError`.
    """
    tokenizer = processor.tokenizer
    token = tokenizer.convert_ids_to_tokens(image_token_id)
    whole, expected = probe_ids(tokenizer, token, image_token_id, image_tokens)
    if whole == expected:
        return "kept"
    found = f"{type(tokenizer).__name__} gives {_context(whole, image_token_id)} around the image"
    if source is not None and (not Path(source).is_dir() or (Path(source) / "tokenizer.json").is_file()):
        from transformers import PreTrainedTokenizerFast

        fixed = PreTrainedTokenizerFast.from_pretrained(str(source))
        fixed.padding_side = tokenizer.padding_side
        whole, expected = probe_ids(fixed, token, image_token_id, image_tokens)
        if whole == expected:
            processor.tokenizer = fixed
            return "reloaded"
    raise TokenizationError(
        f"{source or 'the model'}: the tokenizer does not give LLaVA's token ids around the image: {found}, LLaVA "
        f"sees {_context(expected, image_token_id)} (each chunk tokenised on its own); every prompt would be "
        "shifted. Load the model folder with its tokenizer.json (as the kit's loader does), or fix the tokenizer's "
        "pre-tokeniser (for a LlamaTokenizer, legacy: true)."
    )
