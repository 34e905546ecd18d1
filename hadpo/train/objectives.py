"""What one training step computes: the DPO objective (HA-DPO) and the SFT objective (the shapes world's base).

An objective is an ``nn.Module`` that owns the model, so DeepSpeed wraps it as a whole; ``forward(batch)``
returns ``(loss, metrics)``. It also owns its examples (token ids and an image path, pixels loaded per batch:
12K LLaVA pairs of 336-px pixels would not fit in memory), its collator, and how its result is saved.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hadpo.data.encode import EncodedPair, EncodedSample, Encoder, PackedBatch, collate_packed
from hadpo.data.layout import DataLayout
from hadpo.io import sha256_file
from hadpo.models.prompts import strip_image_placeholder
from hadpo.train.config import TrainConfig
from hadpo.train.distributed import DistInfo
from hadpo.train.logps import packed_logps, policy_and_reference_logps
from hadpo.train.loss import preference_loss, sft_loss, token_weighted_nll, total_loss

#: SFT example kinds whose first answer token is an existence decision (Yes/No).
DECISION_KINDS = ("qa_yes", "qa_no", "qa_adv", "qa")

#: SFT example kind of a description (weighted by ``description_weight``).
DESCRIPTION_KIND = "desc"


@dataclass(frozen=True)
class PairExample:
    """A preference pair as token ids plus its image path (and cached reference log-probs, if precomputed)."""

    prompt_ids: tuple[int, ...]
    chosen_ids: tuple[int, ...]
    rejected_ids: tuple[int, ...]
    image: Path
    kind: str
    ref_chosen: float | None = None
    ref_rejected: float | None = None


@dataclass(frozen=True)
class SftExample:
    """A supervised example; ``decision`` is the index of the answer token carrying an existence question's
    Yes/No (up-weighted), or -1; ``description`` marks a description (its tokens weighted by
    ``description_weight``)."""

    prompt_ids: tuple[int, ...]
    answer_ids: tuple[int, ...]
    image: Path
    decision: int
    description: bool = False


def decision_index(tokenizer: Any, answer_ids: tuple[int, ...]) -> int:
    """Index of the first answer token that is not only whitespace: the Yes/No of "Yes, there is ...".

    A tokenizer may split the space after "ASSISTANT:" into a token of its own; that token decides nothing.
    """
    for i, token_id in enumerate(answer_ids):
        if tokenizer.decode([token_id]).strip():
            return i
    return 0


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
    def __init__(self, model: nn.Module, processor: Any, encoder: Encoder, info: DistInfo, cfg: TrainConfig) -> None:
        super().__init__()
        self.model = model
        self.processor = processor
        self.encoder = encoder
        self.info = info
        self.cfg = cfg
        self.dataset: list[Any] = []
        self.data_files: dict[str, str] = {}
        # Pixels per image path; small images (the shapes world) are worth caching, 336-px ones cost 1.3 MB each.
        side = encoder._pixel_size()[0]
        self._pixels = functools.lru_cache(maxsize=8192 if side <= 96 else 64)(encoder.pixel_values)

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
    """Preference loss on packed ``prompt + chosen + rejected`` rows; the reference is the adapter disabled."""

    def collate(self, items: list[PairExample]) -> dict[str, Any]:
        pairs = [EncodedPair(it.prompt_ids, it.chosen_ids, it.rejected_ids, self._pixels(it.image)) for it in items]
        batch = collate_packed(pairs, self.encoder.pad_id).to(self.info.device, self.dtype)
        out: dict[str, Any] = {"packed": batch}
        if items[0].ref_chosen is not None:
            out["ref"] = torch.tensor([[it.ref_chosen, it.ref_rejected] for it in items], device=self.info.device)
        return out

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        packed: PackedBatch = batch["packed"]
        if "ref" in batch:
            policy = packed_logps(self.model, packed)
            ref_chosen, ref_rejected = batch["ref"][:, 0], batch["ref"][:, 1]
        else:
            policy, ref = policy_and_reference_logps(self.model, packed)
            ref_chosen, ref_rejected = ref.chosen, ref.rejected
        cfg = self.cfg
        out = preference_loss(policy.chosen, policy.rejected, ref_chosen, ref_rejected, cfg.beta, cfg.loss_type,
                              cfg.label_smoothing)
        sft = sft_loss(policy.chosen, policy.counts[:, 0]) if cfg.gamma else None
        loss = total_loss(out.losses, sft, cfg.gamma)
        metrics = {
            "loss": loss.item(),
            "rewards/chosen": out.chosen_rewards.mean().item(),
            "rewards/rejected": out.rejected_rewards.mean().item(),
            "rewards/accuracies": (out.chosen_rewards > out.rejected_rewards).float().mean().item(),
            "rewards/margins": (out.chosen_rewards - out.rejected_rewards).mean().item(),
            "logps/chosen": policy.chosen.detach().mean().item(),
            "logps/rejected": policy.rejected.detach().mean().item(),
        }
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
    """Token-weighted NLL on answers (the decision token of existence questions up-weighted)."""

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def collate(self, items: list[SftExample]) -> dict[str, Any]:
        samples = [EncodedSample(it.prompt_ids, it.answer_ids, self._pixels(it.image)) for it in items]
        batch = collate_packed(samples, self.encoder.pad_id).to(self.info.device, self.dtype)
        decision = torch.tensor([it.decision for it in items], device=self.info.device)
        description = torch.tensor([it.description for it in items], device=self.info.device)
        return {"packed": batch, "decision": decision, "description": description}

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        logps = packed_logps(self.model, batch["packed"])
        weights = torch.ones_like(logps.per_token)
        weights[batch["description"]] = self.cfg.description_weight
        rows = torch.nonzero(batch["decision"] >= 0).flatten()
        weights[rows, 0, batch["decision"][rows]] = self.cfg.decision_token_weight
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


def _dtype_name(precision: str) -> str:
    return {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}[precision]


def _load(cfg: TrainConfig, info: DistInfo):
    from hadpo.models.loading import load_model

    # Packing needs an attention implementation that honours a 4D float mask (sdpa or eager).
    return load_model(cfg.model, dtype=_dtype_name(cfg.precision), device=str(info.device),
                      attn_implementation="sdpa", trainable=True)


def build_dpo(cfg: TrainConfig, info: DistInfo) -> DpoObjective:
    """Load the base model, add LoRA, read and encode the HA-DPO pairs (pre-flight checked)."""
    from hadpo.data.hadpo_files import read_desc_data, read_pope_data
    from hadpo.data.pairs import build_hadpo_pairs
    from hadpo.models.lora import apply_lora, lora_config

    layout = DataLayout(cfg.data_root)
    default_desc, default_pope = layout.hadpo_data(cfg.data_name)
    desc_path, pope_path = Path(cfg.desc_data or default_desc), Path(cfg.pope_data or default_pope)
    pairs = build_hadpo_pairs(read_desc_data(desc_path), read_pope_data(pope_path), cfg.sampling, cfg.data_seed,
                              desc_file=str(desc_path), pope_file=str(pope_path))
    if cfg.max_pairs is not None:
        pairs = pairs[: cfg.max_pairs]
    if not pairs:
        from hadpo.errors import DataError

        # Caught here, before the model loads: e.g. mining that found no hallucination writes empty files.
        raise DataError(desc_path, f"holds no preference pairs, and neither does {pope_path}; nothing to train on")
    loaded = _load(cfg, info)
    encoder = Encoder(loaded.processor, cfg.template, cfg.image_mode, cfg.max_length)
    encoder.check_lengths(pairs)  # pre-flight: a too-long sample is an error naming its record, before training
    paths = _vg_paths(layout)
    examples = []
    for pair in pairs:
        if pair.image_id not in paths:
            from hadpo.errors import DataError

            raise DataError(pair.source, f"image id {pair.image_id} is not in {layout.image_data}",
                            record=pair.record or pair.image_id, field="image_id")
        prompt, chosen = encoder.split_answer(pair.question, pair.chosen)
        _, rejected = encoder.split_answer(pair.question, pair.rejected)
        examples.append(PairExample(prompt, chosen, rejected, paths[pair.image_id], pair.kind))
    model = apply_lora(loaded.model, lora_config(cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout),
                       train_projector=cfg.projector == "trained")
    _prepare(model, cfg)
    objective = DpoObjective(model, loaded.processor, encoder, info, cfg)
    objective.data_files = {str(p): sha256_file(p) for p in (desc_path, pope_path)}
    if cfg.precompute_ref:
        from hadpo.train.refcache import attach_reference_logps

        examples = attach_reference_logps(objective, examples, cfg)
    objective.dataset = examples
    return objective


def build_sft(cfg: TrainConfig, info: DistInfo) -> SftObjective:
    """Load the (untrained) base model, optionally pretrain + freeze its vision tower, encode the conversations."""
    from hadpo.data.llava_conv import read_llava_conversations

    layout = DataLayout(cfg.data_root)
    sft_path = Path(cfg.sft_data or layout.sft_conversations)
    conversations = read_llava_conversations(sft_path)
    if cfg.max_pairs is not None:
        conversations = conversations[: cfg.max_pairs]
    loaded = _load(cfg, info)
    encoder = Encoder(loaded.processor, cfg.template, cfg.image_mode, cfg.max_length)
    examples = []
    for conv in conversations:
        image = layout.vg_dir / conv.image
        for question, answer in conv.pairs():
            prompt, answer_ids = encoder.split_answer(strip_image_placeholder(question), answer)
            kind = conv.kind or ""
            decision = decision_index(encoder.tokenizer, answer_ids) if kind in DECISION_KINDS else -1
            examples.append(SftExample(prompt, answer_ids, image, decision, kind == DESCRIPTION_KIND))
    model = loaded.model
    if cfg.vision_pretrain_steps > 0:
        _pretrain_vision(model, loaded.processor, layout, sorted({e.image for e in examples}), cfg)
    model.model.vision_tower.requires_grad_(False)  # LLaVA keeps CLIP frozen; only the LM and projector learn
    _prepare(model, cfg)
    objective = SftObjective(model, loaded.processor, encoder, info, cfg)
    objective.data_files = {str(sft_path): sha256_file(sft_path)}
    objective.dataset = examples
    return objective


def _prepare(model: nn.Module, cfg: TrainConfig) -> None:
    if cfg.disable_dropout:
        disable_dropout(model)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
        model.enable_input_require_grads()
    model.train()


def _pretrain_vision(model: nn.Module, processor: Any, layout: DataLayout, images: list[Path],
                     cfg: TrainConfig) -> None:
    from hadpo.data.vg import read_vg_images, read_vg_objects
    from hadpo.train.vision_pretrain import patch_targets, pretrain_vision_tower

    records = {img.path(layout): img for img in read_vg_images(layout.image_data)}
    objects = read_vg_objects(layout.objects)
    vision = model.config.vision_config
    grid = vision.image_size // vision.patch_size
    chosen = [(p, records[p].width, records[p].height, objects.get(records[p].image_id, [])) for p in images
              if p in records]
    result = pretrain_vision_tower(model, processor, patch_targets(chosen, grid), steps=cfg.vision_pretrain_steps,
                                   lr=cfg.vision_pretrain_lr, seed=cfg.seed, image_mode=cfg.image_mode)
    print(f"[hadpo.train] vision pretraining stand-in: {result}", flush=True)


def build_objective(cfg: TrainConfig, info: DistInfo) -> _Objective:
    """The objective of ``cfg.mode`` with its model and data ready to train."""
    return build_dpo(cfg, info) if cfg.mode == "dpo" else build_sft(cfg, info)
