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
        "all", "Which of AMBER's tasks: all, generative (descriptions) or discriminative (yes/no questions).")
    queries: str | None = param(None, "Query file; None: AMBER/data/query/query_all.json under data_root (the "
                                "evaluation chooses among its queries).", kind="path")
    images_dir: str | None = param(None, "Folder of the queries' images; None: AMBER/image under data_root.",
                                   kind="path")
    limit: int | None = param(None, "Only the first N queries of each kind (generative, and each discriminative "
                              "dimension): smoke runs.")
    responses: str | None = param(None, "Answers made elsewhere, in AMBER's inference format [{id, response}], to "
                                  "score instead of generating.", kind="path")
    model_spec: ModelSpec = component(ModelSpec)
    prompt_spec: PromptSpec = component(PromptSpec)
    # The descriptions; the yes/no answers are greedy, each image encoded once (POPE's answering).
    decoding: DecodingSpec = component(DecodingSpec, defaults={"num_beams": 1, "batch_size": 16})
    answer_max_new_tokens: int = param(16, "Longest yes/no answer in tokens.")
    rule: Literal["pope", "exact"] = param(
        "pope", "How a yes/no answer is read: pope (no / not in the first sentence → no, else yes) or exact (the "
        "reference's: exactly 'Yes' or 'No', anything else wrong).", section="scoring")
    run_dir: str = param("runs/amber", "Output folder: generative.jsonl, discriminative/answers.jsonl, scores.jsonl, "
                         "metrics.json.", kind="path", section="output")
    progress: bool = progress_param()
    rerun: RerunSpec = component(RerunSpec)

    def validate(self) -> None:
        check(self.limit is None or self.limit >= 1, f"parameter 'limit' must be >= 1 or None, got {self.limit}")
        check(self.answer_max_new_tokens >= 1,
              f"parameter 'answer_max_new_tokens' must be >= 1, got {self.answer_max_new_tokens}")
