"""A model and its LoRA adapter merged into one full model folder, loadable like ``llava-hf/llava-1.5-7b-hf``.

On-policy rounds need it: round k + 1 mines from, trains a new LoRA on, and uses as its reference the model round k
trained, which is the previous model with round k's adapter folded in. The folder holds the weights, the config
and the processor, written to a temporary sibling first and renamed, so a killed merge leaves no half folder, and a
``merge.json`` recording what was merged (the adapter's file hashes), so a finished merge of the same adapter is
kept and another adapter's is refused.

Run as a child process (``python -m hadpo.models.merge``) by the training stage, whose kernel never imports torch.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from hadpo.errors import ParamsError
from hadpo.io import atomic_write_json, read_json
from hadpo.specs import ModelSpec

#: What a merged folder records: the base model and the adapter (its files' sha256) folded into it.
MERGE_RECORD = "merge.json"


def merge_record(spec: ModelSpec) -> dict[str, Any]:
    """What :data:`MERGE_RECORD` holds for ``spec`` (a model with an adapter to merge)."""
    from hadpo.models.loading import _adapter_hashes

    if spec.adapter is None:
        raise ParamsError("nothing to merge: the model spec names no adapter")
    return {"model": spec.model, "adapter": spec.adapter, "adapter_sha256": _adapter_hashes(Path(spec.adapter)),
            "dtype": spec.dtype}


def merged(spec: ModelSpec, out: str | Path) -> bool:
    """Whether ``out`` holds the merge of exactly this model and adapter (a rerun keeps it).

    A folder holding another merge is a :class:`ParamsError`: it is never silently replaced.
    """
    record = Path(out) / MERGE_RECORD
    if not record.is_file():
        return False
    if read_json(record) != merge_record(spec):
        raise ParamsError(f"{Path(out).absolute()} holds the merge of another adapter ({record}); delete it or choose "
                          "another output_dir")
    return True


def write_merged(spec: ModelSpec, out: str | Path) -> Path:
    """Load ``spec`` with its adapter merged and save model and processor to ``out``; returns ``out``.

    Kept when :func:`merged` says it is done. The weights are saved in ``spec.dtype``.
    """
    from hadpo.models.loading import load_model

    out = Path(out)
    if merged(spec, out):
        return out
    loaded = load_model(spec.replace(merge_adapter=True))
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    loaded.model.save_pretrained(str(partial))
    # The kit loads tokenizers padded on the left for generation; the folder keeps the base model's own setting.
    loaded.processor.tokenizer.padding_side = "right"
    loaded.processor.save_pretrained(str(partial))
    atomic_write_json(partial / MERGE_RECORD, merge_record(spec))
    shutil.rmtree(out, ignore_errors=True)  # an unfinished folder without a record (merged() returned False)
    partial.rename(out)
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m hadpo.models.merge --model M --adapter A --out DIR [--dtype D] [--device D]``."""
    parser = argparse.ArgumentParser(prog="python -m hadpo.models.merge", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--adapter", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    spec = ModelSpec.from_dict({"model": args.model, "adapter": args.adapter, "dtype": args.dtype,
                                "device": args.device})
    print(f"[hadpo] merged model: {write_merged(spec, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
