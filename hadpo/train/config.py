"""Every training parameter, typed and documented (``params/*/02_train.yaml`` and notebook 02 use these names).

Defaults are the shapes world's; ``params/7b/02_train.yaml`` holds the original HA-DPO LLaVA-1.5-7B recipe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hadpo.config import Params, check, param


@dataclass
class TrainConfig(Params):
    """Parameters of one training run (DPO, or SFT for the shapes world's base model)."""

    # --- what and where -------------------------------------------------------------------------
    mode: Literal["dpo", "sft"] = param("dpo", "dpo: LoRA + preference loss (HA-DPO). sft: NLL on answers.")
    model: str = param("runs/demo/base_model", "Base model folder or hub id (LlavaForConditionalGeneration).")
    data_root: str = param("runs/demo/data", "Data root in the HA-DPO layout (VG images, hadpo/<name>/...).")
    data_name: str = param("llava-v1.5", "Preference data folder under <data_root>/hadpo/.")
    desc_data: str | None = param(None, "desc_data.json path (default <data_root>/hadpo/<data_name>/desc_data.json).")
    pope_data: str | None = param(None, "pope_data.json path (default <data_root>/hadpo/<data_name>/pope_data.json).")
    sft_data: str | None = param(
        None, "SFT conversations, LLaVA format (default <data_root>/llava/llava_instruct.json)."
    )
    output_dir: str = param("runs/demo/train", "Run folder: adapter, projector, checkpoints, metrics.jsonl, logs.")
    # --- data -----------------------------------------------------------------------------------------
    sampling: Literal["offline", "all"] = param(
        "offline", "offline: one random chosen/rejected per image as the released code; all: every rewrite."
    )
    data_seed: int = param(42, "Seed of the pair sampling (the original calls random.seed(42)).")
    template: Literal["vicuna_v1", "llava_v1", "plain"] = param(
        "vicuna_v1", "Conversation template; the original trains with Vicuna-v1's system sentence."
    )
    image_mode: Literal["pad", "crop"] = param("pad", "pad: pad to square with the mean colour (original); crop.")
    max_length: int | None = param(None, "Longest allowed sequence; a longer sample is an error before training.")
    max_pairs: int | None = param(None, "Use only the first N pairs/examples (quick runs).")
    # --- model ------------------------------------------------------------------------------------------
    lora_r: int = param(16, "LoRA rank (the 7B recipe: 128).")
    lora_alpha: int = param(32, "LoRA alpha (the 7B recipe: 256).")
    lora_dropout: float = param(0.0, "LoRA dropout (nominal 0.05 in the original, 0 in effect: see disable_dropout).")
    disable_dropout: bool = param(True, "Set every nn.Dropout to p=0 as the original trainer does.")
    projector: Literal["trained", "frozen"] = param(
        "trained", "trained: the projector learns at the base lr, as the original code does despite "
        "--mm_projector_lr 0; frozen: as its command line intends."
    )
    gradient_checkpointing: bool = param(False, "Recompute activations in backward (saves memory on 7B).")
    precision: Literal["fp32", "bf16", "fp16"] = param("fp32", "Training precision (the 7B recipe: bf16).")
    # --- loss -----------------------------------------------------------------------------------------
    beta: float = param(0.1, "DPO beta.")
    loss_type: Literal["sigmoid", "ipo", "hinge", "robust"] = param("sigmoid", "Preference loss.")
    label_smoothing: float = param(0.0, "Label smoothing (conservative/robust DPO).")
    gamma: float = param(0.0, "Weight of an SFT (NLL on chosen) term; 0 is the LLaVA recipe.")
    precompute_ref: bool = param(False, "Compute reference log-probs once before training and cache them on disk.")
    # --- SFT (the shapes world's base model only) -------------------------------------------------------
    decision_token_weight: float = param(
        10.0, "SFT: loss weight of the first answer token of existence questions (the Yes/No decision). A "
        "condition for a model this small to learn existence QA, not part of HA-DPO."
    )
    description_weight: float = param(
        1.0, "SFT: loss weight of every answer token of description conversations (kind 'desc'). Balances the "
        "captions against the up-weighted Yes/No tokens; a condition for a model this small, not part of HA-DPO."
    )
    vision_pretrain_steps: int = param(
        300, "SFT: steps of per-patch category classification that stand in for CLIP pretraining, after which "
        "the vision tower is frozen (0 = none). A condition for a model this small, not part of HA-DPO."
    )
    vision_pretrain_lr: float = param(3e-3, "SFT: learning rate of the vision pretraining stand-in.")
    # --- optimisation -------------------------------------------------------------------------------------
    learning_rate: float = param(1e-4, "Peak learning rate (the 7B recipe: 2e-6).")
    lr_scheduler: Literal["cosine", "linear", "constant"] = param("cosine", "Decay after warmup.")
    warmup_ratio: float = param(0.03, "Warmup share of the steps (the original's effective 3%).")
    weight_decay: float = param(0.0, "AdamW weight decay (0 in effect in the original).")
    adam_beta1: float = param(0.9, "AdamW beta1.")
    adam_beta2: float = param(0.999, "AdamW beta2.")
    adam_epsilon: float = param(1e-8, "AdamW epsilon.")
    max_grad_norm: float | None = param(None, "Gradient clipping; none in effect under the original's DeepSpeed.")
    num_epochs: float = param(1.0, "Epochs over the pair list.")
    max_steps: int | None = param(None, "Stop after this many optimiser steps (overrides epochs).")
    per_device_batch_size: int = param(16, "Pairs (or SFT examples) per device per micro-step.")
    group_by_length: bool = param(
        False, "Batch examples of similar token length together (less padding; LLaVA's group_by_modality_length)."
    )
    gradient_accumulation_steps: int = param(1, "Micro-steps per optimiser step.")
    seed: int = param(42, "Seed of the shuffle and of LoRA initialisation.")
    # --- launch -----------------------------------------------------------------------------------------
    launcher: Literal["deepspeed", "torchrun", "python"] = param("deepspeed", "How notebook 02 starts training.")
    deepspeed_config: str | None = param(
        "params/deepspeed/zero2.json", "DeepSpeed ZeRO config (None: plain PyTorch / DDP)."
    )
    num_gpus: int = param(1, "Processes per node (GPUs; on CPU, processes).")
    num_nodes: int = param(1, "Nodes (multi-node needs a hostfile).")
    hostfile: str | None = param(None, "DeepSpeed hostfile for multi-node runs.")
    master_port: int | None = param(None, "Rendezvous port (None: a free one).")
    device: Literal["auto", "cpu", "cuda"] = param("auto", "auto: cuda when available, else cpu.")
    # --- bookkeeping --------------------------------------------------------------------------------------
    save_steps: int = param(50, "Checkpoint every N optimiser steps (resume point after a kill).")
    save_total_limit: int = param(2, "Checkpoints kept.")
    logging_steps: int = param(1, "Append metrics every N optimiser steps.")
    report_to: Literal["none", "wandb", "tensorboard"] = param("none", "Also log to wandb/tensorboard if installed.")

    def __post_init__(self) -> None:
        check(self.beta > 0, f"beta must be positive, got {self.beta}")
        check(0 <= self.label_smoothing < 0.5, f"label_smoothing must be in [0, 0.5), got {self.label_smoothing}")
        check(self.label_smoothing == 0 or self.loss_type in ("sigmoid", "robust"),
              f"label_smoothing applies to the sigmoid and robust losses only, not {self.loss_type!r}")
        check(self.per_device_batch_size > 0, "per_device_batch_size must be positive")
        check(self.gradient_accumulation_steps > 0, "gradient_accumulation_steps must be positive")
        check(0 <= self.warmup_ratio < 1, f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        check(self.learning_rate > 0, "learning_rate must be positive")
        check(self.decision_token_weight > 0 and self.description_weight > 0,
              "decision_token_weight and description_weight must be positive")
        check(self.num_nodes == 1 or self.hostfile is not None, "num_nodes > 1 needs a hostfile")
        check(self.lora_r > 0 and self.lora_alpha > 0, "lora_r and lora_alpha must be positive")
