"""Parameters of an SHR evaluation (notebook 04, ``hadpo shr``, ``params/*/04_shr.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass

from hadpo.config import Params, check, component, param
from hadpo.eval.shr.prompt import DEFAULT_MAX_PROMPT_CHARS
from hadpo.specs import DecodingSpec, JudgeSpec, ModelSpec, PromptSpec, data_root_param, progress_param


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
    progress: bool = progress_param()

    def validate(self) -> None:
        check(self.limit is None or self.limit >= 1, f"parameter 'limit' must be >= 1 or None, got {self.limit}")
        check(self.num_runs >= 1, f"parameter 'num_runs' must be >= 1, got {self.num_runs}")
        check(self.max_prompt_chars >= 1, f"parameter 'max_prompt_chars' must be >= 1, got {self.max_prompt_chars}")
