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
from pathlib import Path
from typing import Any

from hadpo.errors import DataError, ParamsError
from hadpo.io import append_jsonl, atomic_write_json, read_json, read_jsonl_tolerant
from hadpo.manifest import environment
from hadpo.models.prompts import DESCRIBE_INSTRUCTION, get_template
from hadpo.specs import DecodingSpec, PromptSpec

#: Keys of the protocol that must match for a resumed file to continue.
_RESUME_KEYS = ("model", "adapter", "adapter_sha256", "instruction", "template", "image_mode", "decoding", "dtype")


def decoding_record(decoding: DecodingSpec) -> dict[str, Any]:
    """The generation settings as recorded (sampling fields only when sampling)."""
    out: dict[str, Any] = {"num_beams": decoding.num_beams, "max_new_tokens": decoding.max_new_tokens,
                           "do_sample": decoding.do_sample}
    if decoding.do_sample:
        out.update(temperature=decoding.sample_temperature, top_p=decoding.sample_top_p, seed=decoding.sample_seed)
    return out


def effective_batch_size(decoding: DecodingSpec) -> int:
    """Images per generate call after the beam rule (one per call for unbatched beam search)."""
    return 1 if decoding.num_beams > 1 and not decoding.batch_beams else decoding.batch_size


def protocol_path(out_path: str | Path) -> Path:
    """``descriptions.jsonl`` → ``descriptions.protocol.json``."""
    out_path = Path(out_path)
    return out_path.with_name(f"{out_path.stem}.protocol.json")


def describe_protocol(loaded: Any, decoding: DecodingSpec, prompt: PromptSpec,
                      instruction: str = DESCRIBE_INSTRUCTION) -> dict[str, Any]:
    """Everything that decides the descriptions, for the protocol file."""
    info = dict(getattr(loaded, "info", {}) or {})
    return {
        "model": info.get("base"),
        "adapter": info.get("adapter"),
        "adapter_sha256": info.get("adapter_sha256", {}),
        "merged": info.get("merged", False),
        "dtype": info.get("dtype"),
        "device": info.get("device"),
        "instruction": instruction,
        "template": prompt.template,
        "image_mode": prompt.image_mode,
        "decoding": decoding_record(decoding),
        "batch_size": effective_batch_size(decoding),
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


def _generate(loaded: Any, images: list[Any], prompt: str, params: DecodingSpec) -> list[tuple[str, int]]:
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
        kwargs.update(temperature=params.sample_temperature, top_p=params.sample_top_p)
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
    decoding: DecodingSpec | None = None,
    prompt: PromptSpec | None = None,
    *,
    instruction: str = DESCRIBE_INSTRUCTION,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Describe ``(image_id, image_path)`` items into ``out_path`` (JSON lines), resuming where it stopped.

    ``loaded`` is a :class:`hadpo.models.loading.LoadedModel`; ``decoding`` and ``prompt`` default to SHR's
    protocol (5 beams, 512 tokens, the llava_v1 prompt, padded images). Each record is ``{"image_id",
    "response", "num_tokens", "instruction"}``. Returns the records of ``items`` in item order (old and new).
    """
    import torch
    from PIL import Image
    from tqdm.auto import tqdm

    from hadpo.models.image import prepare_image

    if not instruction.strip():
        raise ParamsError("the description instruction must not be empty")
    params = decoding or DecodingSpec()
    prompt = prompt or PromptSpec()
    out_path = Path(out_path)
    ids = [str(image_id) for image_id, _ in items]
    if len(set(ids)) != len(ids):
        raise ParamsError("image ids to describe must be unique")
    protocol = describe_protocol(loaded, params, prompt, instruction)
    proto_file = protocol_path(out_path)
    if proto_file.is_file() and out_path.is_file() and out_path.stat().st_size > 0:
        _check_resume(proto_file, protocol)
    atomic_write_json(proto_file, protocol)

    done = {str(r["image_id"]): r for r in read_jsonl_tolerant(out_path)}
    todo = [(image_id, Path(path)) for image_id, path in items if str(image_id) not in done]
    text = get_template(prompt.template).prompt(instruction)
    image_mean = loaded.processor.image_processor.image_mean
    size = effective_batch_size(params)
    bar = tqdm(total=len(items), initial=len(items) - len(todo), desc="describe", disable=not progress, leave=False)
    try:
        for start in range(0, len(todo), size):
            batch = todo[start : start + size]
            images = []
            for image_id, path in batch:
                try:
                    with Image.open(path) as img:
                        images.append(prepare_image(img, prompt.image_mode, image_mean))
                except (OSError, ValueError) as exc:
                    raise DataError(path, f"cannot read image: {exc}", record=str(image_id)) from exc
            if params.do_sample:
                torch.manual_seed(params.sample_seed + start)
            outputs = _generate(loaded, images, text, params)
            records = [
                {"image_id": image_id, "response": response, "num_tokens": n, "instruction": instruction}
                for (image_id, _), (response, n) in zip(batch, outputs, strict=True)
            ]
            append_jsonl(out_path, records)
            done.update({str(r["image_id"]): r for r in records})
            bar.update(len(batch))
    finally:
        bar.close()
    return [done[i] for i in ids]
