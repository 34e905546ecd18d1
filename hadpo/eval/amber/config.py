"""Parameters of an AMBER evaluation (notebook 06, ``hadpo amber``, ``params/*/06_amber.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hadpo.config import Params, check, component, param
from hadpo.specs import DecodingSpec, ModelSpec, PromptSpec, RerunSpec, data_root_param, progress_param


@dataclass
class AmberConfig(Params):
    """One AMBER evaluation: describe AMBER's images, answer its yes/no questions, score both without an LLM."""

    data_root: str = data_root_param(section="data")
    evaluation: Literal["all", "generative", "discriminative"] = param(
        "all", "Which of AMBER's tasks: all, generative (descriptions) or discriminative (yes/no questions); the "
        "AMBER score needs all.")
    queries: str | None = param(
        None, "Query file; None: the release's for the evaluation (AMBER/data/query/query_<evaluation>.json under "
        "data_root). Its queries of the evaluation's kind are asked.", kind="path")
    images_dir: str | None = param(None, "Folder of the queries' images; None: AMBER/image under data_root.",
                                   kind="path")
    limit: int | None = param(None, "Only the first N queries of each kind (descriptions, and each discriminative "
                              "dimension): smoke runs.")
    responses: str | None = param(
        None, "Answers made elsewhere, in the reference's input format [{id, response}], to score instead of "
        "generating.", kind="path")
    model_spec: ModelSpec = component(ModelSpec)
    prompt_spec: PromptSpec = component(PromptSpec)
    # The descriptions: greedy, as AMBER's reported models were run, up to 512 new tokens.
    decoding: DecodingSpec = component(DecodingSpec, defaults={"num_beams": 1, "batch_size": 16})
    prompt_variant: Literal["raw", "short"] = param(
        "raw", "How a yes/no question is put: raw (verbatim, as POPE's protocol) or short (LLaVA's single-word "
        "suffix on a new line).", section="yes/no answers")
    answer_max_new_tokens: int = param(16, "Longest yes/no answer in tokens (greedy, each image encoded once).")
    rule: Literal["pope", "exact"] = param(
        "pope", "How a yes/no answer is read: pope (no / not in the first sentence: no, else yes) or exact (the "
        "reference's: exactly 'Yes' or 'No', anything else wrong).")
    run_dir: str = param("runs/amber", "Output folder: generative.jsonl, discriminative/answers.jsonl, scores.jsonl, "
                         "metrics.json.", kind="path", section="output")
    progress: bool = progress_param()
    rerun: RerunSpec = component(RerunSpec)

    def validate(self) -> None:
        check(self.limit is None or self.limit >= 1, f"parameter 'limit' must be >= 1 or None, got {self.limit}")
        check(self.answer_max_new_tokens >= 1,
              f"parameter 'answer_max_new_tokens' must be >= 1, got {self.answer_max_new_tokens}")
