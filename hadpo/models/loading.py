"""The one model loader of the kit: base LLaVA (+ LoRA adapter, + trained projector), for every stage.

Training, POPE, SHR and mining all call :func:`load_model`, so the tiny local model and
``llava-hf/llava-1.5-7b-hf`` go through exactly the same ``from_pretrained`` calls.

An adapter folder holds peft's ``adapter_config.json`` + ``adapter_model.{safetensors,bin}`` and, when the
projector was trained too, either the kit's ``multi_modal_projector.safetensors`` (keys ``linear_1.weight``,
``linear_1.bias``, ``linear_2.weight``, ``linear_2.bias``) or HA-DPO's released ``non_lora_trainables.bin``
(keys ``base_model.model.model.mm_projector.{0,2}.{weight,bias}``). HA-DPO's released LoRA weights use the
original LLaVA module names (``model.layers.N...``); they are mapped onto the transformers-native names
(``model.language_model.layers.N...``) while loading, with targets restricted to the language model.

torch / transformers / peft are imported inside the functions: the CLI modules import this one and must stay
light.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hadpo.errors import DataError, HadpoError, ParamsError
from hadpo.io import atomic_write_bytes, read_json, sha256_file
from hadpo.models.image_tokens import ensure_image_tokenization
from hadpo.models.lora import _PEFT_DEPRECATION, LM_PROJECTIONS, get_projector, lm_target_regex
from hadpo.paths import resolve_path
from hadpo.progress import quiet_library_bars
from hadpo.specs import ModelSpec

if TYPE_CHECKING:
    import torch
    from torch import nn

#: File name of the projector weights the kit saves next to a LoRA adapter.
PROJECTOR_FILE = "multi_modal_projector.safetensors"
#: File name of HA-DPO's saved non-LoRA trainables (the projector) in its released adapter.
LEGACY_PROJECTOR_FILE = "non_lora_trainables.bin"
#: The projector's parameter names, as in ``model.model.multi_modal_projector.state_dict()``.
PROJECTOR_KEYS: tuple[str, ...] = ("linear_1.weight", "linear_1.bias", "linear_2.weight", "linear_2.bias")

_ADAPTER_CONFIG = "adapter_config.json"
_ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
DTYPES: tuple[str, ...] = ("float32", "bfloat16", "float16")

# A projector key, whatever wraps it: the kit's names, transformers' full names, or the original LLaVA's
# ``mm_projector.0`` / ``mm_projector.2`` (index 1 is the GELU, which has no weights).
_PROJECTOR_KEY_RE = re.compile(
    r"^(?:.*\.)?(?:(?:multi_modal_projector|mm_projector)\.)?(linear_1|linear_2|0|2)\.(weight|bias)$"
)
_LEGACY_LAYER_INDEX = {"0": "linear_1", "2": "linear_2"}
# Original LLaVA LoRA keys (peft prefix already removed by peft before the mapping applies).
_LEGACY_LORA_KEY_RE = re.compile(r"^base_model\.model\.model\.layers\.\d+\.")
_LEGACY_KEY_MAPPING = {r"^model\.layers\.": "model.language_model.layers."}


class ModelLoadError(HadpoError):
    """The base model or its processor could not be loaded (missing folder, unreachable hub id)."""


@dataclass
class LoadedModel:
    """A loaded LLaVA with everything the stages need to feed it."""

    model: Any
    processor: Any
    tokenizer: Any
    image_token_id: int
    image_tokens_per_image: int
    info: dict[str, Any] = field(default_factory=dict)


def count_image_tokens(processor: Any) -> int:
    """How many ``<image>`` tokens one image expands to, measured by running ``processor`` on a square image.

    LLaVA-1.5 images are padded to a square before processing, so a square image of the processor's crop size
    gives the count the stages will see (576 for CLIP-L/336, 9 for the tiny model).
    """
    from PIL import Image

    side = _processor_side(processor)
    token = processor.image_token
    out = processor(images=[Image.new("RGB", (side, side))], text=[token], return_tensors="np")
    token_id = _image_token_id(processor)
    count = int((out["input_ids"][0] == token_id).sum())
    if count <= 0:
        raise HadpoError(f"the processor did not expand {token!r} into image tokens")
    return count


def _processor_side(processor: Any) -> int:
    """The square side the image processor crops (or resizes) to; 336 when it does not say."""
    ip = processor.image_processor
    for attr, key in (("crop_size", "height"), ("size", "height"), ("size", "shortest_edge")):
        value = getattr(ip, attr, None)
        got = value.get(key) if isinstance(value, dict) else getattr(value, key, None)
        if got:
            return int(got)
    return 336


def _image_token_id(processor: Any) -> int:
    """The id of the image placeholder token in the processor's tokenizer."""
    token_id = getattr(processor, "image_token_id", None)
    if token_id is None:
        token_id = processor.tokenizer.convert_tokens_to_ids(processor.image_token)
    return int(token_id)


