"""Parameters of POPE: building the question sets, and answering + scoring them.

The field names are the keys of ``params/*.yaml`` files and of notebook 03's parameters cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hadpo.config import Params, check, component, param
from hadpo.data.layout import POPE_SETS, canonical_pope_set
from hadpo.errors import ParamsError
from hadpo.specs import DecodingSpec, ModelSpec, PromptSpec, RerunSpec, data_root_param, progress_param


@dataclass
class PopeBuildConfig(Params):
    """How to build the three POPE question files from COCO-style instances."""

    data_root: str = data_root_param()
    instances: str | None = param(
        None, "COCO instances file; default: coco2014/annotations/instances_val2014.json under data_root.",
        kind="path")
    out_dir: str | None = param(None, "Folder for the question files; default: POPE/output/coco/ under data_root.",
                                kind="path")
    n_images: int = param(500, "Images drawn (POPE: 500, giving 3000 questions per set).")
    sample_num: int = param(3, "Present objects asked per image, each followed by one absent object (POPE: 3).")
    seed: int = param(0, "Seed of the image draw and of random negatives; same seed, identical files.")
    question_template: str = param("Is there a {} in the image?",
                                   "Question template; 'a' becomes 'an' before a vowel.")

    def validate(self) -> None:
        check(self.n_images >= 1, f"n_images must be >= 1, got {self.n_images}")
        check(self.sample_num >= 1, f"sample_num must be >= 1, got {self.sample_num}")
        check(self.question_template.count("{}") == 1,
              f"parameter 'question_template' must contain one '{{}}', got {self.question_template!r}")


@dataclass
class PopeConfig(Params):
    """One POPE evaluation: which questions, which model, how to prompt and decode, how to score."""

    set: str = param("random", "POPE set: random, popular, adv/adversarial, or all (the three, one model load).",
                     section="questions")
    data_root: str = data_root_param()
    questions: str | None = param(None, "Question file overriding the layout's (only with a single set).",
                                  kind="path")
    images_dir: str | None = param(None, "Image folder; default: coco2014/val2014 under data_root.", kind="path")
    limit: int | None = param(None, "Answer and score only the first N questions of each set (smoke runs).")
    model_spec: ModelSpec = component(ModelSpec)
    prompt_variant: Literal["raw", "short"] = param(
        "raw", "raw: the question verbatim (HA-DPO's protocol); short: append LLaVA's single-word suffix.",
        section="prompt")
    prompt_spec: PromptSpec = component(PromptSpec)
    # POPE's protocol decodes greedily, one answer per question.
    decoding: DecodingSpec = component(
        DecodingSpec, defaults={"batch_size": 16},
        fixed={"num_beams": 1, "batch_beams": True, "do_sample": False, "sample_temperature": 1.0,
               "sample_top_p": 1.0, "sample_seed": 0})
    run_dir: str = param("runs/pope", "Run folder: <set>/answers.jsonl, protocol.json, metrics.json; tables.",
                         kind="path", section="output and scoring")
    rule: Literal["pope", "strict"] = param("pope", "pope: POPE's parser; strict: first word must be yes/no.")
    progress: bool = progress_param()
    rerun: RerunSpec = component(RerunSpec)

    def validate(self) -> None:
        if self.set != "all":
            try:
                canonical_pope_set(self.set)
            except ValueError as exc:
                raise ParamsError(f"parameter 'set': {exc} (or 'all')") from None
        check(self.questions is None or self.set != "all", "parameter 'questions' needs a single set, not 'all'")
        check(self.limit is None or self.limit >= 1, f"parameter 'limit' must be >= 1 or None, got {self.limit}")

    @property
    def sets(self) -> tuple[str, ...]:
        """The canonical set names this run evaluates, in POPE's order."""
        return POPE_SETS if self.set == "all" else (canonical_pope_set(self.set),)
