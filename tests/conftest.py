"""Shared fixtures: an untrained tiny LLaVA built once per session, offline."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DS_ACCELERATOR", "cpu")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path

import pytest

from hadpo.models.prompts import DESCRIPTION_INSTRUCTIONS, LLAVA_V1_SYSTEM, VICUNA_V1_SYSTEM

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
