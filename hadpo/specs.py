"""The shared components of the stage configs, each declared once: model, prompt, decoding, judge and launch.

A stage composes the ones it needs with :func:`hadpo.config.component` (changing defaults where its protocol
differs, fixing what its protocol does not let a user change); their keys stay flat in params files and
parameters cells. :func:`hadpo.models.loading.load_model` loads a model from a :class:`ModelSpec` and
:func:`hadpo.judge.build_judge` builds a judge from a :class:`JudgeSpec`; every stage calls those. Every stage
config also composes :class:`RerunSpec`, whose ``force`` key redoes the stage's finished work
(:func:`hadpo.rerun.set_aside` keeps the earlier results).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from hadpo.config import Params, check, param
from hadpo.plugins import JUDGES, check_registered

#: What an environment variable's name may look like (POSIX).
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

Dtype = Literal["float32", "bfloat16", "float16"]
Template = Literal["llava_v1", "vicuna_v1", "plain"]


def data_root_param(default: str = "data", *, section: str | None = None) -> Any:
    """The ``data_root`` key: where the inputs lie, in the original HA-DPO layout (``hadpo.data.layout``)."""
    return param(default, "Data root in the HA-DPO layout: VG/, coco2014/, POPE/output/coco/, shr/, hadpo/<name>/.",
                 kind="path", section=section)


def progress_param() -> Any:
    """The ``progress`` key: progress bars on or off."""
    return param(True, "Show progress bars.", section="output")


@dataclass
class ModelSpec(Params):
    """Which model: a base LLaVA-1.5 (folder or hub id), an optional LoRA adapter, and how it is loaded."""

    TITLE = "model"

    model: str = param("llava-hf/llava-1.5-7b-hf", "Base model: a local folder (as from_pretrained reads it) or a "
                       "hub id (org/name).", kind="model")
    adapter: str | None = param(None, "LoRA adapter folder on top of the model (with multi_modal_projector.safetensors "
                                "when the projector was trained); None: the base model alone.", kind="path")
    merge_adapter: bool = param(True, "Fold the adapter into the base weights (same outputs, faster decoding). When "
                                "training from an adapter: true trains a new LoRA on the merged model (also the "
                                "reference), false keeps training the adapter itself.")
    dtype: Dtype = param("float32", "Weights and activations dtype (LLaVA-1.5-7B: bfloat16).")
    device: str = param("auto", "cpu, cuda, cuda:N or auto (cuda when a GPU is visible, else cpu).")
    attn_implementation: str | None = param(
        None, "Attention kernel (sdpa, eager, flash_attention_2); None: the default (sdpa when training).")

    def results_cells(self, responses: str | None = None) -> dict[str, str]:
        """The first cells of a stage's results row: the model and its adapter, or the ``responses`` file that was
        scored instead of a model's output."""
        from hadpo.display import shown_value

        if responses is not None:
            return {"Responses": shown_value(responses)}
        return {"Model": shown_value(self.model), "Adapter": shown_value(self.adapter) if self.adapter else "none"}

    def validate(self) -> None:
        import re

        check(bool(self.model), "parameter 'model' must not be empty")
        check(bool(re.fullmatch(r"auto|cpu|cuda(?::\d+)?|mps|xpu(?::\d+)?|npu(?::\d+)?", self.device)),
              f"parameter 'device' must be auto, cpu, cuda or cuda:N, got {self.device!r}")


@dataclass
class PromptSpec(Params):
    """How a question and an image are put to the model: the conversation template and the image preparation."""

    TITLE = "prompt"

    template: Template = param(
        "llava_v1", "Conversation template: llava_v1 ('a curious human', the original's evaluation prompt), vicuna_v1 "
        "('a curious user', its training prompt) or plain (no system sentence).")
    image_mode: Literal["pad", "crop"] = param(
        "pad", "pad: square with the mean colour first (LLaVA-1.5); crop: the processor's centre crop only.")


