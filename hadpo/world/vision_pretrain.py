"""A stand-in for CLIP pretraining, for the shapes world's tiny model only (not part of HA-DPO).

LLaVA starts from a pretrained CLIP tower. A randomly initialised tiny tower gives the language model
nothing to read, and an end-to-end trained one learns too slowly on two cores, so before SFT the tower is
trained briefly to classify which object category (or nothing) each image patch holds, from the VG object
boxes, and then frozen. A second linear head predicts each patch's own grid cell, so the features keep
where they are, as CLIP's patch features do (a category-only objective would train position out of them,
and the language model could no longer say where an object is). The heads read the layer LLaVA takes its
features from (``vision_feature_layer``, -2), so what is learnt is what the projector will see.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hadpo.data.vg import VGObject


@dataclass(frozen=True)
class PatchTargets:
    """Per-image patch labels: 0 = empty, k = the k-th category of ``classes``."""

    image_paths: list[Path]
    labels: list[list[int]]
    classes: list[str]


def patch_targets(images: Sequence[tuple[Path, int, int, Sequence[VGObject]]], grid: int) -> PatchTargets:
    """Label each cell of a ``grid``×``grid`` patch layout with the category whose box centre falls in it.

    ``images`` holds (path, width, height, objects) per image.
    """
    classes = sorted({obj.name for *_, objects in images for obj in objects})
    index = {name: i + 1 for i, name in enumerate(classes)}
    paths, labels = [], []
    for path, width, height, objects in images:
        cells = [0] * (grid * grid)
        for obj in objects:
            col = min(grid - 1, int((obj.x + obj.w / 2) / width * grid))
            row = min(grid - 1, int((obj.y + obj.h / 2) / height * grid))
            cells[row * grid + col] = index[obj.name]
        paths.append(Path(path))
        labels.append(cells)
    return PatchTargets(paths, labels, classes)


def pretrain_vision_tower(model, processor, targets: PatchTargets, *, steps: int, lr: float, batch_size: int = 128,
                          seed: int = 0, image_mode: str = "pad") -> dict[str, float]:
    """Train the vision tower of a ``LlavaForConditionalGeneration`` on patch classification, then freeze it.

    Returns the final training accuracies over patches, for the category and for the cell (a check that the
    stand-in did its job).
    """
    import torch
    from PIL import Image

    from hadpo.models.image import prepare_image

    tower = model.model.vision_tower
    layer = model.config.vision_feature_layer
    image_processor = processor.image_processor
    pixels = torch.cat([
        image_processor(prepare_image(Image.open(p), image_mode, image_processor.image_mean),
                        return_tensors="pt")["pixel_values"]
        for p in targets.image_paths
    ])
    labels = torch.tensor(targets.labels, dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    head = torch.nn.Linear(tower.config.hidden_size, len(targets.classes) + 1)
    cells = labels.shape[1]
    cell_head = torch.nn.Linear(tower.config.hidden_size, cells)
    for layer_ in (head, cell_head):
        torch.nn.init.normal_(layer_.weight, std=0.02, generator=generator)
        torch.nn.init.zeros_(layer_.bias)
    cell_targets = torch.arange(cells)
    params = [*tower.parameters(), *head.parameters(), *cell_head.parameters()]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    tower.train()
    accuracy = cell_accuracy = 0.0
    for _ in range(steps):
        idx = torch.randint(0, len(pixels), (min(batch_size, len(pixels)),), generator=generator)
        hidden = tower(pixels[idx], output_hidden_states=True).hidden_states[layer][:, 1:]  # drop CLS
        logits = head(hidden)
        cell_logits = cell_head(hidden)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels[idx].reshape(-1))
        loss = loss + torch.nn.functional.cross_entropy(
            cell_logits.reshape(-1, cells), cell_targets.repeat(len(idx))
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        accuracy = (logits.argmax(-1) == labels[idx]).float().mean().item()
        cell_accuracy = (cell_logits.argmax(-1) == cell_targets).float().mean().item()
    tower.eval()
    tower.requires_grad_(False)
    return {"vision_pretrain_patch_accuracy": accuracy, "vision_pretrain_cell_accuracy": cell_accuracy,
            "vision_pretrain_steps": float(steps)}
