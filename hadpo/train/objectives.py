"""What one training step computes: the DPO objective (HA-DPO) and supervised fine-tuning on conversations.

An objective is an ``nn.Module`` that owns the model, so DeepSpeed wraps it as a whole; ``forward(batch)``
returns ``(loss, metrics)``. It also owns its examples (token ids and an image path, pixels loaded per batch:
12K LLaVA pairs of 336-px pixels would not fit in memory), its collator, and how its result is saved.

Objectives are registered by name (entry point group ``hadpo.objectives``, see :mod:`hadpo.plugins`): a builder
``build(cfg, ctx) -> objective`` per name. ``dpo`` and ``sft`` are here; :func:`build_sft` takes the hooks a
registered variant needs (per-token answer weights, a step on the model before its vision tower is frozen).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hadpo.data.encode import EncodedPair, EncodedSample, Encoder, PackedBatch, collate_packed
from hadpo.data.layout import DataLayout
from hadpo.data.llava_conv import LlavaConversation
from hadpo.distributed import DistContext
from hadpo.errors import DataError, ParamsError
from hadpo.io import sha256_file
from hadpo.models.prompts import strip_image_placeholder
from hadpo.plugins import OBJECTIVES, load
from hadpo.train.config import TrainConfig
from hadpo.train.corrupt import corrupt, item_seed
from hadpo.train.logps import packed_logps, policy_and_reference_logps
from hadpo.train.loss import (
    anchor_loss,
    conditional_loss,
    preference_loss,
    sft_loss,
    token_weighted_nll,
    total_loss,
)

#: Per-token loss weights of an SFT answer (its answer ids and EOS), from its conversation, or None for ones.
AnswerWeights = Callable[[LlavaConversation, tuple[int, ...], Any], "tuple[float, ...] | None"]
#: A step on the freshly loaded model (model, processor, layout, images) before its vision tower is frozen.
ModelHook = Callable[[nn.Module, Any, DataLayout, "list[Path]"], None]


@dataclass(frozen=True)
class PairExample:
    """A preference pair as token ids plus its image path (and cached reference log-probs, if precomputed).

    ``ref_corrupted`` is the reference log-prob of the chosen answer under the corrupted image, cached only when
    the conditional term is on.
    """

    prompt_ids: tuple[int, ...]
    chosen_ids: tuple[int, ...]
    rejected_ids: tuple[int, ...]
    image: Path
    kind: str
    ref_chosen: float | None = None
    ref_rejected: float | None = None
    ref_corrupted: float | None = None


@dataclass(frozen=True)
class SftExample:
    """A supervised example; ``weights`` scales the loss of each answer token (None: all 1)."""

    prompt_ids: tuple[int, ...]
    answer_ids: tuple[int, ...]
    image: Path
    weights: tuple[float, ...] | None = None


def _row_length(example: PairExample | SftExample) -> int:
    if isinstance(example, PairExample):
        return len(example.prompt_ids) + len(example.chosen_ids) + len(example.rejected_ids)
    return len(example.prompt_ids) + len(example.answer_ids)


def disable_dropout(model: nn.Module) -> None:
    """Set every ``nn.Dropout`` to p=0, as the original trainer does (this also zeroes LoRA dropout)."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0


class _Objective(nn.Module):
    def __init__(self, model: nn.Module, processor: Any, encoder: Encoder, ctx: DistContext, cfg: TrainConfig) -> None:
        super().__init__()
        self.model = model
        self.processor = processor
        self.encoder = encoder
        self.ctx = ctx
        self.cfg = cfg
        self.dataset: list[Any] = []
        self.data_files: dict[str, str] = {}
        # Pixels per image path; small images (the shapes world) are worth caching, 336-px ones cost 1.3 MB each.
        side = encoder._pixel_size()[0]
        self._pixels = functools.lru_cache(maxsize=8192 if side <= 96 else 64)(encoder.pixel_values)

    #: What one example is, in the throughput metrics (``perf/<unit>_per_second``).
    unit = "examples"

    def count_tokens(self, batch: dict[str, Any]) -> int:
        """Language-model tokens of a collated batch (image tokens included, padding not)."""
        packed: PackedBatch = batch["packed"]
        return int(packed.prompt_lengths.sum()) + int(packed.answer_lengths.sum())

    @property
    def hidden_size(self) -> int:
        from hadpo.train.logps import unwrap_llava

        return int(unwrap_llava(self.model).config.text_config.hidden_size)

    def example_lengths(self) -> tuple[int, ...]:
        """Tokens each example puts in a packed row (image tokens included), for grouping by length."""
        return tuple(_row_length(example) for example in self.dataset)

    def data_manifest(self) -> dict[str, Any]:
        """sha256 of every data file used, and the number of examples."""
        return {"files": self.data_files, "examples": len(self.dataset)}


