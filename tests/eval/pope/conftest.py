"""Fixtures for the POPE tests: a small COCO-style data root and a tiny LLaVA whose answers vary with the input."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
from PIL import Image

from hadpo.data.layout import DataLayout
from hadpo.eval.pope.build import build_pope_files
from hadpo.eval.pope.config import PopeBuildConfig

#: Two vowel-initial names check the article; eight categories leave room for 3 absent objects per image.
CATEGORIES = ["person", "apple", "umbrella", "dog", "cat", "car", "bicycle", "chair"]


def write_coco(root: Path, n_images: int = 16, seed: int = 7) -> Path:
    """A data root with COCO val2014-style images (varied sizes and colours) and an instances file.

    Images 0 and 1 carry fewer than three categories and must never be drawn; the others have 3-5 (at most 5
    of the 8, so 3 absent objects always exist), "person" often next to "bicycle" so co-occurrence is not flat.
    """
    rng = random.Random(seed)
    layout = DataLayout(root)
    layout.coco_images.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i in range(n_images):
        image_id = 1000 + i
        name = f"COCO_val2014_{image_id:012d}.jpg"
        size = (rng.choice([40, 48, 64]), rng.choice([32, 48, 56]))
        img = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
        img.paste(tuple(rng.randrange(256) for _ in range(3)), (2, 2, size[0] // 2, size[1] // 2))
        img.save(layout.coco_images / name, quality=95)
        images.append({"id": image_id, "file_name": name, "width": size[0], "height": size[1]})
        if i < 2:
            cats = ["person"] if i == 0 else ["dog", "cat"]
        else:
            cats = rng.sample(CATEGORIES, rng.randint(3, 4))
            if "person" in cats and "bicycle" not in cats and rng.random() < 0.8:
                cats.append("bicycle")
        for name_ in cats + cats[:1]:  # a repeated instance must not count as a new category
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": CATEGORIES.index(name_) + 1,
                "bbox": [1.0, 1.0, 5.0, 5.0], "area": 25.0, "iscrowd": 0,
            })
    categories = [{"id": i + 1, "name": n, "supercategory": "thing"} for i, n in enumerate(CATEGORIES)]
    layout.coco_instances.parent.mkdir(parents=True, exist_ok=True)
    layout.coco_instances.write_text(json.dumps({"images": images, "annotations": annotations,
                                                 "categories": categories}))
    return root


@pytest.fixture()
def coco_root(tmp_path: Path) -> Path:
    """A fresh small COCO-style data root (no POPE files yet)."""
    return write_coco(tmp_path / "data")


@pytest.fixture(scope="session")
def pope_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root with images, instances and the three POPE files (4 images, 24 questions per set)."""
    root = write_coco(tmp_path_factory.mktemp("pope") / "data")
    build_pope_files(PopeBuildConfig(data_root=str(root), n_images=4, seed=3))
    return root


@pytest.fixture(scope="session")
def varied_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny LLaVA with its matrices re-drawn at unit gain, so greedy answers differ per image and question.

    The untrained model's near-uniform logits make it repeat one token whatever the input, which would let
    a broken image or padding path pass an equality test unnoticed.
    """
    import torch
    from transformers import LlavaForConditionalGeneration

    out = tmp_path_factory.mktemp("varied_llava")
    model = LlavaForConditionalGeneration.from_pretrained(tiny_model_dir)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for param in model.parameters():
            if param.ndim == 2:
                param.normal_(0.0, param.shape[1] ** -0.5, generator=gen)
    model.save_pretrained(out)
    for path in tiny_model_dir.iterdir():
        if path.is_file() and not (out / path.name).exists():
            shutil.copy(path, out / path.name)
    return out