@dataclass
class DecodingSpec(Params):
    """How text is generated: search or sampling, length, batching."""

    TITLE = "decoding"

    num_beams: int = param(5, "Beam search width (SHR's protocol: 5); 1 is greedy, or sampling with do_sample.")
    batch_beams: bool = param(True, "Batch beam search too (false: one image per call when num_beams > 1).")
    do_sample: bool = param(False, "Sample instead of searching.")
    sample_temperature: float = param(1.0, "Sampling temperature (only with do_sample).")
    sample_top_p: float = param(1.0, "Sampling nucleus mass (only with do_sample).")
    sample_seed: int = param(0, "Seed of the sampling (only with do_sample).")
    max_new_tokens: int = param(512, "Longest generated text in tokens (the original: 512).")
    batch_size: int = param(8, "Prompts per generate call.")

    def validate(self) -> None:
        check(self.num_beams >= 1, f"parameter 'num_beams' must be >= 1, got {self.num_beams}")
        check(self.sample_temperature > 0, f"parameter 'sample_temperature' must be > 0, got {self.sample_temperature}")
        check(0 < self.sample_top_p <= 1, f"parameter 'sample_top_p' must be in (0, 1], got {self.sample_top_p}")
        check(self.max_new_tokens >= 1, f"parameter 'max_new_tokens' must be >= 1, got {self.max_new_tokens}")
        check(self.batch_size >= 1, f"parameter 'batch_size' must be >= 1, got {self.batch_size}")


@dataclass
class JudgeSpec(Params):
    """Which LLM judge and how it is called. The API key comes from the environment only, never from here."""

    TITLE = "judge"

    judge: str = param("openai", "Judge backend: openai (any OpenAI-compatible server) or oracle (the shapes world's "
                       "annotations, offline); more can be registered (entry point group hadpo.judges).")
    base_url: str = param("https://api.openai.com/v1", "Judge server root ending in /v1 (OpenAI, vLLM, Ollama...).")
    judge_model: str = param("gpt-4-0613", "Judge model id; pin a dated snapshot (aliases such as gpt-4 drift).")
    api_key_env: str = param("OPENAI_API_KEY", "Name of the environment variable holding the judge's API key ('' "
                             "for a server that needs none). Never the key itself.")
    judge_temperature: float = param(0.0, "Judge sampling temperature.")
    judge_max_tokens: int = param(800, "Judge reply limit in tokens.")
    judge_top_p: float = param(1.0, "Judge nucleus sampling mass.")
    judge_stop: list[str] = param([], "Stop sequences sent to the judge.")
    judge_seed: int | None = param(0, "Seed sent with each judge request (None: send none).")
    judge_logit_bias: dict[str, float] = param({}, "Token id -> bias sent with each judge request ({}: none sent).")
    judge_timeout: float = param(120.0, "Seconds to wait for one judge reply before retrying.")
    judge_max_retries: int = param(6, "Retries per judge call on 429 / 5xx / timeouts / malformed replies.")
    judge_max_concurrency: int = param(16, "Judge requests in flight.")
    judge_failure_streak: int = param(32, "Failed judge calls in a row (5xx, timeouts, connection errors, malformed "
                                      "answers; not 429) after which the judge is deemed down and the run stops.")
    judge_cache: str | None = param(None, "Reply cache (SQLite); None: judge_cache.sqlite in the run folder.",
                                    kind="path")
    judge_attempts: int = param(3, "Asks per item before an unreadable reply leaves it unjudged (counted).")

    def validate(self) -> None:
        check(bool(self.judge), "parameter 'judge' must name a judge backend")
        check_registered(JUDGES, self.judge, "judge")
        check(self.base_url.startswith(("http://", "https://")),
              f"parameter 'base_url' must be an http(s) URL, got {self.base_url!r}")
        check(bool(self.judge_model), "parameter 'judge_model' must not be empty")
        # Not echoed: a value that is no variable name is most likely the key itself, pasted in the wrong place.
        check(self.api_key_env == "" or _ENV_NAME.fullmatch(self.api_key_env) is not None,
              "parameter 'api_key_env' must be the NAME of an environment variable (letters, digits and _), "
              "not the key; the value given is not shown. Export the key and name its variable here")
        check(self.judge_temperature >= 0, f"parameter 'judge_temperature' must be >= 0, got {self.judge_temperature}")
        check(self.judge_max_tokens >= 1, f"parameter 'judge_max_tokens' must be >= 1, got {self.judge_max_tokens}")
        check(0 < self.judge_top_p <= 1, f"parameter 'judge_top_p' must be in (0, 1], got {self.judge_top_p}")
        check(self.judge_timeout > 0, f"parameter 'judge_timeout' must be > 0, got {self.judge_timeout}")
        check(self.judge_max_retries >= 0, f"parameter 'judge_max_retries' must be >= 0, got {self.judge_max_retries}")
        check(self.judge_max_concurrency >= 1,
              f"parameter 'judge_max_concurrency' must be >= 1, got {self.judge_max_concurrency}")
        check(self.judge_attempts >= 1, f"parameter 'judge_attempts' must be >= 1, got {self.judge_attempts}")
        check(self.judge_failure_streak >= 1,
              f"parameter 'judge_failure_streak' must be >= 1, got {self.judge_failure_streak}")


