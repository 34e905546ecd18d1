"""The parameters of a training run (notebook 02, ``hadpo train``, ``params/*/02_train.yaml``).

Defaults are the original HA-DPO LLaVA-1.5 recipe where it fixes a value (β 0.1, sigmoid loss, 3% warmup, no
weight decay, dropout off) and the shapes world's sizes elsewhere; ``params/7b/02_train.yaml`` is the whole 7B
recipe. The model, prompt and launch keys are the shared components of :mod:`hadpo.specs`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from hadpo.config import Params, check, component, param
from hadpo.plugins import OBJECTIVES, check_registered
from hadpo.specs import LaunchSpec, ModelSpec, PromptSpec, RerunSpec, data_root_param


@dataclass
class TrainConfig(Params):
    """One training run: an objective (HA-DPO's preference loss, or another registered one), data, optimisation."""

    # --- what and where -------------------------------------------------------------------------------------
    objective: str = param(
        "dpo", "Training objective: dpo (LoRA + preference loss, HA-DPO), sft (NLL on LLaVA conversations), or "
        "another registered one (entry point group hadpo.objectives).", section="objective")
    objective_options: dict[str, Any] = param(
        {}, "Options of a registered objective that takes some (dpo and sft take none).")
    model_spec: ModelSpec = component(ModelSpec, defaults={"model": "runs/demo/base/sft/model"})
    prompt_spec: PromptSpec = component(PromptSpec, defaults={"template": "vicuna_v1"})
    data_root: str = data_root_param("runs/demo/data", section="data")
    data_name: str = param("llava-v1.5", "Preference data folder under <data_root>/hadpo/.")
    desc_data: str | None = param(
        None, "desc_data.json path (default <data_root>/hadpo/<data_name>/desc_data.json).", kind="path")
    pope_data: str | None = param(
        None, "pope_data.json path (default <data_root>/hadpo/<data_name>/pope_data.json).", kind="path")
    sft_data: str | None = param(
        None, "SFT conversations, LLaVA format (default <data_root>/llava/llava_instruct.json).", kind="path")
    output_dir: str = param("runs/demo/train", "Run folder: adapter, projector, checkpoints, metrics.jsonl, logs.",
                            kind="path")
    sampling: Literal["offline", "all"] = param(
        "offline", "offline: one random chosen/rejected per image as the released code; all: every rewrite.")
    data_seed: int = param(42, "Seed of the pair sampling (the original calls random.seed(42)).")
    max_length: int | None = param(None, "Longest allowed sequence; a longer sample is an error before training.")
    answer_whitespace: Literal["keep", "strip"] = param(
        "keep", "keep: an answer's leading and trailing spaces and newlines are supervised, as the original's "
        "'ASSISTANT: ' + answer + '</s>' does (1-2 more tokens, e.g. '. ▁ </s>'); strip: they are removed first.")
    max_pairs: int | None = param(None, "Use only the first N pairs/examples (quick runs).")
    extra_data: list[str] = param(
        [], "More preference data folders under <data_root>/hadpo/ whose pairs join data_name's, each sampled as "
        "its own files (on-policy rounds training on every round's pairs).")
    # --- LoRA and what trains -----------------------------------------------------------------------------------
    lora_r: int = param(16, "LoRA rank (the 7B recipe: 128).", section="LoRA and what trains")
    lora_alpha: int = param(32, "LoRA alpha (the 7B recipe: 256).")
    lora_dropout: float = param(0.0, "LoRA dropout (nominal 0.05 in the original, 0 in effect: see disable_dropout).")
    disable_dropout: bool = param(True, "Set every nn.Dropout to p=0 as the original trainer does.")
    projector: Literal["trained", "frozen"] = param(
        "trained", "trained: the projector learns at the base lr, as the original code does despite "
        "--mm_projector_lr 0; frozen: as its command line intends.")
    gradient_checkpointing: bool = param(False, "Recompute activations in backward (saves memory on 7B).")
    # --- loss -----------------------------------------------------------------------------------------------------
    beta: float = param(0.1, "DPO beta.", section="loss")
    loss_type: Literal["sigmoid", "ipo", "hinge", "robust"] = param("sigmoid", "Preference loss.")
    label_smoothing: float = param(0.0, "Label smoothing (conservative/robust DPO).")
    gamma: float = param(0.0, "Weight of an SFT (NLL on chosen) term; 0 is the LLaVA recipe.")
    conditional_weight: float = param(
        0.0, "Weight of mDPO's image-conditional preference (chosen under the real vs a corrupted image); 0: off "
        "(HA-DPO), mDPO: 1. Costs one more image and one more packed row per pair.")
    anchor_weight: float = param(
        0.0, "Weight of mDPO's reward anchor -log sigmoid(beta*(chosen log-ratio) - anchor_margin); mDPO: 1.")
    anchor_margin: float = param(0.0, "The anchor's margin delta (mDPO: 0).")
    corruption: Literal["crop", "noise"] = param(
        "crop", "The conditional term's corrupted image: crop (mDPO: a random resized crop) or noise.")
    crop_scale: list[float] = param(
        [0.01, 0.2], "[lo, hi]: share of the image area a crop keeps, drawn per item from [lo, hi] (mDPO's).")
    noise_level: float = param(0.5, "noise: x' = sqrt(1-s)*x + sqrt(s)*N(0, 1) on the normalised pixels, s in (0, 1].")
    precompute_ref: bool = param(False, "Compute reference log-probs once before training and cache them on disk.")
    # --- optimisation ---------------------------------------------------------------------------------------------
    learning_rate: float = param(1e-4, "Peak learning rate (the 7B recipe: 2e-6).", section="optimisation")
    lr_scheduler: Literal["cosine", "linear", "constant"] = param("cosine", "Decay after warmup.")
    warmup_ratio: float = param(0.03, "Warmup share of the steps (the original's effective 3%).")
    warmup_from_zero: bool = param(False, "HF Trainer's warmup, the original's: step t < W at t/W, so the first step "
                                   "runs at lr 0; False: at (t+1)/W, so the first step learns.")
    weight_decay: float = param(0.0, "AdamW weight decay (0 in effect in the original).")
    adam_beta1: float = param(0.9, "AdamW beta1.")
    adam_beta2: float = param(0.999, "AdamW beta2.")
    adam_epsilon: float = param(1e-8, "AdamW epsilon.")
    max_grad_norm: float | None = param(None, "Gradient clipping; none in effect under the original's DeepSpeed.")
    num_epochs: float = param(1.0, "Epochs over the pair list.")
    max_steps: int | None = param(None, "Stop after this many optimiser steps (overrides epochs).")
    per_device_batch_size: int = param(16, "Pairs (or SFT examples) per device per micro-step.")
    group_by_length: bool = param(
        False, "Batch examples of similar token length together (less padding; LLaVA's group_by_modality_length).")
    gradient_accumulation_steps: int = param(1, "Micro-steps per optimiser step.")
    seed: int = param(42, "Seed of the shuffle and of LoRA initialisation.")
    # --- launch ---------------------------------------------------------------------------------------------------
    launch_spec: LaunchSpec = component(LaunchSpec)
    deepspeed_config: str | None = param(
        "params/deepspeed/zero2.json", "DeepSpeed ZeRO config (None: plain PyTorch / DDP).", kind="path")
    # --- bookkeeping ----------------------------------------------------------------------------------------------
    save_steps: int = param(50, "Checkpoint every N optimiser steps (resume point after a kill).",
                            section="bookkeeping")
    save_total_limit: int = param(2, "Checkpoints kept.")
    logging_steps: int = param(1, "Append metrics every N optimiser steps.")
    report_to: Literal["none", "wandb", "tensorboard"] = param("none", "Also log to wandb/tensorboard if installed.")
    save_merged: bool = param(
        False, "Also write the trained model, its adapter merged in, as a full model folder <output_dir>/policy/ "
        "(an on-policy round's next model; LLaVA-1.5-7B in bfloat16: 14 GB).")
    rerun: RerunSpec = component(RerunSpec)

    def validate(self) -> None:
        check_registered(OBJECTIVES, self.objective, "objective")
        check(self.beta > 0, f"parameter 'beta' must be positive, got {self.beta}")
        check(0 <= self.label_smoothing < 0.5,
              f"parameter 'label_smoothing' must be in [0, 0.5), got {self.label_smoothing}")
        check(self.label_smoothing == 0 or self.loss_type in ("sigmoid", "robust"),
              f"label_smoothing applies to the sigmoid and robust losses only, not {self.loss_type!r}")
        check(self.conditional_weight >= 0,
              f"parameter 'conditional_weight' must be >= 0, got {self.conditional_weight}")
        check(self.anchor_weight >= 0, f"parameter 'anchor_weight' must be >= 0, got {self.anchor_weight}")
        check(float("-inf") < self.anchor_margin < float("inf"),
              f"parameter 'anchor_margin' must be finite, got {self.anchor_margin}")
        check(len(self.crop_scale) == 2 and 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1,
              f"parameter 'crop_scale' must be [lo, hi] with 0 < lo <= hi <= 1, got {self.crop_scale}")
        check(0 < self.noise_level <= 1, f"parameter 'noise_level' must be in (0, 1], got {self.noise_level}")
        check(self.per_device_batch_size > 0, "parameter 'per_device_batch_size' must be positive")
        check(self.gradient_accumulation_steps > 0, "parameter 'gradient_accumulation_steps' must be positive")
        check(0 <= self.warmup_ratio < 1, f"parameter 'warmup_ratio' must be in [0, 1), got {self.warmup_ratio}")
        check(self.learning_rate > 0, "parameter 'learning_rate' must be positive")
        check(self.lora_r > 0 and self.lora_alpha > 0, "parameters 'lora_r' and 'lora_alpha' must be positive")
        check(self.model_spec.device in ("auto", "cpu", "cuda"),
              f"parameter 'device' must be auto, cpu or cuda for training (each rank takes cuda:LOCAL_RANK), got "
              f"{self.model_spec.device!r}")
        check(not (self.save_merged and self.model_spec.adapter and self.model_spec.merge_adapter),
              "parameter 'save_merged' needs a model without an adapter merged into it (or the adapter continued, "
              "merge_adapter false): the new adapter sits on a model no folder holds")
        check(not self.extra_data or self.objective == "dpo",
              f"parameter 'extra_data' holds preference data, for objective dpo, not {self.objective!r}")
        check(self.model_spec.attn_implementation in (None, "sdpa", "eager"),
              "parameter 'attn_implementation' must be sdpa or eager for training: packed pairs need a 4D "
              f"attention mask, got {self.model_spec.attn_implementation!r}")