def _torch_dtype(dtype: str) -> torch.dtype:
    import torch

    if dtype not in DTYPES:
        raise ParamsError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return getattr(torch, dtype)


def _is_local_reference(base: str) -> bool:
    """True when ``base`` can only mean a folder (absolute, relative with ./, ~, not of the hub's org/name form)."""
    from hadpo.paths import is_hub_id

    return not is_hub_id(base)


def _load_base(base: str, torch_dtype: torch.dtype, device: str, attn_implementation: str | None) -> tuple[Any, Any]:
    """``AutoProcessor`` + ``LlavaForConditionalGeneration`` from a folder or hub id, with clear failures."""
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    local = _is_local_reference(base)
    folder = Path(resolve_path(base))
    if local and not folder.is_dir():
        raise ModelLoadError(f"base model folder {folder} does not exist")
    source = str(folder) if local else base
    # Never hub kernels: with the `kernels` package installed (a transformers dependency), from_pretrained on a GPU
    # fetches replacement layers from the hub by default, which fails offline (seen on an H200 with
    # HF_HUB_OFFLINE=1) and online swaps in code the kit's packed-vs-naive and resume checks never ran.
    kwargs: dict[str, Any] = {"dtype": torch_dtype, "use_kernels": False}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    if device != "cpu":
        # Load straight onto the accelerator: a 7B model in fp16 need not pass through host memory twice.
        kwargs["device_map"] = {"": device}
    try:
        with quiet_library_bars():  # "Loading weights" redrawn on stderr, unless bars are live
            processor = AutoProcessor.from_pretrained(source)
            model = LlavaForConditionalGeneration.from_pretrained(source, **kwargs)
    except OSError as exc:
        if local:
            raise ModelLoadError(f"cannot load a LLaVA model from folder {source}: {exc}") from exc
        offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
        hint = (
            "HF_HUB_OFFLINE is set and it is not in the local Hugging Face cache"
            if offline
            else "the Hugging Face Hub could not be reached and it is not in the local cache"
        )
        raise ModelLoadError(
            f"cannot load base model {base!r}: there is no folder {folder}, and as a hub id: {hint}. Download it "
            f"once (e.g. `hf download {base} --local-dir <folder>`) and pass that local folder as the model instead."
        ) from exc
    return processor, model