@dataclass
class LaunchSpec(Params):
    """How training starts: the launcher, how many processes, on which nodes."""

    TITLE = "launch"

    launcher: Literal["deepspeed", "torchrun", "python"] = param(
        "deepspeed", "Launcher of the training child: deepspeed, torchrun, or python (one process).")
    num_gpus: int = param(1, "Processes per node (one per GPU; on CPU, one per rank).")
    num_nodes: int = param(1, "Nodes; more than one needs master_port, plus a hostfile (deepspeed) or master_addr "
                           "(torchrun).")
    hostfile: str | None = param(None, "DeepSpeed hostfile ('host slots=N' per line) of a multi-node run.",
                                 kind="path")
    master_addr: str | None = param(None, "Address of the rank-0 node; None: this machine (deepspeed: the hostfile's "
                                    "first host).")
    master_port: int | None = param(None, "Rendezvous port; None: a free local port (single node only).")
    node_rank: int = param(0, "This node's rank in a multi-node torchrun run (start one torchrun per node).")
    include: str | None = param(None, "DeepSpeed --include filter, e.g. 'localhost:0,1' (replaces num_gpus).")
    exclude: str | None = param(None, "DeepSpeed --exclude filter, e.g. 'localhost:3' (replaces num_gpus).")

    def validate(self) -> None:
        check(self.num_gpus >= 1, f"parameter 'num_gpus' must be >= 1, got {self.num_gpus}")
        check(self.num_nodes >= 1, f"parameter 'num_nodes' must be >= 1, got {self.num_nodes}")
        check(0 <= self.node_rank < self.num_nodes,
              f"parameter 'node_rank' must be in [0, {self.num_nodes}), got {self.node_rank}")
        check(self.master_port is None or 1 <= self.master_port <= 65535,
              f"parameter 'master_port' must be in 1..65535, got {self.master_port}")
        check(not (self.include and self.exclude),
              f"parameters 'include' ({self.include!r}) and 'exclude' ({self.exclude!r}) exclude each other")
        if self.launcher != "deepspeed":
            check(not (self.include or self.exclude or self.hostfile),
                  f"include, exclude and hostfile are deepspeed options; launcher is {self.launcher!r} "
                  "(select GPUs with CUDA_VISIBLE_DEVICES instead)")
        if self.launcher == "python":
            check(self.num_gpus == 1 and self.num_nodes == 1,
                  f"launcher 'python' runs one process; got num_gpus={self.num_gpus}, num_nodes={self.num_nodes} "
                  "(use deepspeed or torchrun)")
        if self.num_nodes > 1:
            # Every node must agree on the rendezvous; a port free here says nothing about the master host.
            check(self.master_port is not None, f"a {self.num_nodes}-node run needs master_port")
            if self.launcher == "deepspeed":
                # DeepSpeed's launcher takes master_addr from the hostfile's first host when it is not given.
                check(bool(self.hostfile), f"a {self.num_nodes}-node deepspeed run needs a hostfile")
            if self.launcher == "torchrun":
                check(bool(self.master_addr),
                      f"a {self.num_nodes}-node torchrun run needs master_addr (the rank-0 node)")

    @property
    def processes_per_node(self) -> int:
        """Ranks started on each node (``num_gpus``; 1 for the python launcher)."""
        return 1 if self.launcher == "python" else self.num_gpus


@dataclass
class RerunSpec(Params):
    """Whether a stage redoes its finished work: the ``force`` key of every notebook (and stage command)."""

    TITLE = "rerun"

    force: bool = param(
        False, "Redo this stage's finished work instead of skipping it: the earlier results are moved into a "
        "replaced-<UTC time>/ folder inside their run folder (never deleted) and the work starts from scratch; the "
        "notebook runner executes the notebook again. 00: untrained model, SFT and behaviour check (the world's "
        "files are a function of its settings and are kept); 01: every mining step, the judge asked again (01 "
        "released and 08 redo everything on every run anyway); 02: training from step 0; 03: every answer; 04, "
        "05, 06, 07: every description, answer and judgement. A judge_cache outside the run folder is kept.")

    @classmethod
    def unrecorded(cls, values: dict[str, Any]) -> dict[str, Any]:
        """``values`` (a config's ``to_dict()``) without the rerun keys, which say how a run was started, not what
        it computes: a record of a run (and the check that a later run matches it) must not depend on them."""
        return {k: v for k, v in values.items() if k not in cls.own_field_names()}