class DpoObjective(_Objective):
    """Preference loss on packed ``prompt + chosen + rejected`` rows; the reference is the adapter disabled.

    Optional mDPO terms (``conditional_weight``, ``anchor_weight``): the conditional term adds, after the B pair
    rows, B rows ``prompt + chosen`` whose image is a corrupted copy of the pair's (:mod:`hadpo.train.corrupt`),
    so it costs one more image and one shorter packed row per pair, not a second pair; the anchor reuses the
    chosen log-probs and costs nothing. With both weights 0 the batch and the computation are HA-DPO's.
    """

    unit = "pairs"

    @property
    def conditional(self) -> bool:
        """Whether batches carry the conditional rows (``conditional_weight > 0``)."""
        return self.cfg.conditional_weight > 0

    def corrupted_pixels(self, item: PairExample) -> torch.Tensor:
        """The pair's corrupted image, seeded by the run's seed and the pair's identity.

        Per-item seeding makes it the same in every batch the pair lands in, on every rank, before and after a
        resume, and for the reference and the policy (mDPO's code draws a new crop in every forward instead).
        """
        cfg = self.cfg
        seed = item_seed(cfg.seed, item.image, item.prompt_ids, item.chosen_ids)
        return corrupt(self._pixels(item.image), cfg.corruption, seed, crop_scale=cfg.crop_scale,
                       noise_level=cfg.noise_level)

    def collate(self, items: list[PairExample]) -> dict[str, Any]:
        rows: list[EncodedPair | EncodedSample] = [
            EncodedPair(it.prompt_ids, it.chosen_ids, it.rejected_ids, self._pixels(it.image)) for it in items]
        if self.conditional:
            # One row per pair, not a second pair: the corrupted image only ever scores the chosen answer.
            rows += [EncodedSample(it.prompt_ids, it.chosen_ids, self.corrupted_pixels(it)) for it in items]
        batch = collate_packed(rows, self.encoder.pad_id).to(self.ctx.device, self.dtype)
        out: dict[str, Any] = {"packed": batch}
        if items[0].ref_chosen is not None:
            refs = [[it.ref_chosen, it.ref_rejected] for it in items]
            if self.conditional:
                refs = [[*ref, it.ref_corrupted] for ref, it in zip(refs, items, strict=True)]
            out["ref"] = torch.tensor(refs, device=self.ctx.device)
        return out

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        packed: PackedBatch = batch["packed"]
        cfg = self.cfg
        # The pair rows come first; with the conditional term on, as many conditional rows follow.
        n = packed.input_ids.shape[0] // 2 if self.conditional else packed.input_ids.shape[0]
        if "ref" in batch:
            all_policy = packed_logps(self.model, packed)
            ref_sums = batch["ref"]
            ref_chosen, ref_rejected = ref_sums[:, 0], ref_sums[:, 1]
            ref_corrupted = ref_sums[:, 2] if self.conditional else None
        else:
            all_policy, all_ref = policy_and_reference_logps(self.model, packed)
            ref_chosen, ref_rejected = all_ref.sums[:n, 0], all_ref.sums[:n, 1]
            ref_corrupted = all_ref.sums[n:, 0] if self.conditional else None
        policy = all_policy.rows(slice(None, n))
        out = preference_loss(policy.chosen, policy.rejected, ref_chosen, ref_rejected, cfg.beta, cfg.loss_type,
                              cfg.label_smoothing)
        policy_corrupted = all_policy.sums[n:, 0] if ref_corrupted is not None else None
        cond = None
        if policy_corrupted is not None and ref_corrupted is not None:
            cond = conditional_loss(policy.chosen, policy_corrupted, ref_chosen, ref_corrupted, cfg.beta,
                                    cfg.loss_type, cfg.label_smoothing)
        anchor = anchor_loss(policy.chosen, ref_chosen, cfg.beta, cfg.anchor_margin) if cfg.anchor_weight else None
        sft = sft_loss(policy.chosen, policy.counts[:, 0]) if cfg.gamma else None
        loss = total_loss(out.losses, sft, cfg.gamma, conditional_losses=None if cond is None else cond.losses,
                          conditional_weight=cfg.conditional_weight, anchor_losses=anchor,
                          anchor_weight=cfg.anchor_weight)
        metrics = {
            "loss": loss.item(),
            "dpo_loss": out.losses.detach().mean().item(),
            "rewards/chosen": out.chosen_rewards.mean().item(),
            "rewards/rejected": out.rejected_rewards.mean().item(),
            "rewards/accuracies": (out.chosen_rewards > out.rejected_rewards).float().mean().item(),
            "rewards/margins": (out.chosen_rewards - out.rejected_rewards).mean().item(),
            "logps/chosen": policy.chosen.detach().mean().item(),
            "logps/rejected": policy.rejected.detach().mean().item(),
        }
        if cond is not None and policy_corrupted is not None:
            metrics["conditional_loss"] = cond.losses.detach().mean().item()
            metrics["rewards/conditional_margins"] = (cond.chosen_rewards - cond.rejected_rewards).mean().item()
            metrics["logps/chosen_corrupted"] = policy_corrupted.detach().mean().item()
        if anchor is not None:
            metrics["anchor_loss"] = anchor.detach().mean().item()
        if sft is not None:
            metrics["sft_loss"] = sft.mean().item()
        return loss, metrics

    def save(self, out: Path, *, engine: Any, is_main: bool) -> dict[str, Any]:
        """Write the PEFT adapter (``adapter/``) and, when trained, the projector beside it."""
        from hadpo.models.loading import save_projector

        adapter_dir = out / "adapter"
        with _gathered(self, engine):
            if is_main:
                self.model.save_pretrained(str(adapter_dir))
                if self.cfg.projector == "trained":
                    save_projector(self.model, adapter_dir)
        return {"adapter": str(adapter_dir), "projector_trained": self.cfg.projector == "trained"}


