"""Parameters of POPE: building the question sets, and answering + scoring them.

The field names are the keys of ``params/*.yaml`` files and of notebook 03's parameters cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hadpo.config import Params, check, param
from hadpo.data.layout import POPE_SETS, canonical_pope_set
from hadpo.errors import ParamsError


@dataclass
class PopeBuildConfig(Params):
    """How to build the three POPE question files from COCO-style instances."""

    data_root: str = param("data", "Data root (DataLayout); the files go to POPE/output/coco/ under it.")
    instances: str | None = param(
        None, "COCO instances file; default: coco2014/annotations/instances_val2014.json under data_root."
    )
    out_dir: str | None = param(None, "Folder for the question files; default: DataLayout(data_root).pope_dir.")
    n_images: int = param(500, "Images drawn (POPE: 500, giving 3000 questions per set).")
    sample_num: int = param(3, "Present objects asked per image, each followed by one absent object (POPE: 3).")
    seed: int = param(0, "Seed of the image draw and of random negatives; same seed, identical files.")
    template: str = param("Is there a {} in the image?", "Question template; 'a' becomes 'an' before a vowel.")

    def __post_init__(self) -> None:
        check(self.n_images >= 1, f"n_images must be >= 1, got {self.n_images}")
        check(self.sample_num >= 1, f"sample_num must be >= 1, got {self.sample_num}")
        check(self.template.count("{}") == 1, f"template must contain one '{{}}', got {self.template!r}")


@dataclass
class PopeConfig(Params):
    """One POPE evaluation: which questions, which model, how to prompt and decode, how to score."""

    # ---- questions -------------------------------------------------------------------------------------------
    set: str = param("random", "POPE set: random, popular, adv/adversarial, or all (the three, one model load).")
    data_root: str = param("data", "Data root (DataLayout): question files and COCO val2014 images under it.")
    questions: str | None = param(None, "Question file overriding the layout's (only with a single set).")
    images_dir: str | None = param(None, "Image folder; default: coco2014/val2014 under data_root.")
    limit: int | None = param(None, "Answer and score only the first N questions of each set (smoke runs).")
    # ---- model -----------------------------------------------------------------------------------------------
    model: str = param("llava-hf/llava-1.5-7b-hf", "Base model: a Hub id or a local folder.")
    adapter: str | None = param(None, "LoRA adapter folder (with the projector when trained); None: base only.")
    merge_adapter: bool = param(True, "Merge the adapter into the weights before decoding (faster, same answers).")
    dtype: Literal["float32", "bfloat16", "float16"] = param("float32", "Weights and activations dtype.")
    device: str = param("auto", "cpu, cuda, cuda:N or auto (cuda:LOCAL_RANK when available, else cpu).")
    attn_implementation: str | None = param(None, "Attention kernel (sdpa, eager, flash_attention_2); None: default.")
    # ---- prompting and decoding ------------------------------------------------------------------------------
    prompt_variant: Literal["raw", "short"] = param(
        "raw", "raw: the question verbatim (HA-DPO's protocol); short: append LLaVA's single-word suffix."
    )
    template: Literal["llava_v1", "vicuna_v1", "plain"] = param(
        "llava_v1", "Conversation template (llava_v1: the original's evaluation prompt, 'a curious human')."
    )
    image_mode: Literal["pad", "crop"] = param(
        "pad", "pad: square with the mean colour first (LLaVA-1.5); crop: the processor's centre crop only."
    )
    max_new_tokens: int = param(512, "Generation cap (the original's 512); decoding stops when every row hit EOS.")
    batch_size: int = param(16, "Questions per generate call; each image is encoded once whatever the batching.")
    # ---- output and scoring ----------------------------------------------------------------------------------
    run_dir: str = param("runs/pope", "Run folder: <set>/answers.jsonl, protocol.json, metrics.json; tables.")
    rule: Literal["pope", "strict"] = param("pope", "pope: POPE's parser; strict: first word must be yes/no.")
    progress: bool = param(True, "Show a progress bar (rank 0 only).")

    def __post_init__(self) -> None:
        if self.set != "all":
            try:
                canonical_pope_set(self.set)
            except ValueError as exc:
                raise ParamsError(f"parameter 'set': {exc} (or 'all')") from None
        check(self.questions is None or self.set != "all", "parameter 'questions' needs a single set, not 'all'")
        check(self.batch_size >= 1, f"parameter 'batch_size' must be >= 1, got {self.batch_size}")
        check(self.max_new_tokens >= 1, f"parameter 'max_new_tokens' must be >= 1, got {self.max_new_tokens}")
        check(self.limit is None or self.limit >= 1, f"parameter 'limit' must be >= 1 or null, got {self.limit}")

    @property
    def sets(self) -> tuple[str, ...]:
        """The canonical set names this run evaluates, in POPE's order."""
        return POPE_SETS if self.set == "all" else (canonical_pope_set(self.set),)
