"""Answer log-probabilities of LLaVA for preference pairs: the kit's packed forward and a naive reference.

The packed forward (:func:`packed_logps`, :func:`policy_and_reference_logps`) works on a
:class:`~hadpo.data.encode.PackedBatch` and does per pair:

1. the vision tower and projector once (:func:`image_features`), for the policy *and* the reference pass:
   the original HA-DPO also feeds its reference LM the current policy projector's image features;
2. one language-model pass over ``prompt + chosen + rejected`` with a block-causal additive float mask and
   position ids restarting at the prompt length for each answer, so the long shared prompt (576 image
   tokens on LLaVA-1.5) is computed once instead of twice;
3. ``lm_head`` and an fp32 log-softmax only on the hidden states that predict answer tokens, never on the
   whole sequence.

With mDPO's conditional term on, the batch also holds one row ``prompt + chosen`` per pair whose image is a
corrupted copy (:mod:`hadpo.train.corrupt`): the same functions then encode the 2B images (real, then
corrupted) in one vision call and run one language-model pass over the 2B rows, policy and reference alike;
:meth:`AnswerLogps.rows` splits the pair rows from the conditional ones.

The reference pass is the same model with its LoRA adapter disabled (``PeftModel.disable_adapter``), or an
explicitly given reference model. :func:`naive_pair_logps` is the straightforward implementation (a full
forward per sequence, the image encoded per sequence, full fp32 logits); tests and the benchmark check the
packed path against it.

Works on ``LlavaForConditionalGeneration`` (transformers 5), optionally wrapped in a ``PeftModel`` and/or a
DeepSpeed engine / DDP module. The packed mask needs the ``eager`` or ``sdpa`` attention implementation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from hadpo.data.encode import IGNORE_INDEX, PackedBatch, PaddedBatch, PaddedPairBatch

#: Attention implementations that honour an arbitrary 4D additive float mask.
PACKING_ATTENTION = ("eager", "sdpa")


@dataclass(frozen=True)
class AnswerLogps:
    """Log-probs of S answers per row (S = 2 for pairs: chosen, rejected; S = 1 for SFT samples).

    ``per_token[b, s, t]`` is log p(token t of answer s); it is 0 where ``mask`` is False (past the answer's
    end). Sums are over the answer tokens and the final EOS, as the original's ``_get_batch_logps``.
    """

    sums: torch.Tensor  # (B, S) float32
    counts: torch.Tensor  # (B, S) long
    per_token: torch.Tensor  # (B, S, T) float32
    mask: torch.Tensor  # (B, S, T) bool

    @property
    def chosen(self) -> torch.Tensor:
        """(B,) summed log-probs of the chosen answers."""
        return self.sums[:, 0]

    @property
    def rejected(self) -> torch.Tensor:
        """(B,) summed log-probs of the rejected answers."""
        return self.sums[:, 1]

    def rows(self, index: slice) -> AnswerLogps:
        """The log-probs of some rows only, e.g. the pair rows of a batch that also holds conditional rows."""
        return AnswerLogps(sums=self.sums[index], counts=self.counts[index], per_token=self.per_token[index],
                           mask=self.mask[index])


# ----- model plumbing -------------------------------------------------------------------------------------------
def unwrap_llava(model: nn.Module) -> nn.Module:
    """The ``LlavaForConditionalGeneration`` inside DeepSpeed / DDP / PeftModel wrappers.

    LoRA layers are injected in place, so calling the returned model's submodules still runs the adapter.
    """
    from transformers import LlavaForConditionalGeneration

    current: Any = model
    for _ in range(8):
        if isinstance(current, LlavaForConditionalGeneration):
            return current
        if hasattr(current, "get_base_model"):
            current = current.get_base_model()
        elif hasattr(current, "module"):
            current = current.module
        else:
            break
    raise TypeError(f"expected a LlavaForConditionalGeneration (possibly wrapped), got {type(model).__name__}")


def _find_adapter_model(model: nn.Module) -> Any | None:
    current: Any = model
    for _ in range(8):
        if hasattr(current, "disable_adapter"):
            return current
        if not hasattr(current, "module"):
            return None
        current = current.module
    return None


@contextlib.contextmanager
def reference_model(model: nn.Module, reference: nn.Module | None = None) -> Iterator[nn.Module]:
    """Context yielding the reference model: ``reference`` if given, else ``model`` with its adapter disabled."""
    if reference is not None:
        yield reference
        return
    adapter_model = _find_adapter_model(model)
    if adapter_model is None:
        raise ValueError("the model has no adapter to disable; pass an explicit reference model")
    with adapter_model.disable_adapter():
        yield model


def _check_packing_attention(llava: nn.Module) -> None:
    impl = getattr(llava.model.language_model.config, "_attn_implementation", None) or "eager"
    if impl not in PACKING_ATTENTION:
        raise ValueError(
            f"packed pairs need a 4D float attention mask, which attn_implementation={impl!r} ignores; "
            f"load the model with one of {PACKING_ATTENTION}"
        )


def image_features(model: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    """(B, N, D) projected image features (vision tower at the configured layer, CLS dropped, projector)."""
    llava = unwrap_llava(model)
    tower = llava.model.vision_tower
    param = next(tower.parameters())
    out = llava.model.get_image_features(pixel_values=pixel_values.to(param.device, param.dtype), return_dict=True)
    return torch.stack(list(out.pooler_output))


def additive_mask(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, 1, L, L) float mask: 0 where ``allowed``, the dtype's minimum elsewhere.

    A float mask, not a bool one: eager attention adds the mask to the scores and would misread booleans.
    """
    mask = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    return mask.masked_fill_(~allowed, torch.finfo(dtype).min).unsqueeze(1)


