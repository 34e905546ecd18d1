"""Parameters of an SHR evaluation (notebook 04, ``hadpo shr``, ``params/*/04_shr.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hadpo.config import Params, check, component, param
from hadpo.eval.shr.prompt import DEFAULT_MAX_PROMPT_CHARS
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
class ShrConfig(Params):
    """One SHR evaluation: describe the SHR images, judge every sentence, compute the metrics."""

    data_root: str = data_root_param(section="data")
    limit: int | None = param(None, "Evaluate only the first N SHR images (smoke runs).")
    responses: str | None = param(
        None, "A {image_id: description} JSON to judge instead of generating (the original's json_eval.py).",
        kind="path")
    run_dir: str = param("runs/shr", "Output folder: descriptions.jsonl, judgement.json, metrics.json, judge cache.",
                         kind="path")
    model_spec: ModelSpec = component(ModelSpec)
    prompt_spec: PromptSpec = component(PromptSpec)
    decoding: DecodingSpec = component(DecodingSpec)
    judge_spec: JudgeSpec = component(JudgeSpec)
    num_runs: int = param(1, "Independent judge runs averaged into mean_hal_ratio (>= 3 recommended).")
    max_prompt_chars: int = param(DEFAULT_MAX_PROMPT_CHARS, "Longer judge prompts are skipped and counted.")
    judge_prompt: str | None = param(
        None, "Judge prompt template file, used verbatim, with slots {regions} {facts} {sentences} (or three {} in "
        "that order); None: the kit's own prompt.", kind="path", section="SHR protocol")
    judge_format: Literal["kit", "original"] = param(
        "kit", "How the slots are written: kit ([0.10, ...] boxes, (none), sentences with their period) or original "
        "([0.1, ...] boxes, as stored, sentences without period).")
    counting: Literal["kit", "original"] = param(
        "kit", "kit: only fully judged images count, unreadable replies asked again; original: the original code's "
        "reading and counting (unjudged images stay in num_images, unknown labels discarded per sentence).")
    max_unjudged: float = param(
        0.0, "Largest share (0-1) of images that may stay unjudged in a judge run; above it the run fails, with the "
        "metrics written marked incomplete.")
    progress: bool = progress_param()
    rerun: RerunSpec = component(RerunSpec)

    def validate(self) -> None:
        check(self.limit is None or self.limit >= 1, f"parameter 'limit' must be >= 1 or None, got {self.limit}")
        check(self.num_runs >= 1, f"parameter 'num_runs' must be >= 1, got {self.num_runs}")
        check(self.max_prompt_chars >= 1, f"parameter 'max_prompt_chars' must be >= 1, got {self.max_prompt_chars}")
        check(0.0 <= self.max_unjudged <= 1.0, f"parameter 'max_unjudged' must be in [0, 1], got {self.max_unjudged}")