class SftObjective(_Objective):
    """NLL on answers, each token weighted by its example's ``weights`` (1 when none are given)."""

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def collate(self, items: list[SftExample]) -> dict[str, Any]:
        samples = [EncodedSample(it.prompt_ids, it.answer_ids, self._pixels(it.image)) for it in items]
        batch = collate_packed(samples, self.encoder.pad_id).to(self.ctx.device, self.dtype)
        weights = None
        if any(it.weights is not None for it in items):
            # (B, 1, T) like the per-token log-probs; positions past an answer's end are masked out anyway.
            weights = torch.ones(batch.targets.shape, dtype=torch.float32)
            for row, item in enumerate(items):
                if item.weights is not None:
                    weights[row, 0, : len(item.weights)] = torch.tensor(item.weights, dtype=torch.float32)
            weights = weights.to(self.ctx.device)
        return {"packed": batch, "weights": weights}

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        logps = packed_logps(self.model, batch["packed"])
        weights = batch["weights"]
        if weights is not None:
            weights = weights.to(logps.per_token.dtype)
        loss = token_weighted_nll(logps.per_token, logps.mask, weights)
        nll = token_weighted_nll(logps.per_token, logps.mask, None)
        return loss, {"loss": loss.item(), "nll": nll.item()}

    def save(self, out: Path, *, engine: Any, is_main: bool) -> dict[str, Any]:
        """Write the full model and its processor to ``model/`` (loadable like llava-1.5-7b-hf)."""
        model_dir = out / "model"
        with _gathered(self, engine):
            if is_main:
                self.model.save_pretrained(str(model_dir))
                self.processor.save_pretrained(str(model_dir))
        return {"model": str(model_dir)}


