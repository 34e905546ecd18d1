"""Shared fixtures: an untrained tiny LLaVA built once per session, offline, small shapes worlds (read-only), a
JupyterLab-style project for 03_pope, and the CI pipeline's one run (params/demo-ci.yaml, 1.5–2 minutes)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DS_ACCELERATOR", "cpu")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from hadpo.models.prompts import DESCRIPTION_INSTRUCTIONS, LLAVA_V1_SYSTEM, VICUNA_V1_SYSTEM

if TYPE_CHECKING:
    from hadpo.pipeline import PipelineConfig

TINY_TEXTS = [
    VICUNA_V1_SYSTEM,
    LLAVA_V1_SYSTEM,
    *DESCRIPTION_INSTRUCTIONS,
    "USER: <image>\nIs there a red circle in the image? ASSISTANT: Yes, there is a red circle in the image.",
    "USER: <image>\nIs there a blue square in the image? ASSISTANT: No, there is no blue square in the image.",
    "There is a red circle on the left. There is a blue square in the middle. There is a green triangle on "
    "the right. There is a yellow cross. There is a purple square. There is an orange circle. There is a "
    "cyan cross. There is a white triangle.",
] * 20


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained tiny LLaVA folder (model + processor), loadable with ``from_pretrained``."""
    from hadpo.models.tiny import build_tiny_llava

    return build_tiny_llava(tmp_path_factory.mktemp("tiny_llava"), TINY_TEXTS)


@pytest.fixture(scope="session")
def tiny_loaded(tiny_model_dir: Path) -> Any:
    """The untrained tiny LLaVA through the kit's loader (float32, CPU; shared: tests must not modify it)."""
    from hadpo.models.loading import load_model
    from hadpo.specs import ModelSpec

    return load_model(ModelSpec(model=str(tiny_model_dir), device="cpu"))


@pytest.fixture(scope="session")
def shr_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shapes world with 5 SHR images (VG / SHR files, images, world.json); tests must not modify it."""
    from hadpo.world import WorldConfig, generate_world

    return generate_world(tmp_path_factory.mktemp("shr_world") / "data",
                          WorldConfig(seed=3, train_images=1, pope_images=0, shr_images=5))


#: Train 24 images; the POPE pool (4, with COCO ids) and the SHR images (3) are VG images too, so leaks exist.
MINING_WORLD_SIZES = {"seed": 5, "train_images": 24, "pope_images": 4, "shr_images": 3}


@pytest.fixture(scope="session")
def mining_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Root of a small shapes world for the mining tests; tests must not modify it."""
    from hadpo.world import WorldConfig, generate_world

    return generate_world(tmp_path_factory.mktemp("mining_world") / "data", WorldConfig(**MINING_WORLD_SIZES))


@pytest.fixture(scope="session")
def planted_descriptions() -> Callable[[Path, list[str]], dict[str, str]]:
    """:func:`plant_descriptions`, for tests to call."""
    return plant_descriptions


def plant_descriptions(root: Path, image_ids: list[str]) -> dict[str, str]:
    """Descriptions of the given images: the true caption, plus, on every other image, a sentence about an absent
    category; the third image also gets a present object in a wrong column."""
    from hadpo.world.shr_oracle import world_categories, world_objects
    from hadpo.world.text import describe, object_sentence

    objects = world_objects(root)
    categories = world_categories(root, objects)
    out = {}
    for n, image_id in enumerate(image_ids):
        objs = objects[image_id]
        text = describe(objs)
        if n % 2 == 0:
            absent = next(c for c in categories if c not in {name for name, _ in objs})
            text += " " + object_sentence(absent, 2)
        if n == 2:
            name, column = objs[0]
            text += " " + object_sentence(name, (column + 1) % 3)
        out[image_id] = text
    return out


REPO_ROOT = Path(__file__).resolve().parents[1]
#: Llama-2's tokenizer, built offline from the npm package llama-tokenizer-js (tools/build_llama2_tokenizer.py).
LLAMA2_TOKENIZER = REPO_ROOT / "tests" / "fixtures" / "llama2-tokenizer"


@pytest.fixture(scope="session")
def llava15_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """LLaVA-1.5-7B's geometry cut to 2 text and 3 vision layers (about 730 M parameters, random fp16 weights), the
    real Llama-2 tokenizer, in the hub's layout: built once per session (about 20 s, 1.4 GB), read-only."""
    from hadpo.models.llava15 import write_llava15

    return write_llava15(tmp_path_factory.mktemp("llava15") / "llava-1.5-7b-hf", LLAMA2_TOKENIZER,
                         text_layers=2, vision_layers=3)


@pytest.fixture
def pope_project(tmp_path: Path, tiny_model_dir: Path) -> Path:
    """A project folder as a JupyterLab user has it, for ``notebooks/03_pope.ipynb`` (copied as committed):
    ``params/`` linked to the kit's, and ``runs/demo/`` with a shapes world, its POPE files and the tiny model as
    the base model, at the paths of the notebook's parameters cell. Returns the project folder."""
    from hadpo.eval.pope.build import build_pope_files
    from hadpo.eval.pope.config import PopeBuildConfig
    from hadpo.notebooks import NOTEBOOK_DIR
    from hadpo.world.config import WorldConfig
    from hadpo.world.generate import generate_world

    project = tmp_path / "project"
    (project / "notebooks").mkdir(parents=True)
    (project / "params").symlink_to(REPO_ROOT / "params")
    shutil.copy(NOTEBOOK_DIR / "03_pope.ipynb", project / "notebooks")
    data = project / "runs" / "demo" / "data"
    generate_world(data, WorldConfig(seed=1, train_images=1, pope_images=4, shr_images=1))
    build_pope_files(PopeBuildConfig(data_root=str(data), n_images=4, seed=1))
    shutil.copytree(tiny_model_dir, project / "runs" / "demo" / "base" / "sft" / "model")
    return project


@dataclass(frozen=True)
class CiRun:
    """The CI pipeline's run: its project folder (``params/`` linked to the kit's), config and reports index."""

    root: Path
    cfg: PipelineConfig
    index: Path

    @property
    def reports(self) -> Path:
        """The run's report folder, ``<reports_dir>/<name>/``."""
        return self.root / self.cfg.reports_dir / self.cfg.name


@pytest.fixture(scope="session")
def ci_run(tmp_path_factory: pytest.TempPathFactory) -> CiRun:
    """The whole chain 00 → 05 once per session through papermill with params/demo-ci.yaml (1.5–2 minutes),
    run from a temporary project folder; shared by the pipeline test and the browser tests of its HTML reports,
    which must not modify it."""
    from hadpo.pipeline import PipelineConfig, run_pipeline

    root = tmp_path_factory.mktemp("ci_run")
    (root / "params").symlink_to(REPO_ROOT / "params")
    # The pipeline's relative paths (reports/, runs/) are the project's: run it from the project folder.
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        cfg = PipelineConfig.from_yaml("params/demo-ci.yaml")
        index = run_pipeline(cfg, log=lambda line: None)
    return CiRun(root=root, cfg=cfg, index=(root / index).resolve())
