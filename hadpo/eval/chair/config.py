"""Parameters of a CHAIR evaluation (notebook 05, ``hadpo chair``, ``params/*/05_chair.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass

from hadpo.config import Params, check, component, param
from hadpo.specs import DecodingSpec, ModelSpec, PromptSpec, RerunSpec, data_root_param, progress_param

#: The instruction CHAIR is usually run with.
CHAIR_INSTRUCTION = "Please describe this image in detail."


@dataclass
class ChairConfig(Params):
    """One CHAIR evaluation: sample COCO images, describe them, count the objects named that are not there."""

    data_root: str = data_root_param(section="data")
    instances: str | None = param(None, "COCO instances file; None: coco2014/annotations/instances_val2014.json under "
                                  "data_root.", kind="path")
    captions: str | None = param(None, "COCO captions file (its mentions join the ground truth); None: "
                                 "coco2014/annotations/captions_val2014.json under data_root.", kind="path")
    images_dir: str | None = param(None, "Image folder of the instances' file names; None: coco2014/val2014 under "
                                   "data_root.", kind="path")
    synonyms: str | None = param(None, "Synonym table file ('category: word, phrase, ...' per line); None: the kit's "
                                 "table for the 80 COCO categories.", kind="path")
    num_images: int | None = param(500, "Images sampled from the instances file (None: all of them).")
    image_seed: int = param(0, "Seed of the image sample (recorded with the results).")
    responses: str | None = param(None, "A {image_id: description} JSON to score instead of generating.",
                                  kind="path")
    model_spec: ModelSpec = component(ModelSpec)
    prompt_spec: PromptSpec = component(PromptSpec)
    instruction: str = param(CHAIR_INSTRUCTION, "What the model is asked about each image.")
    decoding: DecodingSpec = component(DecodingSpec, defaults={"num_beams": 1, "batch_size": 16})
    run_dir: str = param("runs/chair", "Output folder: descriptions.jsonl, scores.jsonl, metrics.json.",
                         kind="path", section="output")
    progress: bool = progress_param()
    rerun: RerunSpec = component(RerunSpec)

    def validate(self) -> None:
        check(self.num_images is None or self.num_images >= 1,
              f"parameter 'num_images' must be >= 1 or None, got {self.num_images}")
        check(bool(self.instruction.strip()), "parameter 'instruction' must not be empty")
