"""Parameters of notebook 01 (preference data): read the released HA-DPO data, or mine new pairs.

The field names are the keys of ``params/*/01_data.yaml`` files and of notebook 01's parameters cell. Defaults
target the real setting (LLaVA-1.5-7B, Visual Genome, an OpenAI-compatible judge); a shapes-world params file
sets ``source: mine``, ``judge: oracle``, the tiny model and annotation thresholds that fit 1-3 object scenes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hadpo.config import Params, check, param


@dataclass
class DataConfig(Params):
    """Where preference data come from and, when mined, how (see :mod:`hadpo.mining`)."""

    # ---- source and locations --------------------------------------------------------------------------------
    source: Literal["released", "mine"] = param(
        "released", "released: check and summarise <data_root>/hadpo/<name>/; mine: build that folder from the "
        "model's own descriptions."
    )
    data_root: str = param("data", "Data root (DataLayout): VG files and images, POPE and SHR files, hadpo/<name>/.")
    name: str = param("llava-v1.5", "Preference data folder under <data_root>/hadpo/ (read, or written when mining).")
    run_dir: str = param("runs/data", "Run folder: every step's output, data_stats.json, judge cache.")
    exclude_leaks: bool = param(True, "Drop training images that are POPE or SHR evaluation images (always counted).")
    overwrite_released: bool = param(
        False, "Allow mining to replace desc/pope files in <data_root>/hadpo/<name>/ that the miner did not write."
    )
    # ---- image selection -------------------------------------------------------------------------------------
    n_images: int = param(2000, "Images to mine (the original: about 2K), drawn at random among eligible ones.")
    min_objects: int = param(3, "Fewest annotated objects (VG objects.json) an image needs to be eligible.")
    max_objects: int = param(40, "Most annotated objects an eligible image may have (crowded scenes are skipped).")
    min_regions: int = param(5, "Fewest region descriptions with a phrase an eligible image needs.")
    max_regions: int | None = param(None, "Most region descriptions an eligible image may have (null: no limit).")
    seed: int = param(0, "Seed of the image draw (and of the judge requests).")
    # ---- model -----------------------------------------------------------------------------------------------
    model: str = param("llava-hf/llava-1.5-7b-hf", "Model whose own outputs are mined: a Hub id or a local folder.")
    adapter: str | None = param(None, "LoRA adapter folder on top of the model (mine from a trained policy).")
    merge_adapter: bool = param(True, "Merge the adapter into the weights before decoding (faster, same text).")
    dtype: Literal["float32", "bfloat16", "float16"] = param("float32", "Weights and activations dtype.")
    device: str = param("auto", "cpu, cuda, cuda:N or auto (cuda when available, else cpu).")
    attn_implementation: str | None = param(None, "Attention kernel (sdpa, eager, ...); None: the default.")
    template: Literal["llava_v1", "vicuna_v1", "plain"] = param(
        "llava_v1", "Conversation template of the describe and QA prompts (llava_v1: as SHR and POPE ask)."
    )
    image_mode: Literal["pad", "crop"] = param("pad", "pad: square with the mean colour first (LLaVA-1.5); crop.")
    # ---- describe decoding -----------------------------------------------------------------------------------
    num_beams: int = param(5, "Beams of the description search (5: SHR's protocol, the outputs SHR measures).")
    do_sample: bool = param(False, "Sample descriptions instead of searching.")
    temperature: float = param(1.0, "Description sampling temperature (only with do_sample).")
    top_p: float = param(1.0, "Description nucleus mass (only with do_sample).")
    max_new_tokens: int = param(512, "Longest description in tokens.")
    batch_size: int = param(8, "Images per describe call, and questions per QA answering call.")
    batch_beams: bool = param(True, "Batch beam search too (false: one image per call when num_beams > 1).")
    qa_max_new_tokens: int = param(64, "Longest answer when the model answers the QA questions (greedy).")
    # ---- judge (detect + correct, rewrite, QA conversion) ----------------------------------------------------
    judge: Literal["openai", "oracle"] = param(
        "openai", "openai: any OpenAI-compatible server; oracle: the shapes world's annotations, offline."
    )
    base_url: str = param("https://api.openai.com/v1", "Judge server root ending in /v1 (OpenAI, vLLM, Ollama...).")
    judge_model: str = param("gpt-4-0613", "Judge model id; pin a dated snapshot.")
    api_key_env: str = param("OPENAI_API_KEY", "Environment variable holding the judge API key ('' for none).")
    judge_temperature: float = param(0.0, "Judge sampling temperature.")
    max_tokens: int = param(2000, "Judge reply limit in tokens (a rewrite reply holds 2 x rewrites descriptions).")
    timeout: float = param(120.0, "Seconds to wait for one judge reply before retrying.")
    max_retries: int = param(6, "Retries per judge call on 429 / 5xx / timeouts / malformed replies.")
    max_concurrency: int = param(16, "Judge requests in flight.")
    judge_cache: str | None = param(None, "Reply cache (SQLite); default <run_dir>/judge_cache.sqlite.")
    max_attempts: int = param(3, "Asks per image and step before an unreadable reply skips the image (counted).")
    chunk_size: int = param(64, "Images per judge batch; each batch's results are saved before the next starts.")
    # ---- rewriting and QA conversion -------------------------------------------------------------------------
    rewrites: int = param(3, "Style-consistent rewrites per image: rewrite i of chosen and rejected share style i.")
    qa_hallucinated: int = param(3, "Most questions per image about hallucinated (absent) objects.")
    qa_present: int = param(2, "Most questions per image about objects that are in the image.")
    qa_yes_example: str = param(
        "Yes, there is a dog in the image.", "The model's answer style for a present object (shown to the judge)."
    )
    qa_no_example: str = param(
        "No, there is no dog in the image.", "The model's answer style for an absent object (shown to the judge)."
    )
    progress: bool = param(True, "Show progress bars.")

    def __post_init__(self) -> None:
        check(bool(self.name.strip()) and "/" not in self.name and self.name not in (".", ".."),
              f"name must be a single folder name, got {self.name!r}")
        check(self.n_images >= 1, f"n_images must be >= 1, got {self.n_images}")
        check(self.min_objects >= 0, f"min_objects must be >= 0, got {self.min_objects}")
        check(self.max_objects >= self.min_objects,
              f"max_objects must be >= min_objects ({self.min_objects}), got {self.max_objects}")
        check(self.min_regions >= 0, f"min_regions must be >= 0, got {self.min_regions}")
        check(self.max_regions is None or self.max_regions >= self.min_regions,
              f"max_regions must be null or >= min_regions ({self.min_regions}), got {self.max_regions}")
        check(self.num_beams >= 1, f"num_beams must be >= 1, got {self.num_beams}")
        check(self.temperature > 0, f"temperature must be > 0, got {self.temperature}")
        check(0 < self.top_p <= 1, f"top_p must be in (0, 1], got {self.top_p}")
        check(self.max_new_tokens >= 1, f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        check(self.qa_max_new_tokens >= 1, f"qa_max_new_tokens must be >= 1, got {self.qa_max_new_tokens}")
        check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        check(self.base_url.startswith(("http://", "https://")), f"base_url must be an http(s) URL: {self.base_url!r}")
        check(self.judge_temperature >= 0, f"judge_temperature must be >= 0, got {self.judge_temperature}")
        check(self.max_tokens >= 1, f"max_tokens must be >= 1, got {self.max_tokens}")
        check(self.timeout > 0, f"timeout must be > 0, got {self.timeout}")
        check(self.max_retries >= 0, f"max_retries must be >= 0, got {self.max_retries}")
        check(self.max_concurrency >= 1, f"max_concurrency must be >= 1, got {self.max_concurrency}")
        check(self.max_attempts >= 1, f"max_attempts must be >= 1, got {self.max_attempts}")
        check(self.chunk_size >= 1, f"chunk_size must be >= 1, got {self.chunk_size}")
        check(self.rewrites >= 1, f"rewrites must be >= 1, got {self.rewrites}")
        check(self.qa_hallucinated >= 0, f"qa_hallucinated must be >= 0, got {self.qa_hallucinated}")
        check(self.qa_present >= 0, f"qa_present must be >= 0, got {self.qa_present}")
        for key in ("qa_yes_example", "qa_no_example"):
            check(bool(getattr(self, key).strip()), f"{key} must not be empty")
