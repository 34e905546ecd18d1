"""Detailed image descriptions from a LLaVA model: SHR's generation step, also used to mine preference data.

The prompt is the llava_v1 conversation with "Describe this image in detail." (the original SHR protocol);
decoding defaults to beam search with 5 beams and up to 512 new tokens. Images are padded to a square with the
processor's mean colour first (LLaVA-1.5's ``pad``), then batched with left padding.

Output is a JSON-lines file, appended and fsynced batch by batch, so a killed run loses at most one batch and
a rerun skips the images already described. The decoding protocol (model, adapter, decoding, dtype, batch
size, package versions) sits next to it in ``<name>.protocol.json``; resuming with a different protocol is an
error rather than a file mixing two settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hadpo.config import Params, check, param
from hadpo.errors import DataError, ParamsError
from hadpo.io import append_jsonl, atomic_write_json, read_json, read_jsonl_tolerant
from hadpo.manifest import environment
from hadpo.models.prompts import DESCRIBE_INSTRUCTION, get_template

#: Keys of the protocol that must match for a resumed file to continue.
_RESUME_KEYS = ("model", "adapter", "adapter_sha256", "instruction", "template", "image_mode", "decoding", "dtype")


@dataclass
class DescribeParams(Params):
    """How descriptions are generated (defaults: the original SHR protocol)."""

    instruction: str = param(DESCRIBE_INSTRUCTION, "User instruction after the image.")
    template: Literal["llava_v1", "vicuna_v1", "plain"] = param("llava_v1", "Conversation template.")
    num_beams: int = param(5, "Beams for beam search (1 = greedy or sampling).")
    max_new_tokens: int = param(512, "Longest description in tokens.")
    do_sample: bool = param(False, "Sample instead of searching (mining may want several samples).")
    temperature: float = param(1.0, "Sampling temperature (only with do_sample).")
    top_p: float = param(1.0, "Nucleus mass (only with do_sample).")
    seed: int = param(0, "Seed set before each batch when sampling.")
    batch_size: int = param(8, "Images per generate call.")
    batch_beams: bool = param(
        True, "Batch beam search too; set false where batched beams do not give the one-by-one text."
    )
    image_mode: Literal["pad", "crop"] = param("pad", "Pad images to a square (LLaVA-1.5) or let the processor crop.")

    def __post_init__(self) -> None:
        check(self.num_beams >= 1, f"num_beams must be >= 1, got {self.num_beams}")
        check(self.max_new_tokens >= 1, f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        check(self.temperature > 0, f"temperature must be > 0, got {self.temperature}")
        check(0 < self.top_p <= 1, f"top_p must be in (0, 1], got {self.top_p}")
        check(bool(self.instruction.strip()), "instruction must not be empty")

    @property
    def effective_batch_size(self) -> int:
        """Images per generate call after the beam rule."""
        return 1 if self.num_beams > 1 and not self.batch_beams else self.batch_size

    def decoding(self) -> dict[str, Any]:
        """The generation settings as recorded (sampling fields only when sampling)."""
        out: dict[str, Any] = {"num_beams": self.num_beams, "max_new_tokens": self.max_new_tokens,
                               "do_sample": self.do_sample}
        if self.do_sample:
            out.update(temperature=self.temperature, top_p=self.top_p, seed=self.seed)
        return out


def protocol_path(out_path: str | Path) -> Path:
    """``descriptions.jsonl`` → ``descriptions.protocol.json``."""
    out_path = Path(out_path)
    return out_path.with_name(f"{out_path.stem}.protocol.json")


def describe_protocol(loaded: Any, params: DescribeParams) -> dict[str, Any]:
    """Everything that decides the descriptions, for the protocol file."""
    info = dict(getattr(loaded, "info", {}) or {})
    return {
        "model": info.get("base"),
        "adapter": info.get("adapter"),
        "adapter_sha256": info.get("adapter_sha256", {}),
        "merged": info.get("merged", False),
        "dtype": info.get("dtype"),
        "device": info.get("device"),
        "instruction": params.instruction,
        "template": params.template,
        "image_mode": params.image_mode,
        "decoding": params.decoding(),
        "batch_size": params.effective_batch_size,
        "environment": environment(),
    }


def _check_resume(path: Path, protocol: dict[str, Any]) -> None:
    """Refuse to append to a file written under different settings."""
    previous = read_json(path)
    for key in _RESUME_KEYS:
        if previous.get(key) != protocol.get(key):
            raise ParamsError(
                f"{path}: existing descriptions were made with {key}={previous.get(key)!r}, now {protocol.get(key)!r}; "
                "use another output file or delete the old one"
            )


def _generate(loaded: Any, images: list[Any], prompt: str, params: DescribeParams) -> list[tuple[str, int]]:
    """``(text, new token count)`` per image for one batch."""
    import torch

    processor, model, tokenizer = loaded.processor, loaded.model, loaded.tokenizer
    tokenizer.padding_side = "left"  # batched generation continues every row from its last real token
    inputs = processor(images=images, text=[prompt] * len(images), return_tensors="pt", padding=True)
    device = next(model.parameters()).device
    dtype = next(p.dtype for p in model.parameters() if p.is_floating_point())
    inputs = {k: (v.to(device, dtype) if k == "pixel_values" else v.to(device)) for k, v in inputs.items()}
    kwargs: dict[str, Any] = {
        "max_new_tokens": params.max_new_tokens,
        "num_beams": params.num_beams,
        "do_sample": params.do_sample,
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    if params.do_sample:
        kwargs.update(temperature=params.temperature, top_p=params.top_p)
    else:  # unset sampling knobs so generation_config defaults do not trigger "ignored flag" warnings
        kwargs.update(temperature=None, top_p=None, top_k=None)
    with torch.inference_mode():
        out = model.generate(**inputs, **kwargs)
    new = out[:, inputs["input_ids"].shape[1] :]
    results = []
    for row in new:
        ids = row.tolist()
        if tokenizer.eos_token_id in ids:
            ids = ids[: ids.index(tokenizer.eos_token_id)]
        ids = [i for i in ids if i != tokenizer.pad_token_id]
        text = tokenizer.decode(ids, skip_special_tokens=True).replace("</s>", "").strip()
        results.append((text, len(ids)))
    return results


def describe_images(
    items: Sequence[tuple[str | int, str | Path]],
    out_path: str | Path,
    loaded: Any,
    params: DescribeParams | None = None,
    *,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Describe ``(image_id, image_path)`` items into ``out_path`` (JSON lines), resuming where it stopped.

    ``loaded`` is a :class:`hadpo.models.loading.LoadedModel`. Each record is ``{"image_id", "response",
    "num_tokens", "instruction"}``. Returns the records of ``items`` in item order (old and new).
    """
    import torch
    from PIL import Image
    from tqdm.auto import tqdm

    from hadpo.models.image import prepare_image

    params = params or DescribeParams()
    out_path = Path(out_path)
    ids = [str(image_id) for image_id, _ in items]
    if len(set(ids)) != len(ids):
        raise ParamsError("image ids to describe must be unique")
    protocol = describe_protocol(loaded, params)
    proto_file = protocol_path(out_path)
    if proto_file.is_file() and out_path.is_file() and out_path.stat().st_size > 0:
        _check_resume(proto_file, protocol)
    atomic_write_json(proto_file, protocol)

    done = {str(r["image_id"]): r for r in read_jsonl_tolerant(out_path)}
    todo = [(image_id, Path(path)) for image_id, path in items if str(image_id) not in done]
    prompt = get_template(params.template).prompt(params.instruction)
    image_mean = loaded.processor.image_processor.image_mean
    size = params.effective_batch_size
    bar = tqdm(total=len(items), initial=len(items) - len(todo), desc="describe", disable=not progress, leave=False)
    try:
        for start in range(0, len(todo), size):
            batch = todo[start : start + size]
            images = []
            for image_id, path in batch:
                try:
                    with Image.open(path) as img:
                        images.append(prepare_image(img, params.image_mode, image_mean))
                except (OSError, ValueError) as exc:
                    raise DataError(path, f"cannot read image: {exc}", record=str(image_id)) from exc
            if params.do_sample:
                torch.manual_seed(params.seed + start)
            outputs = _generate(loaded, images, prompt, params)
            records = [
                {"image_id": image_id, "response": text, "num_tokens": n, "instruction": params.instruction}
                for (image_id, _), (text, n) in zip(batch, outputs, strict=True)
            ]
            append_jsonl(out_path, records)
            done.update({str(r["image_id"]): r for r in records})
            bar.update(len(batch))
    finally:
        bar.close()
    return [done[i] for i in ids]
