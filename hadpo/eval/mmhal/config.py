"""Parameters of an MMHal-Bench evaluation (notebook 07, ``hadpo mmhal``, ``params/*/07_mmhal.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass

from hadpo.config import Params, check, component, param
from hadpo.specs import DecodingSpec, JudgeSpec, ModelSpec, PromptSpec, RerunSpec, data_root_param, progress_param


@dataclass
class MmhalConfig(Params):
    """One MMHal-Bench evaluation: answer the 96 questions, have a judge rate each answer 0–6, score."""

    data_root: str = data_root_param(section="data")
    questions: str | None = param(None, "Question file; None: MMHal-Bench/response_template.json under data_root.",
                                  kind="path")
    images_dir: str | None = param(None, "Image folder; None: MMHal-Bench/images under data_root (each image named by "
                                   "the last component of its image_src).", kind="path")
    limit: int | None = param(None, "Only the first N questions (smoke runs).")
    responses: str | None = param(None, "The question file filled with model_answer (as the release's evaluation "
                                  "reads it), to judge instead of generating.", kind="path")
    model_spec: ModelSpec = component(ModelSpec)
    prompt_spec: PromptSpec = component(PromptSpec)
    decoding: DecodingSpec = component(DecodingSpec, defaults={"num_beams": 1, "batch_size": 16})
    judge_spec: JudgeSpec = component(JudgeSpec)
    judge_prompt: str | None = param(
        None, "Judge prompt template file, used verbatim, with slots {image_content} {question} {gt_answer} {answer} "
        "(or four {} in that order); None: the kit's own prompt.", kind="path", section="MMHal-Bench protocol")
    max_unjudged: float = param(
        0.0, "Largest share (0-1) of questions that may stay unjudged; above it the run fails, with the metrics "
        "written marked incomplete.")
    run_dir: str = param("runs/mmhal", "Output folder: answers.jsonl, judgement.json, scores.jsonl, metrics.json, "
                         "judge cache.", kind="path", section="output")
    progress: bool = progress_param()
    rerun: RerunSpec = component(RerunSpec)

    def validate(self) -> None:
        check(self.limit is None or self.limit >= 1, f"parameter 'limit' must be >= 1 or None, got {self.limit}")
        check(0.0 <= self.max_unjudged <= 1.0, f"parameter 'max_unjudged' must be in [0, 1], got {self.max_unjudged}")