class _gathered:
    """Under ZeRO-3, gather the partitioned parameters on every rank while the main rank saves."""

    def __init__(self, module: nn.Module, engine: Any) -> None:
        self.ctx = None
        if engine is not None and engine.zero_optimization_stage() == 3:
            import deepspeed

            self.ctx = deepspeed.zero.GatheredParameters(list(module.parameters()), modifier_rank=None)

    def __enter__(self) -> None:
        if self.ctx is not None:
            self.ctx.__enter__()

    def __exit__(self, *exc: Any) -> None:
        if self.ctx is not None:
            self.ctx.__exit__(*exc)


# ----- building ---------------------------------------------------------------------------------------------------
def _vg_paths(layout: DataLayout) -> dict[str, Path]:
    from hadpo.data.vg import read_vg_images

    return {str(img.image_id): img.path(layout) for img in read_vg_images(layout.image_data)}


def _no_options(cfg: TrainConfig) -> None:
    if cfg.objective_options:
        raise ParamsError(f"parameter 'objective_options': objective {cfg.objective!r} takes no options, got "
                          f"{sorted(cfg.objective_options)}")


def _load(cfg: TrainConfig, ctx: DistContext, *, from_adapter: bool = True):
    from hadpo.models.loading import load_model

    # Packing needs an attention implementation that honours a 4D float mask (sdpa or eager).
    spec = cfg.model_spec.replace(device=ctx.device, attn_implementation=cfg.model_spec.attn_implementation or "sdpa")
    if not from_adapter:
        spec = spec.replace(adapter=None)
    return load_model(spec, trainable=True)


def build_dpo(cfg: TrainConfig, ctx: DistContext) -> DpoObjective:
    """Load the base model, add LoRA, read and encode the HA-DPO pairs (pre-flight checked).

    With an ``adapter`` in the model spec, training starts from it: merged into the base (``merge_adapter``:
    a new LoRA on top, the merged model is the reference) or continued as it is (the reference is the base).
    """
    from hadpo.data.hadpo_files import read_desc_data, read_pope_data
    from hadpo.data.images import ImageRef, preflight_images
    from hadpo.data.pairs import build_hadpo_pairs
    from hadpo.models.lora import apply_lora, lora_config, set_projector_trainable

    _no_options(cfg)
    layout = DataLayout(cfg.data_root)
    default_desc, default_pope = layout.hadpo_data(cfg.data_name)
    desc_path, pope_path = Path(cfg.desc_data or default_desc), Path(cfg.pope_data or default_pope)
    sources = [(desc_path, pope_path), *(tuple(map(Path, layout.hadpo_data(name))) for name in cfg.extra_data)]
    # Each folder's pairs are sampled from its own files, as if trained on alone, then joined in order.
    pairs = [pair for desc, pope in sources
             for pair in build_hadpo_pairs(read_desc_data(desc), read_pope_data(pope), cfg.sampling, cfg.data_seed,
                                           desc_file=str(desc), pope_file=str(pope))]
    if cfg.max_pairs is not None:
        pairs = pairs[: cfg.max_pairs]
    if not pairs:
        # Caught here, before the model loads: e.g. mining that found no hallucination writes empty files.
        raise DataError(desc_path, f"holds no preference pairs, and neither does {pope_path}; nothing to train on")
    paths = _vg_paths(layout)
    # Pre-flight, before the model loads: every image the pairs use must decode (one error lists every bad one).
    preflight_images([ImageRef(str(paths[p.image_id]), record=p.record or p.image_id, field="image_id", file=p.source)
                      for p in pairs if p.image_id in paths], progress=ctx.is_main, desc="check training images")
    loaded = _load(cfg, ctx)
    prompt = cfg.prompt_spec
    encoder = Encoder(loaded.processor, prompt.template, prompt.image_mode, cfg.max_length, cfg.answer_whitespace)
    encoder.check_lengths(pairs)  # pre-flight: a too-long sample is an error naming its record, before training
    examples = []
    for pair in pairs:
        if pair.image_id not in paths:
            raise DataError(pair.source, f"image id {pair.image_id} is not in {layout.image_data}",
                            record=pair.record or pair.image_id, field="image_id")
        prompt_ids, chosen = encoder.split_answer(pair.question, pair.chosen)
        _, rejected = encoder.split_answer(pair.question, pair.rejected)
        examples.append(PairExample(prompt_ids, chosen, rejected, paths[pair.image_id], pair.kind))
    if loaded.info.get("adapter") and not loaded.info.get("merged"):
        model = loaded.model  # the adapter itself keeps training
        set_projector_trainable(model, cfg.projector == "trained")
    else:
        model = apply_lora(loaded.model, lora_config(cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout),
                           train_projector=cfg.projector == "trained")
    _prepare(model, cfg)
    objective = DpoObjective(model, loaded.processor, encoder, ctx, cfg)
    objective.data_files = {str(p): sha256_file(p) for files in sources for p in files}
    if cfg.precompute_ref:
        from hadpo.train.refcache import attach_reference_logps

        examples = attach_reference_logps(objective, examples, cfg)
    objective.dataset = examples
    return objective


