"""Detailed image descriptions from a LLaVA model: SHR's generation step, also used to mine preference data.

The prompt is the llava_v1 conversation with "Describe this image in detail." (the original SHR protocol);
decoding defaults to beam search with 5 beams and up to 512 new tokens. Images are padded to a square with the
processor's mean colour first (LLaVA-1.5's ``pad``), then batched with left padding.

Output is a JSON-lines file, appended and fsynced batch by batch, so a killed run loses at most one batch and
a rerun skips the images already described. Sampling is seeded per image (from ``sample_seed`` and the image id),
so a description does not depend on which batch the image landed in: a killed and resumed sampled run writes
the same file, byte for byte, as an uninterrupted one. The decoding protocol (model, adapter, decoding, dtype, batch
size, package versions) sits next to it in ``<name>.protocol.json``; resuming with a different protocol is an
error rather than a file mixing two settings.

An item may carry its own instruction (a benchmark's question per image, as MMHal-Bench's): each record keeps
the instruction it answered, and a resumed item asked differently is refused. Under ``torchrun`` (a ``ctx`` of
several ranks) the pending items are split into contiguous shards; rank ``r`` appends to ``<name>.rank<r>.jsonl``
and, after a barrier, rank 0 merges every file into ``<name>.jsonl`` (item order).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hadpo.errors import DataError, ParamsError
from hadpo.io import append_jsonl, atomic_write_json, read_json, read_jsonl_tolerant
from hadpo.manifest import environment
from hadpo.models.prompts import DESCRIBE_INSTRUCTION, get_template
from hadpo.specs import DecodingSpec, PromptSpec

if TYPE_CHECKING:
    from hadpo.distributed import DistContext

#: What :func:`describe_images` describes: ``(image_id, image_path)``, or ``(image_id, image_path, instruction)`` for
#: an item asked its own question.
Item = tuple[str | int, str | Path] | tuple[str | int, str | Path, str]

#: The protocol's ``instruction`` when the items carry their own (each record keeps the one it answered).
PER_ITEM = "per item"

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
    """Images per generate call after the beam rule (one per call for unbatched beam search and beam sampling)."""
    if decoding.num_beams > 1 and (decoding.do_sample or not decoding.batch_beams):
        return 1
    return decoding.batch_size


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


def item_seed(sample_seed: int, image_id: str | int) -> int:
    """The sampling seed of one image: a hash of the run's seed and the image id (stable across processes)."""
    digest = hashlib.sha256(f"{sample_seed}\x00{image_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1  # torch seeds are int64


def _per_item_sampler(seeds: list[int], params: DecodingSpec) -> Any:
    """A logits processor that draws each row's next token from its own generator.

    ``generate`` samples every row from the one global RNG, so a row's text would depend on its batch. This
    processor applies the temperature and top-p warpers itself, draws row ``i``'s token with generator ``i``
    (seeded by :func:`item_seed`), and leaves only that token finite; ``generate``'s own draw then has a single
    choice. The distribution is the same as ``generate``'s sampling.
    """
    import torch
    from transformers import LogitsProcessor, LogitsProcessorList, TemperatureLogitsWarper, TopPLogitsWarper

    warpers = LogitsProcessorList()
    if params.sample_temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(params.sample_temperature))
    if params.sample_top_p < 1.0:
        warpers.append(TopPLogitsWarper(params.sample_top_p))

    class PerItemSampler(LogitsProcessor):
        def __init__(self) -> None:
            self.generators: list[torch.Generator] | None = None

        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
            if self.generators is None:  # created on the device the scores live on
                self.generators = [torch.Generator(device=scores.device).manual_seed(s) for s in seeds]
            probs = torch.softmax(warpers(input_ids, scores).float(), dim=-1)
            picked = torch.stack([torch.multinomial(probs[i], 1, generator=g)[0]
                                  for i, g in enumerate(self.generators)])
            out = torch.full_like(scores, float("-inf"))
            out[torch.arange(len(seeds), device=scores.device), picked] = 0.0
            return out

    return LogitsProcessorList([PerItemSampler()])


def _generate(loaded: Any, images: list[Any], prompts: list[str], params: DecodingSpec,
              seeds: list[int] | None = None) -> list[tuple[str, int]]:
    """``(text, new token count)`` per image for one batch of ``(image, prompt)`` rows (``seeds``: one sampling
    seed per image)."""
    import torch

    processor, model, tokenizer = loaded.processor, loaded.model, loaded.tokenizer
    tokenizer.padding_side = "left"  # batched generation continues every row from its last real token
    inputs = processor(images=images, text=prompts, return_tensors="pt", padding=True)
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
    if params.do_sample and params.num_beams == 1:
        assert seeds is not None and len(seeds) == len(images)
        # The warpers run inside the per-item sampler; generate's own would run after it and see one choice.
        kwargs.update(temperature=None, top_p=None, top_k=None,
                      logits_processor=_per_item_sampler(seeds, params))
    elif params.do_sample:  # beam sampling draws several tokens per row: one image per call, seeded (see caller)
        assert seeds is not None and len(seeds) == 1
        torch.manual_seed(seeds[0])
        kwargs.update(temperature=params.sample_temperature, top_p=params.sample_top_p, top_k=None)
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


def _item_parts(item: Item, instruction: str) -> tuple[str | int, Path, str]:
    """``(image id, path, instruction)`` of an item (the shared ``instruction`` when it names none); the id keeps
    its type, as the records do."""
    if len(item) == 3:
        image_id, path, own = item  # type: ignore[misc]
        return image_id, Path(path), str(own)
    image_id, path = item  # type: ignore[misc]
    return image_id, Path(path), instruction


