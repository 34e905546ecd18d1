"""Parameters of an SHR evaluation (the keys of ``params/*.yaml`` files and of notebook 04's parameters cell)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hadpo.config import Params, check, param
from hadpo.eval.shr.prompt import DEFAULT_MAX_PROMPT_CHARS


@dataclass
class ShrConfig(Params):
    """One SHR evaluation: describe the SHR images, judge every sentence, compute the metrics."""

    # ---- data ------------------------------------------------------------------------------------------------
    data_root: str = param("data", "Data root (DataLayout): shr/ files, VG image_data / region descriptions, images.")
    limit: int | None = param(None, "Evaluate only the first N SHR images (smoke runs).")
    responses: str | None = param(
        None, "A {image_id: description} JSON to judge instead of generating (the original's json_eval.py)."
    )
    run_dir: str = param("runs/shr", "Output folder: descriptions.jsonl, judgement.json, metrics.json, judge cache.")
    # ---- model -----------------------------------------------------------------------------------------------
    model: str = param("llava-hf/llava-1.5-7b-hf", "Base model: a Hub id or a local folder.")
    adapter: str | None = param(None, "LoRA adapter folder (with the projector when trained); None: base only.")
    merge_adapter: bool = param(True, "Merge the adapter into the weights before decoding (faster, same text).")
    dtype: Literal["float32", "bfloat16", "float16"] = param("float32", "Weights and activations dtype.")
    device: str = param("auto", "cpu, cuda, cuda:N or auto (cuda when available, else cpu).")
    attn_implementation: str | None = param(None, "Attention kernel (sdpa, eager, ...); None: the default.")
    # ---- generation ------------------------------------------------------------------------------------------
    num_beams: int = param(5, "Beam search width (the original: 5).")
    max_new_tokens: int = param(512, "Longest description in tokens (the original: 512).")
    batch_size: int = param(8, "Images per generate call.")
    batch_beams: bool = param(True, "Batch beam search too (false: one image per call when beams > 1).")
    template: Literal["llava_v1", "vicuna_v1", "plain"] = param(
        "llava_v1", "Conversation template of the description prompt (llava_v1: the original's evaluation prompt)."
    )
    image_mode: Literal["pad", "crop"] = param("pad", "pad: square with the mean colour first (LLaVA-1.5); crop.")
    # ---- judge -----------------------------------------------------------------------------------------------
    judge: Literal["openai", "oracle"] = param(
        "openai", "openai: any OpenAI-compatible server; oracle: the shapes world's annotation judge (offline)."
    )
    base_url: str = param("https://api.openai.com/v1", "Judge server root ending in /v1 (OpenAI, vLLM, Ollama...).")
    judge_model: str = param("gpt-4-0613", "Judge model id; pin a dated snapshot.")
    api_key_env: str = param("OPENAI_API_KEY", "Environment variable holding the judge API key ('' for none).")
    temperature: float = param(0.0, "Judge temperature (the original: 0.7, one run).")
    max_tokens: int = param(800, "Judge reply limit in tokens (the original: 800).")
    seed: int | None = param(0, "Judge seed; run k uses seed + k - 1 (null: send none).")
    timeout: float = param(120.0, "Seconds to wait for one judge reply before retrying.")
    max_retries: int = param(6, "Retries per judge call on 429 / 5xx / timeouts / malformed replies.")
    max_concurrency: int = param(16, "Judge requests in flight.")
    judge_cache: str | None = param(None, "Reply cache (SQLite); default <run_dir>/judge_cache.sqlite.")
    num_runs: int = param(1, "Independent judge runs averaged into mean_hal_ratio (>= 3 recommended).")
    max_judge_attempts: int = param(3, "Asks per image and run before an unreadable reply counts as unjudged.")
    max_prompt_chars: int = param(DEFAULT_MAX_PROMPT_CHARS, "Longer judge prompts are skipped and counted.")
    progress: bool = param(True, "Show progress bars.")

    def __post_init__(self) -> None:
        check(self.limit is None or self.limit >= 1, f"limit must be >= 1 or null, got {self.limit}")
        check(self.num_beams >= 1, f"num_beams must be >= 1, got {self.num_beams}")
        check(self.max_new_tokens >= 1, f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        check(self.num_runs >= 1, f"num_runs must be >= 1, got {self.num_runs}")
        check(self.max_judge_attempts >= 1, f"max_judge_attempts must be >= 1, got {self.max_judge_attempts}")
        check(self.max_prompt_chars >= 1, f"max_prompt_chars must be >= 1, got {self.max_prompt_chars}")
        check(self.max_concurrency >= 1, f"max_concurrency must be >= 1, got {self.max_concurrency}")
        check(self.temperature >= 0, f"temperature must be >= 0, got {self.temperature}")
        check(self.max_tokens >= 1, f"max_tokens must be >= 1, got {self.max_tokens}")
        check(self.timeout > 0, f"timeout must be > 0, got {self.timeout}")
        check(self.max_retries >= 0, f"max_retries must be >= 0, got {self.max_retries}")
        check(self.base_url.startswith(("http://", "https://")), f"base_url must be an http(s) URL: {self.base_url!r}")