def load_projector_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Projector weights from a file or an adapter folder, with the kit's key names (:data:`PROJECTOR_KEYS`).

    ``path`` may be ``multi_modal_projector.safetensors``, HA-DPO's ``non_lora_trainables.bin``, or a folder
    holding either (the kit's file wins). Keys in the original LLaVA form (``...mm_projector.0.weight``) are
    renamed; any key that is not a projector parameter is an error rather than silently dropped.
    """
    path = Path(path)
    if path.is_dir():
        candidates = [path / PROJECTOR_FILE, path / LEGACY_PROJECTOR_FILE]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise DataError(path, f"no projector weights ({PROJECTOR_FILE} or {LEGACY_PROJECTOR_FILE}) in folder")
        path = found
    if not path.is_file():
        raise DataError(path.absolute(), "file not found")
    raw = _read_tensor_file(path)
    state: dict[str, torch.Tensor] = {}
    for key, tensor in raw.items():
        m = _PROJECTOR_KEY_RE.match(key)
        if m is None:
            raise DataError(path, "not a multimodal projector parameter", field=key)
        layer = _LEGACY_LAYER_INDEX.get(m.group(1), m.group(1))
        name = f"{layer}.{m.group(2)}"
        if name in state:
            raise DataError(path, f"two keys map to projector parameter {name!r}", field=key)
        state[name] = tensor
    missing = [k for k in PROJECTOR_KEYS if k not in state]
    if missing:
        raise DataError(path, f"missing projector parameters {missing}", field=missing[0])
    return {k: state[k] for k in PROJECTOR_KEYS}


def _read_tensor_file(path: Path) -> dict[str, torch.Tensor]:
    """A flat name → tensor dict from a ``.safetensors`` or torch ``.bin`` file (tensors only, never pickled code)."""
    import torch

    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # safetensors / torch raise several unrelated types for a corrupt file
        raise DataError(path, f"cannot read tensors: {exc}") from exc
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise DataError(path, "expected a flat mapping of parameter names to tensors")
    return dict(obj)


def projector_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The projector's weights as contiguous CPU tensors, keyed by :data:`PROJECTOR_KEYS`."""
    state = get_projector(model).state_dict()
    return {k: state[k].detach().to("cpu").contiguous().clone() for k in PROJECTOR_KEYS}


def save_projector_state(state: dict[str, torch.Tensor], out_dir: str | Path) -> Path:
    """Write projector weights (e.g. gathered from ZeRO-3 shards) to ``out_dir/multi_modal_projector.safetensors``."""
    from safetensors.torch import save

    missing = [k for k in PROJECTOR_KEYS if k not in state]
    if missing:
        raise ValueError(f"projector state lacks {missing}")
    tensors = {k: state[k].detach().to("cpu").contiguous() for k in PROJECTOR_KEYS}
    return atomic_write_bytes(Path(out_dir) / PROJECTOR_FILE, save(tensors, metadata={"format": "pt"}))


def save_projector(model: nn.Module, out_dir: str | Path) -> Path:
    """Save the (possibly peft-wrapped) model's projector next to its adapter; returns the file written."""
    return save_projector_state(projector_state(model), out_dir)


def apply_projector_state(model: nn.Module, state: dict[str, torch.Tensor], source: str | Path) -> None:
    """Copy ``state`` into the model's projector (cast to its dtype); shape mismatches name ``source``."""
    projector = get_projector(model)
    current = projector.state_dict()
    for key in PROJECTOR_KEYS:
        if tuple(state[key].shape) != tuple(current[key].shape):
            raise DataError(
                source,
                f"shape {tuple(state[key].shape)} does not fit the model's projector {tuple(current[key].shape)}",
                field=key,
            )
    projector.load_state_dict({k: state[k].to(current[k].dtype) for k in PROJECTOR_KEYS}, strict=True)


def _adapter_weight_keys(adapter_dir: Path) -> tuple[Path, list[str]]:
    """The adapter weights file and its tensor names (without loading a safetensors file's data)."""
    for name in _ADAPTER_WEIGHTS:
        path = adapter_dir / name
        if path.is_file():
            break
    else:
        raise DataError(adapter_dir, f"no adapter weights ({' or '.join(_ADAPTER_WEIGHTS)}) in adapter folder")
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            return path, list(fh.keys())
    return path, list(_read_tensor_file(path))


def _legacy_lora_config(adapter_dir: Path, config_path: Path) -> Any:
    """The adapter's ``LoraConfig`` with its name-list targets pinned to the language model.

    HA-DPO's adapter lists bare names (``q_proj``...), which on the transformers-native LLaVA would also wrap
    the CLIP tower's attention; the regex keeps LoRA where the weights were trained.
    """
    from peft import PeftConfig

    config = PeftConfig.from_pretrained(str(adapter_dir))
    targets = config.target_modules
    names = [targets] if isinstance(targets, str) else list(targets or [])
    projections = [n for n in LM_PROJECTIONS if n in names]
    if not projections or len(projections) != len(names):
        raise DataError(
            config_path,
            f"original-LLaVA adapter targets must be language-model projections {LM_PROJECTIONS}, got {names}",
            field="target_modules",
        )
    config.target_modules = lm_target_regex(projections)
    return config


def _load_adapter(model: Any, adapter_dir: Path, trainable: bool) -> tuple[Any, bool]:
    """Wrap ``model`` with the peft adapter in ``adapter_dir``; returns (peft model, was original-LLaVA naming)."""
    from peft import PeftModel

    config_path = adapter_dir / _ADAPTER_CONFIG
    if not config_path.is_file():
        raise DataError(adapter_dir, f"not a LoRA adapter folder: {_ADAPTER_CONFIG} is missing")
    adapter_cfg = read_json(config_path)
    if not isinstance(adapter_cfg, dict) or adapter_cfg.get("peft_type", "LORA") != "LORA":
        raise DataError(config_path, "only LoRA adapters are supported", field="peft_type")
    weights_path, keys = _adapter_weight_keys(adapter_dir)
    legacy = any(_LEGACY_LORA_KEY_RE.match(k) for k in keys)
    kwargs: dict[str, Any] = {"is_trainable": trainable}
    if legacy:
        kwargs["config"] = _legacy_lora_config(adapter_dir, config_path)
        kwargs["key_mapping"] = _LEGACY_KEY_MAPPING
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        peft_model = PeftModel.from_pretrained(model, str(adapter_dir), **kwargs)
    for w in caught:
        message = str(w.message)
        # peft only warns when adapter weights do not fit the model; a half-loaded adapter must not pass silently.
        if "missing adapter keys" in message:
            raise DataError(weights_path, f"adapter does not fit this base model: {message[:500]}")
        if issubclass(w.category, FutureWarning) and re.match(_PEFT_DEPRECATION, message):
            continue  # see _PEFT_DEPRECATION; every other warning is passed on
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return peft_model, legacy


def _adapter_hashes(adapter_dir: Path) -> dict[str, str]:
    """SHA-256 of each file that defines the adapter (config, LoRA weights, projector weights)."""
    names = (_ADAPTER_CONFIG, *_ADAPTER_WEIGHTS, PROJECTOR_FILE, LEGACY_PROJECTOR_FILE)
    return {n: sha256_file(adapter_dir / n) for n in names if (adapter_dir / n).is_file()}


def load_model(spec: ModelSpec, *, trainable: bool = False) -> LoadedModel:
    """Load what a :class:`~hadpo.specs.ModelSpec` names: a LLaVA-1.5 base (folder or hub id), optionally with a
    LoRA adapter and its trained projector.

    - ``adapter``: a folder written by the kit's trainer or HA-DPO's released adapter; its projector file, if
      any, replaces the base projector before LoRA is attached (the original's order).
    - ``merge_adapter``: fold LoRA into the base weights (a plain ``LlavaForConditionalGeneration``).
    - ``trainable``: train mode; an adapter that is not merged stays trainable (continuing from it). Otherwise
      the model is in eval mode with every parameter frozen.
    The tokenizer pads on the left, as batched generation needs. CUDA is only touched when ``device`` names it
    (``auto``: ``cuda`` when a GPU is visible, else ``cpu``).
    """
    base, device = spec.model, spec.device
    torch_dtype = _torch_dtype(spec.dtype)
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" and spec.dtype == "float16":
        # Measured on LLaVA-1.5-7B's widths: six float16 matmuls did not finish in 10 min, against 0.14 s each in
        # bfloat16. A float16 preset (the original evaluates in fp16 on GPUs) needs a CPU override.
        raise ParamsError("dtype float16 is unusable on the CPU (its matmuls run thousands of times slower); "
                          "use -p dtype bfloat16 (or float32) there")
    adapter_dir = Path(spec.adapter).expanduser() if spec.adapter else None
    if adapter_dir is not None and not adapter_dir.is_dir():
        raise DataError(adapter_dir.absolute(), "adapter folder not found")
    merge = adapter_dir is not None and spec.merge_adapter

    processor, model = _load_base(base, torch_dtype, device, spec.attn_implementation)
    image_token_id = _image_token_id(processor)
    if int(model.config.image_token_id) != image_token_id:
        raise ModelLoadError(
            f"{base}: model image_token_id {model.config.image_token_id} differs from the processor's {image_token_id}"
        )
    n_image = count_image_tokens(processor)
    source = resolve_path(base) if _is_local_reference(base) else base
    # Never a tokenizer that shifts the ids around the image (hadpo.models.image_tokens): corrected or refused.
    tokenization = ensure_image_tokenization(processor, image_token_id, n_image, source)
    tokenizer = processor.tokenizer
    tokenizer.padding_side = "left"

    info: dict[str, Any] = {
        "base": base,
        "adapter": str(adapter_dir) if adapter_dir else None,
        "projector": None,
        "dtype": spec.dtype,
        "device": device,
        "attn_implementation": spec.attn_implementation,
        "merged": False,
        "adapter_sha256": {},
        "original_llava_adapter": False,
        "tokenizer": tokenization,
    }
    if adapter_dir is not None:
        info["adapter_sha256"] = _adapter_hashes(adapter_dir)
        projector_file = next(
            (adapter_dir / n for n in (PROJECTOR_FILE, LEGACY_PROJECTOR_FILE) if (adapter_dir / n).is_file()), None
        )
        if projector_file is not None:
            apply_projector_state(model, load_projector_state(projector_file), projector_file)
            info["projector"] = str(projector_file)
        model, info["original_llava_adapter"] = _load_adapter(model, adapter_dir, trainable and not merge)
        if merge:
            model = model.merge_and_unload()
            info["merged"] = True

    if trainable:
        model.train()
    else:
        model.eval()
        model.requires_grad_(False)
    info["image_tokens_per_image"] = n_image
    return LoadedModel(
        model=model,
        processor=processor,
        tokenizer=tokenizer,
        image_token_id=image_token_id,
        image_tokens_per_image=n_image,
        info=info,
    )