def _splice_images(llava: nn.Module, input_ids: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    embeds = llava.get_input_embeddings()(input_ids)
    is_image = input_ids == llava.config.image_token_id
    per_row = is_image.sum(dim=1)
    if bool((per_row != features.shape[1]).any()):
        raise ValueError(f"each row needs {features.shape[1]} image tokens, got {per_row.tolist()}")
    # masked_scatter fills row-major, and every row holds exactly its image's N tokens.
    return embeds.masked_scatter(is_image.unsqueeze(-1), features.to(embeds.dtype))


def gather_answer_logps(
    lm_head: nn.Module, hidden: torch.Tensor, positions: torch.Tensor, targets: torch.Tensor
) -> AnswerLogps:
    """Answer log-probs from hidden states: ``lm_head`` and fp32 log-softmax only at the predicting positions.

    ``hidden`` is (B, L, H); ``positions``/``targets`` are (B, S, T) as in :class:`PackedBatch`.
    """
    mask = targets != IGNORE_INDEX
    rows = torch.arange(hidden.shape[0], device=hidden.device).view(-1, 1, 1).expand_as(positions)
    selected = hidden[rows[mask], positions[mask]]  # (M, H): only the rows that predict an answer token
    logits = lm_head(selected).float()
    token_logps = logits.log_softmax(dim=-1).gather(-1, targets[mask].unsqueeze(-1)).squeeze(-1)
    per_token = torch.zeros(mask.shape, dtype=torch.float32, device=hidden.device).masked_scatter(mask, token_logps)
    return AnswerLogps(sums=per_token.sum(-1), counts=mask.sum(-1), per_token=per_token, mask=mask)


# ----- the packed path ------------------------------------------------------------------------------------------
def packed_logps(model: nn.Module, batch: PackedBatch, features: torch.Tensor | None = None) -> AnswerLogps:
    """Answer log-probs of a packed batch in one language-model pass.

    ``features`` are precomputed :func:`image_features` (computed here when ``None``). The batch must be on
    the model's device (:meth:`PackedBatch.to`).
    """
    llava = unwrap_llava(model)
    _check_packing_attention(llava)
    if features is None:
        features = image_features(model, batch.pixel_values)
    embeds = _splice_images(llava, batch.input_ids, features)
    hidden = llava.model.language_model(
        inputs_embeds=embeds,
        attention_mask=additive_mask(batch.allowed, embeds.dtype),
        position_ids=batch.position_ids,
        use_cache=False,
    ).last_hidden_state
    return gather_answer_logps(llava.lm_head, hidden, batch.gather_positions, batch.targets)


def policy_and_reference_logps(
    model: nn.Module, batch: PackedBatch, reference: nn.Module | None = None
) -> tuple[AnswerLogps, AnswerLogps]:
    """(policy, reference) answer log-probs, encoding each image once for both passes.

    The reference is ``model`` with its adapter disabled unless ``reference`` is given; it runs under
    ``torch.no_grad`` on the same (detached) image features, i.e. the current projector's, as the original.
    The reference pass runs first so its activations are freed before the policy graph is built.
    """
    features = image_features(model, batch.pixel_values)
    with torch.no_grad(), reference_model(model, reference) as ref:
        ref_logps = packed_logps(ref, batch, features.detach())
    return packed_logps(model, batch, features), ref_logps


# ----- the naive reference path ---------------------------------------------------------------------------------
def naive_logps(model: nn.Module, batch: PaddedBatch) -> AnswerLogps:
    """Answer log-probs (S = 1) from a full forward with the image, over full fp32 logits (for checks)."""
    logits = model(
        input_ids=batch.input_ids, pixel_values=batch.pixel_values, attention_mask=batch.attention_mask
    ).logits.float()
    labels = batch.labels[:, 1:]
    mask = labels != IGNORE_INDEX
    token_logps = logits[:, :-1].log_softmax(-1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    per_row = [token_logps[b][mask[b]] for b in range(labels.shape[0])]
    per_token = pad_sequence(per_row, batch_first=True).unsqueeze(1)
    compact_mask = pad_sequence([m[m] for m in mask], batch_first=True).unsqueeze(1)
    return AnswerLogps(sums=per_token.sum(-1), counts=compact_mask.sum(-1), per_token=per_token, mask=compact_mask)


def naive_pair_logps(model: nn.Module, batch: PaddedPairBatch) -> AnswerLogps:
    """Chosen and rejected log-probs (S = 2) from two separate :func:`naive_logps` forwards."""
    chosen, rejected = naive_logps(model, batch.chosen), naive_logps(model, batch.rejected)
    width = max(chosen.per_token.shape[-1], rejected.per_token.shape[-1])

    def widen(x: torch.Tensor) -> torch.Tensor:
        return nn.functional.pad(x, (0, width - x.shape[-1]))

    return AnswerLogps(
        sums=torch.cat([chosen.sums, rejected.sums], dim=1),
        counts=torch.cat([chosen.counts, rejected.counts], dim=1),
        per_token=torch.cat([widen(chosen.per_token), widen(rejected.per_token)], dim=1),
        mask=torch.cat([widen(chosen.mask), widen(rejected.mask)], dim=1),
    )
