"""LoRA on LLaVA's language model only.

The kit adapts the seven projections of every decoder layer of the language model, as HA-DPO does. A name
list such as ``["q_proj", "k_proj", ...]`` or ``"all-linear"`` is NOT equivalent on the transformers-native
LLaVA: the CLIP tower also has ``q_proj/k_proj/v_proj`` (HA-DPO never adapted it only because the original
LLaVA loads its tower after LoRA is injected), and ``all-linear`` also catches the projector. So targets are a
regex anchored on ``language_model.layers.<N>``, which peft matches against full module names.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from peft import LoraConfig, PeftModel
    from torch import nn

#: The language model's per-layer projections, in LLaMA's order.
LM_PROJECTIONS: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

_ATTENTION = frozenset({"q_proj", "k_proj", "v_proj", "o_proj"})
_MLP = frozenset({"gate_proj", "up_proj", "down_proj"})


def lm_target_regex(projections: Iterable[str] = LM_PROJECTIONS) -> str:
    """A regex (for ``re.fullmatch`` on module names) selecting ``projections`` in every language-model layer.

    Matches ``model.language_model.layers.3.self_attn.q_proj`` (transformers 5) and the older
    ``language_model.model.layers.3.self_attn.q_proj`` layout; never ``model.vision_tower...`` nor the projector.
    """
    names = list(dict.fromkeys(projections))
    unknown = [n for n in names if n not in _ATTENTION | _MLP]
    if unknown or not names:
        raise ValueError(f"LoRA projections must be a non-empty subset of {LM_PROJECTIONS}, got {names}")
    branches = []
    attn = [n for n in LM_PROJECTIONS if n in names and n in _ATTENTION]
    mlp = [n for n in LM_PROJECTIONS if n in names and n in _MLP]
    if attn:
        branches.append(r"self_attn\.(?:" + "|".join(attn) + ")")
    if mlp:
        branches.append(r"mlp\.(?:" + "|".join(mlp) + ")")
    return r"(?:.*\.)?language_model\.(?:model\.)?layers\.\d+\.(?:" + "|".join(branches) + ")"


#: Regex selecting ONLY the language model's q/k/v/o/gate/up/down projections.
LM_LORA_TARGET_REGEX: str = lm_target_regex()


def lora_config(r: int, alpha: float, dropout: float, *, target_regex: str = LM_LORA_TARGET_REGEX) -> LoraConfig:
    """A causal-LM ``LoraConfig`` on the language model's projections (no bias training).

    HA-DPO used r=128, alpha=256 (scaling alpha/r = 2) and a nominal dropout of 0.05.
    """
    from peft import LoraConfig

    if r <= 0:
        raise ValueError(f"LoRA rank must be positive, got {r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"LoRA dropout must be in [0, 1), got {dropout}")
    return LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        bias="none",
        task_type="CAUSAL_LM",
        target_modules=target_regex,
    )


def unwrap_model(model: nn.Module) -> nn.Module:
    """The transformers model under a ``PeftModel`` (or ``model`` itself when it is not wrapped)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def get_projector(model: nn.Module) -> nn.Module:
    """The multimodal projector of a (possibly peft-wrapped) ``LlavaForConditionalGeneration``."""
    base = unwrap_model(model)
    inner = getattr(base, "model", None)
    projector = getattr(inner, "multi_modal_projector", None)
    if projector is None:
        raise TypeError(f"{type(base).__name__} has no model.multi_modal_projector; is it a LLaVA model?")
    return projector


def set_projector_trainable(model: nn.Module, trainable: bool) -> None:
    """Turn gradients on or off for the projector (HA-DPO trains it alongside LoRA)."""
    for p in get_projector(model).parameters():
        p.requires_grad_(trainable)


def apply_lora(model: nn.Module, cfg: LoraConfig, train_projector: bool) -> PeftModel:
    """Wrap ``model`` with LoRA; everything is frozen but the LoRA weights, plus the projector when asked."""
    from peft import get_peft_model


    with ignore_peft_deprecation():
        peft_model = get_peft_model(model, cfg)
    # get_peft_model already freezes the base; freeze again explicitly so a partly-unfrozen input model
    # cannot leak extra trainable parameters into the optimiser.
    for name, p in peft_model.named_parameters():
        p.requires_grad_("lora_" in name)
    if train_projector:
        set_projector_trainable(peft_model, True)
    return peft_model


def lora_target_names(model: nn.Module) -> list[str]:
    """Names (in the unwrapped model) of the modules the language-model regex selects, in module order.

    On a ``PeftModel`` these are the modules that carry LoRA weights; on a plain model, the ones that would.
    """
    pattern = re.compile(LM_LORA_TARGET_REGEX)
    return [name for name, _ in unwrap_model(model).named_modules() if pattern.fullmatch(name)]


def lora_module_names(model: nn.Module) -> list[str]:
    """Names (in the unwrapped model) of the modules that actually hold LoRA layers."""
    from peft.tuners.lora import LoraLayer

    return [name for name, module in unwrap_model(model).named_modules() if isinstance(module, LoraLayer)]


#: transformers 5 deprecates ``is_gradient_checkpointing``, which peft's PeftModel still reads while wrapping
#: a model (every adapter load, every LoRA applied): a warning about peft's code, not the kit's, on every run.
_PEFT_DEPRECATION = r"`is_gradient_checkpointing` is deprecated"


@contextlib.contextmanager
def ignore_peft_deprecation() -> Iterator[None]:
    """A ``with`` block that drops exactly the ``is_gradient_checkpointing`` FutureWarning peft triggers when it
    wraps a model (see ``_PEFT_DEPRECATION``); every other warning still shows."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_PEFT_DEPRECATION, category=FutureWarning)
        yield
