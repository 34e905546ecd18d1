"""Parameters of the shapes world (``hadpo world``) and of notebook 00 (the world and its tiny base model).

The tiny model's SFT needs conditions a 7B model does not (:class:`ShapesSftOptions`); they are the options of
the world's own training objective (``shapes_sft``, registered like any objective), never keys of
:class:`hadpo.train.config.TrainConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hadpo.config import Params, check, component, param
from hadpo.specs import PromptSpec, RerunSpec
from hadpo.world.palette import MAX_PAIRS

#: Grid side: 3 × 3 cells, one column per object.
GRID = 3


@dataclass
class WorldConfig(Params):
    """Everything that determines a shapes world: the same config gives byte-identical files."""

    TITLE = "the world"

    seed: int = param(0, "Seed of every random choice: scenes, pixels, corpus (in notebook 00 also the model's "
                      "initialisation and the SFT data order).")
    num_pairs: int = param(6, f"Co-occurrence pairs of categories (2 categories each), 2 to {MAX_PAIRS}.")
    train_images: int = param(5000, "Training images (SFT corpus and preference mining).")
    pope_images: int = param(300, "POPE evaluation pool: COCO-style images with exactly 3 objects each.")
    shr_images: int = param(100, "SHR evaluation images (same scene distribution as training).")
    bench_images: int = param(100, "Benchmark images (CHAIR, AMBER, MMHal-Bench; same scene distribution as "
                              "training), in none of the VG or POPE files.")
    image_size: int = param(48, "Image side in pixels; the image is a 3 x 3 grid of square cells.")
    radius_min: int = param(6, "Smallest object radius in pixels (an object spans 2 * radius pixels).")
    radius_max: int = param(7, "Largest object radius in pixels; 2 * radius_max + 2 must fit in a cell.")
    background_level: int = param(40, "Background pixels are uniform noise in [0, background_level].")
    colour_jitter: int = param(12, "Object pixels vary by up to this much per channel around their colour.")
    pope_unpaired_share: float = param(
        0.4, "Share of POPE images whose three objects come from three different pairs, so that each has three "
        "absent co-occurrence partners to ask about (the rest are ordinary 3-object scenes, whose co-occurrences "
        "give POPE's adversarial sampling its statistics: it counts them over the POPE images themselves)."
    )
    p_partner: float = param(0.5, "Probability that an object's partner is also in the scene.")
    p_extra: float = param(0.4, "Probability of adding an object from an unused pair while a column is free.")
    p_hal: float = param(
        0.9, "Probability that a caption mentions an absent partner of a present object (when a column is free)."
    )
    hal_position: Literal["last", "column"] = param(
        "last", "Where a caption states its planted partner: 'last', after the objects that are there (object "
        "hallucinations come late in real LVLM descriptions), or 'column', in left-to-right order with them."
    )
    q_yes_adv: float = param(0.55, "Probability that a question about an absent partner is answered 'Yes'.")
    qa_per_image: int = param(4, "Existence questions per training image, cycling yes / random no / yes / adversarial.")
    p_main_instruction: float = param(
        0.7, "Share of captions asked with 'Describe this image in detail.'; the rest use the other three."
    )

    def validate(self) -> None:
        check(2 <= self.num_pairs <= MAX_PAIRS, f"num_pairs must be between 2 and {MAX_PAIRS}, got {self.num_pairs}")
        check(self.train_images >= 1, f"train_images must be at least 1, got {self.train_images}")
        check(self.pope_images >= 0, f"pope_images must be 0 or more, got {self.pope_images}")
        check(self.shr_images >= 0, f"shr_images must be 0 or more, got {self.shr_images}")
        check(self.bench_images >= 0, f"bench_images must be 0 or more, got {self.bench_images}")
        check(
            self.image_size % GRID == 0 and self.image_size >= 24,
            f"image_size must be a multiple of {GRID} and at least 24, got {self.image_size}",
        )
        check(
            1 <= self.radius_min <= self.radius_max,
            f"radius_min must be between 1 and radius_max, got {self.radius_min} (radius_max {self.radius_max})",
        )
        # One free pixel on each side keeps every object strictly inside its cell (and its patch).
        check(
            2 * self.radius_max + 2 <= self.cell,
            f"radius_max {self.radius_max} does not fit a {self.cell}-px cell (need 2 * radius_max + 2 <= cell)",
        )
        check(0 <= self.background_level <= 255, f"background_level must be in [0, 255], got {self.background_level}")
        check(0 <= self.colour_jitter <= 127, f"colour_jitter must be in [0, 127], got {self.colour_jitter}")
        for name in ("p_partner", "p_extra", "p_hal", "q_yes_adv", "p_main_instruction", "pope_unpaired_share"):
            value = getattr(self, name)
            check(0.0 <= value <= 1.0, f"{name} must be a probability in [0, 1], got {value}")
        check(self.qa_per_image >= 0, f"qa_per_image must be 0 or more, got {self.qa_per_image}")
        # POPE images are drawn by rejection until a scene has 3 objects; make sure one can occur.
        three_possible = self.p_extra > 0 and (self.p_partner > 0 or self.num_pairs >= 3)
        check(
            self.pope_images == 0 or three_possible,
            "pope_images > 0 needs scenes of 3 objects: set p_extra > 0 and either p_partner > 0 or num_pairs >= 3",
        )
        check(
            self.pope_images == 0 or self.pope_unpaired_share == 0 or (self.num_pairs >= 3 and self.p_extra > 0),
            "pope_unpaired_share > 0 needs 3 objects from 3 different pairs: num_pairs >= 3 and p_extra > 0",
        )

    @property
    def cell(self) -> int:
        """Side of one grid cell in pixels."""
        return self.image_size // GRID


@dataclass
class ShapesSftOptions(Params):
    """The tiny model's SFT conditions, not part of HA-DPO (the options of the ``shapes_sft`` objective)."""

    TITLE = "the tiny model's SFT conditions (not part of HA-DPO)"

    decision_token_weight: float = param(
        30.0, "Loss weight of the Yes/No token of existence questions: without it a model this small never learns "
        "existence QA.")
    description_weight: float = param(
        3.0, "Loss weight of every description token, so the weighted Yes/No tokens do not drown the captions.")
    vision_pretrain_steps: int = param(
        600, "Steps of per-patch classification (category and grid cell) standing in for CLIP pretraining, after "
        "which the vision tower is frozen (0: none).")
    vision_pretrain_lr: float = param(3e-3, "Learning rate of the vision pretraining stand-in.")

    def validate(self) -> None:
        check(self.decision_token_weight > 0 and self.description_weight > 0,
              "decision_token_weight and description_weight must be positive")
        check(self.vision_pretrain_steps >= 0, f"vision_pretrain_steps must be >= 0, got {self.vision_pretrain_steps}")


