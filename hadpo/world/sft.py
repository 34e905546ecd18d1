"""The shapes world's SFT objective (``shapes_sft``): the kit's SFT plus the conditions a model this small needs.

Registered in the ``hadpo.objectives`` entry point group, so the trainer runs it like any objective and never
imports the world. Its options (:class:`~hadpo.world.config.ShapesSftOptions`) come in ``objective_options``:

- the loss on the first answer token of existence questions (the Yes/No decision) is weighted
  ``decision_token_weight`` times, and every description token ``description_weight`` times;
- before SFT, the vision tower is pretrained briefly on per-patch classification (category and grid cell), as a
  stand-in for CLIP pretraining, then frozen (:mod:`hadpo.world.vision_pretrain`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hadpo.data.layout import DataLayout
from hadpo.data.llava_conv import LlavaConversation
from hadpo.world.config import ShapesSftOptions
from hadpo.world.corpus import DECISION_KINDS, DESCRIPTION_KIND


def decision_index(tokenizer: Any, answer_ids: tuple[int, ...]) -> int:
    """Index of the first answer token that is not only whitespace: the Yes/No of "Yes, there is ...".

    A tokenizer may split the space after "ASSISTANT:" into a token of its own; that token decides nothing.
    """
    for i, token_id in enumerate(answer_ids):
        if tokenizer.decode([token_id]).strip():
            return i
    return 0


def answer_weights(options: ShapesSftOptions, conversation: LlavaConversation, answer_ids: tuple[int, ...],
                   tokenizer: Any) -> tuple[float, ...] | None:
    """Per-token loss weights of one answer: descriptions all ``description_weight``, the decision token of an
    existence question ``decision_token_weight``, anything else None (all 1)."""
    kind = conversation.kind or ""
    if kind == DESCRIPTION_KIND:
        return (options.description_weight,) * len(answer_ids)
    if kind in DECISION_KINDS:
        weights = [1.0] * len(answer_ids)
        weights[decision_index(tokenizer, answer_ids)] = options.decision_token_weight
        return tuple(weights)
    return None


def build(cfg: Any, ctx: Any) -> Any:
    """The ``shapes_sft`` objective (entry point): options checked, vision stand-in, weighted SFT."""
    from hadpo.train.objectives import build_sft

    options = ShapesSftOptions.from_dict(cfg.objective_options, source="objective_options")

    def pretrain(model: Any, processor: Any, layout: DataLayout, images: list[Path]) -> None:
        if options.vision_pretrain_steps > 0:
            _pretrain_vision(model, processor, layout, images, options, cfg)

    return build_sft(cfg, ctx, weights=lambda conv, ids, tok: answer_weights(options, conv, ids, tok),
                     prepare_model=pretrain)


def _pretrain_vision(model: Any, processor: Any, layout: DataLayout, images: list[Path], options: ShapesSftOptions,
                     cfg: Any) -> None:
    from hadpo.data.vg import read_vg_images, read_vg_objects
    from hadpo.world.vision_pretrain import patch_targets, pretrain_vision_tower

    records = {img.path(layout): img for img in read_vg_images(layout.image_data)}
    objects = read_vg_objects(layout.objects)
    vision = model.config.vision_config
    grid = vision.image_size // vision.patch_size
    chosen = [(p, records[p].width, records[p].height, objects.get(records[p].image_id, [])) for p in images
              if p in records]
    result = pretrain_vision_tower(model, processor, patch_targets(chosen, grid), steps=options.vision_pretrain_steps,
                                   lr=options.vision_pretrain_lr, seed=cfg.seed, image_mode=cfg.prompt_spec.image_mode)
    # One readable line in the training log and notebook 00 (a dict's repr is neither).
    shown = ", ".join(f"{k.removeprefix('vision_pretrain_').replace('_', ' ')} {v:.3g}" for k, v in result.items())
    print(f"[hadpo.train] vision pretraining stand-in: {shown}", flush=True)