def _rank_files(out_path: Path) -> list[Path]:
    return sorted(out_path.parent.glob(f"{out_path.stem}.rank*.jsonl"))


def read_descriptions(out_path: str | Path) -> dict[str, dict[str, Any]]:
    """Every record in a descriptions file and its per-rank files, by image id (a torn last line is ignored)."""
    out_path = Path(out_path)
    done: dict[str, dict[str, Any]] = {}
    for path in [out_path, *_rank_files(out_path)]:
        for record in read_jsonl_tolerant(path):
            if not isinstance(record, dict) or "image_id" not in record or not isinstance(record.get("response"), str):
                raise DataError(path, f"not a description record: {str(record)[:80]}", field="response")
            done.setdefault(str(record["image_id"]), record)
    return done


def _merge(out_path: Path, ids: Sequence[str]) -> None:
    """Fold the per-rank files into ``out_path`` (item order first, then records of other items) atomically; the
    rank files go only after the merged file is in place, so a kill in between loses nothing."""
    from hadpo.io import atomic_write_jsonl

    rank_files = _rank_files(out_path)
    if not rank_files:
        return
    done = read_descriptions(out_path)
    order = [i for i in ids if i in done] + [i for i in done if i not in set(ids)]
    atomic_write_jsonl(out_path, (done[i] for i in order))
    for path in rank_files:
        path.unlink()


def describe_images(
    items: Sequence[Item],
    out_path: str | Path,
    loaded: Any,
    decoding: DecodingSpec | None = None,
    prompt: PromptSpec | None = None,
    *,
    instruction: str = DESCRIBE_INSTRUCTION,
    progress: bool = True,
    ctx: DistContext | None = None,
    desc: str = "describe",
) -> list[dict[str, Any]]:
    """Describe ``(image_id, image_path[, instruction])`` items into ``out_path`` (JSON lines), resuming where it
    stopped.

    ``loaded`` is a :class:`hadpo.models.loading.LoadedModel` (under torchrun, each rank's own; None is accepted on a
    rank with nothing to do only if the caller knows it); ``decoding`` and ``prompt`` default to SHR's protocol (5
    beams, 512 tokens, the llava_v1 prompt, padded images). An item without its own instruction is asked
    ``instruction``. Each record is ``{"image_id", "response", "num_tokens", "instruction"}``. Collective under
    torchrun (``ctx`` of several ranks): every rank calls it. Returns the records of ``items`` in item order (old and
    new).
    """
    from PIL import Image

    from hadpo.models.image import prepare_image
    from hadpo.progress import progress as make_progress

    params = decoding or DecodingSpec()
    prompt = prompt or PromptSpec()
    out_path = Path(out_path)
    parts = [_item_parts(item, instruction) for item in items]
    ids = [str(image_id) for image_id, _, _ in parts]
    if len(set(ids)) != len(ids):
        raise ParamsError("image ids to describe must be unique")
    if any(not asked.strip() for _, _, asked in parts):
        raise ParamsError("the description instruction must not be empty")
    per_item = any(len(item) == 3 for item in items)
    protocol = describe_protocol(loaded, params, prompt, PER_ITEM if per_item else instruction)
    world_size = ctx.world_size if ctx is not None else 1
    is_main = ctx is None or ctx.is_main
    proto_file = protocol_path(out_path)
    done = read_descriptions(out_path)
    if proto_file.is_file() and done:
        _check_resume(proto_file, protocol)
    for image_id, _, asked in parts:
        record = done.get(str(image_id))
        if record is not None and record.get("instruction", asked) != asked:
            raise ParamsError(f"{out_path}: image {image_id} was asked {record.get('instruction')!r}, now "
                              f"{asked!r}; use another output file or delete the old one")
    if ctx is not None:
        ctx.barrier()  # every rank has read what is done before any appends
    if is_main:
        atomic_write_json(proto_file, protocol)

    pending = [p for p in parts if str(p[0]) not in done]
    # Contiguous shards: rank r takes the r-th slice, so the merged file keeps item order.
    rank = ctx.rank if ctx is not None else 0
    per_rank = -(-len(pending) // world_size) if pending else 0
    todo = pending[rank * per_rank:(rank + 1) * per_rank]
    target = out_path if world_size == 1 else out_path.with_name(f"{out_path.stem}.rank{rank}.jsonl")
    template = get_template(prompt.template)
    size = effective_batch_size(params)
    bar = make_progress(len(items) if world_size == 1 else len(todo), desc, unit="images",
                        initial=len(items) - len(pending) if world_size == 1 else 0,
                        enabled=progress and is_main, leave=False)
    try:
        if todo:
            image_mean = loaded.processor.image_processor.image_mean
        for start in range(0, len(todo), size):
            batch = todo[start : start + size]
            images = []
            for image_id, path, _ in batch:
                try:
                    with Image.open(path) as img:
                        images.append(prepare_image(img, prompt.image_mode, image_mean))
                except (OSError, ValueError) as exc:
                    raise DataError(path, f"cannot read image: {exc}", record=str(image_id)) from exc
            seeds = [item_seed(params.sample_seed, image_id) for image_id, _, _ in batch] if params.do_sample else None
            outputs = _generate(loaded, images, [template.prompt(asked) for _, _, asked in batch], params, seeds)
            records = [
                {"image_id": image_id, "response": response, "num_tokens": n, "instruction": asked}
                for (image_id, _, asked), (response, n) in zip(batch, outputs, strict=True)
            ]
            append_jsonl(target, records)
            done.update({str(r["image_id"]): r for r in records})
            bar.update(len(batch))
    finally:
        bar.close()
    if ctx is not None:
        ctx.barrier()
        if is_main:
            _merge(out_path, ids)
        ctx.barrier()
        done = read_descriptions(out_path)
    return [done[i] for i in ids]