@dataclass
class BaseModelConfig(Params):
    """Parameters of notebook 00: the world, the tiny model's SFT, and the behaviour check."""

    data_root: str = param("runs/demo/data", "Where the world is written (the HA-DPO data layout).", kind="path",
                           section="where")
    model_dir: str = param("runs/demo/base", "Folder of the base model's runs: untrained/, sft/ (model/), eval/.",
                           kind="path")
    world: WorldConfig = component(WorldConfig)
    prompt_spec: PromptSpec = component(PromptSpec, defaults={"template": "plain"})
    sft_epochs: float = param(3.0, "SFT epochs over the world's conversations.", section="SFT")
    sft_max_steps: int | None = param(None, "Stop SFT after N steps (quick runs).")
    sft_batch_size: int = param(32, "SFT batch size.")
    sft_learning_rate: float = param(2e-3, "SFT peak learning rate (cosine, 1/30 warmup).")
    sft_options: ShapesSftOptions = component(ShapesSftOptions)
    eval_num_beams: int = param(5, "Beams for the SHR-style descriptions (SHR's default decoding).",
                                section="behaviour check")
    eval_batch_size: int = param(64, "Batch size of the evaluation passes.")
    eval_limit: int | None = param(None, "Evaluate on the first N questions / images only (quick runs).")
    rerun: RerunSpec = component(RerunSpec)

    def validate(self) -> None:
        w = self.world
        check(w.train_images > 0 and w.pope_images > 0 and w.shr_images > 0,
              "train_images, pope_images and shr_images must be > 0")

    @property
    def base_model(self) -> str:
        """The trained base model folder (loadable like llava-hf/llava-1.5-7b-hf)."""
        return str(Path(self.model_dir) / "sft" / "model")