def build_sft(cfg: TrainConfig, ctx: DistContext, *, weights: AnswerWeights | None = None,
              prepare_model: ModelHook | None = None) -> SftObjective:
    """Load the (untrained) base model, encode the LLaVA conversations, freeze the vision tower.

    ``weights`` gives per-token loss weights of each answer; ``prepare_model`` runs on the loaded model before
    its vision tower is frozen (both for registered variants of SFT; see :data:`AnswerWeights`, :data:`ModelHook`).
    """
    from hadpo.data.images import ImageRef, preflight_images
    from hadpo.data.llava_conv import read_llava_conversations

    layout = DataLayout(cfg.data_root)
    sft_path = Path(cfg.sft_data or layout.sft_conversations)
    conversations = read_llava_conversations(sft_path)
    if cfg.max_pairs is not None:
        conversations = conversations[: cfg.max_pairs]
    # Pre-flight, before the model loads: every conversation's image must decode (one error lists every bad one).
    preflight_images([ImageRef(str(layout.vg_dir / c.image), record=i, field="image", file=str(sft_path))
                      for i, c in enumerate(conversations)], progress=ctx.is_main, desc="check training images")
    loaded = _load(cfg, ctx, from_adapter=False)
    prompt = cfg.prompt_spec
    encoder = Encoder(loaded.processor, prompt.template, prompt.image_mode, cfg.max_length, cfg.answer_whitespace)
    examples = []
    for conv in conversations:
        image = layout.vg_dir / conv.image
        for question, answer in conv.pairs():
            prompt_ids, answer_ids = encoder.split_answer(strip_image_placeholder(question), answer)
            answer_weights = weights(conv, answer_ids, encoder.tokenizer) if weights is not None else None
            examples.append(SftExample(prompt_ids, answer_ids, image, answer_weights))
    model = loaded.model
    if prepare_model is not None:
        prepare_model(model, loaded.processor, layout, sorted({e.image for e in examples}))
    model.model.vision_tower.requires_grad_(False)  # LLaVA keeps CLIP frozen; only the LM and projector learn
    _prepare(model, cfg)
    objective = SftObjective(model, loaded.processor, encoder, ctx, cfg)
    objective.data_files = {str(sft_path): sha256_file(sft_path)}
    objective.dataset = examples
    return objective


def build_plain_sft(cfg: TrainConfig, ctx: DistContext) -> SftObjective:
    """The ``sft`` objective: NLL on every answer token of the LLaVA conversations, unweighted."""
    _no_options(cfg)
    return build_sft(cfg, ctx)


def _prepare(model: nn.Module, cfg: TrainConfig) -> None:
    if cfg.disable_dropout:
        disable_dropout(model)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
        model.enable_input_require_grads()
    model.train()


def build_objective(cfg: TrainConfig, ctx: DistContext) -> _Objective:
    """The registered objective ``cfg.objective`` with its model and data ready to train."""
    build: Callable[[TrainConfig, DistContext], _Objective] = load(OBJECTIVES, cfg.objective)
    return build(cfg, ctx)
