"""Parameters of notebook 01 (preference data): read the released HA-DPO data, or mine new pairs.

The field names are the keys of ``params/*/01_data.yaml`` files and of notebook 01's parameters cell. Defaults
target the real setting (LLaVA-1.5-7B, Visual Genome, an OpenAI-compatible judge); a shapes-world params file
sets ``source: mine``, ``judge: oracle``, the tiny model and annotation thresholds that fit 1-3 object scenes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hadpo.config import Params, check, component, param
from hadpo.specs import (
    DecodingSpec,
    JudgeSpec,
    ModelSpec,
    PromptSpec,
    RerunSpec,
    data_root_param,
    progress_param,
)


@dataclass
class DataConfig(Params):
    """Where preference data come from and, when mined, how (see :mod:`hadpo.mining`)."""

    source: Literal["released", "mine"] = param(
        "released", "released: check and summarise <data_root>/hadpo/<name>/; mine: build that folder from the "
        "model's own descriptions.", section="source and locations")
    data_root: str = data_root_param()
    name: str = param("llava-v1.5", "Preference data folder under <data_root>/hadpo/ (read, or written when mining).")
    run_dir: str = param("runs/data", "Run folder: every step's output, data_stats.json, judge cache.", kind="path")
    exclude_leaks: bool = param(True, "Drop training images that are POPE or SHR evaluation images (always counted).")
    overwrite_released: bool = param(
        False, "Allow mining to replace desc/pope files in <data_root>/hadpo/<name>/ that the miner did not write.")
    n_images: int = param(2000, "Images to mine (the original: about 2K), drawn at random among eligible ones.",
                          section="image selection")
    min_objects: int = param(3, "Fewest annotated objects (VG objects.json) an image needs to be eligible.")
    max_objects: int = param(40, "Most annotated objects an eligible image may have (crowded scenes are skipped).")
    min_regions: int = param(5, "Fewest region descriptions with a phrase an eligible image needs.")
    max_regions: int | None = param(None, "Most region descriptions an eligible image may have (None: no limit).")
    seed: int = param(0, "Seed of the image draw.")
    model_spec: ModelSpec = component(ModelSpec)
    prompt_spec: PromptSpec = component(PromptSpec)
    decoding: DecodingSpec = component(DecodingSpec)
    qa_max_new_tokens: int = param(64, "Longest answer when the model answers the QA questions (greedy).")
    judge_spec: JudgeSpec = component(JudgeSpec, defaults={"judge_max_tokens": 2000})
    chunk_size: int = param(64, "Images per judge batch; each batch's results are saved before the next starts.")
    rewrites: int = param(3, "Style-consistent rewrites per image: rewrite i of chosen and rejected share style i.",
                          section="rewriting and QA conversion")
    qa_hallucinated: int = param(3, "Most questions per image about hallucinated (absent) objects.")
    qa_present: int = param(2, "Most questions per image about objects that are in the image.")
    qa_yes_example: str = param(
        "Yes, there is a dog in the image.", "The model's answer style for a present object (shown to the judge)."
    )
    qa_no_example: str = param(
        "No, there is no dog in the image.", "The model's answer style for an absent object (shown to the judge)."
    )
    progress: bool = progress_param()
    rerun: RerunSpec = component(RerunSpec)

    def validate(self) -> None:
        check(bool(self.name.strip()) and "/" not in self.name and self.name not in (".", ".."),
              f"name must be a single folder name, got {self.name!r}")
        check(self.n_images >= 1, f"n_images must be >= 1, got {self.n_images}")
        check(self.min_objects >= 0, f"min_objects must be >= 0, got {self.min_objects}")
        check(self.max_objects >= self.min_objects,
              f"max_objects must be >= min_objects ({self.min_objects}), got {self.max_objects}")
        check(self.min_regions >= 0, f"min_regions must be >= 0, got {self.min_regions}")
        check(self.max_regions is None or self.max_regions >= self.min_regions,
              f"max_regions must be null or >= min_regions ({self.min_regions}), got {self.max_regions}")
        check(self.qa_max_new_tokens >= 1, f"qa_max_new_tokens must be >= 1, got {self.qa_max_new_tokens}")
        check(self.chunk_size >= 1, f"chunk_size must be >= 1, got {self.chunk_size}")
        check(self.rewrites >= 1, f"rewrites must be >= 1, got {self.rewrites}")
        check(self.qa_hallucinated >= 0, f"qa_hallucinated must be >= 0, got {self.qa_hallucinated}")
        check(self.qa_present >= 0, f"qa_present must be >= 0, got {self.qa_present}")
        for key in ("qa_yes_example", "qa_no_example"):
            check(bool(getattr(self, key).strip()), f"{key} must not be empty")
