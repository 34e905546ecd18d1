"""``source: released``: check the released HA-DPO data and write the training set that is safe to use.

``desc_data.json`` and ``pope_data.json`` under ``<data_root>/hadpo/<name>/`` are validated with the kit's readers
(a malformed record is a :class:`~hadpo.errors.DataError` naming file, record and field; an image id missing from
VG ``image_data.json`` too). Records are then dropped, each for its first reason:

- ``missing_image``: the VG image file is not under the data root, or cannot be decoded (a 0-byte or truncated
  download); each such image is listed with the reason;
- ``leak``: the image is a POPE or SHR evaluation image (only with ``exclude_leaks``; always counted);
- ``correct`` (QA records): the model already answered right; the trainer skips these too, so they stay in the
  written file and are only counted here.

The kept records are written, with every field as released, to ``<run_dir>/desc_data.json`` and
``<run_dir>/pope_data.json`` (point the trainer's ``desc_data``/``pope_data`` at them), and the summary to
``<run_dir>/data_stats.json``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from hadpo.data.hadpo_files import read_desc_data, read_pope_data
from hadpo.data.images import image_problem
from hadpo.data.layout import DataLayout
from hadpo.data.validate import validate
from hadpo.data.vg import read_vg_images, vg_image_index
from hadpo.errors import DataError, ParamsError
from hadpo.io import atomic_write_json, read_json
from hadpo.mining.config import DataConfig
from hadpo.mining.leak import leak_report, leaking_ids, load_eval_images
from hadpo.mining.stats import STATS_FILE, pair_counts

DESC_FILE = "desc_data.json"
POPE_FILE = "pope_data.json"


def _mean(total: int, count: int) -> float | None:
    return round(total / count, 4) if count else None


def prepare_released(cfg: DataConfig) -> dict[str, Any]:
    """Validate the released data, drop what must not be trained on, write the training files and the stats.

    Returns the stats written to ``<run_dir>/data_stats.json``.
    """
    if cfg.source != "released":
        raise ParamsError(f"prepare_released() needs source: released, got source: {cfg.source!r} (use mine)")
    layout = DataLayout(cfg.data_root)
    desc_path, pope_path = layout.hadpo_data(cfg.name)
    desc = read_desc_data(desc_path)
    pope = read_pope_data(pope_path)
    # One of the two may hold no record (a description-only or QA-only release); nothing at all is an error.
    if not desc and not pope:
        raise DataError(f"{desc_path}, {pope_path}", "no records: both preference files are empty")
    reports = {name: validate(kind, path, images_root=cfg.data_root, allow_missing=True)
               for name, kind, path, records in (("desc", "desc", desc_path, desc),
                                                 ("pope", "pope-data", pope_path, pope)) if records}
    index = vg_image_index(read_vg_images(layout.image_data))  # validate() has checked every id is listed
    used = list(dict.fromkeys([r.image_id for r in desc] + [r.image_id for r in pope]))

    # validate() above decoded every image; a second look hits its cache of good files and names each bad one.
    problems = {image_id: image_problem(index[int(image_id)].path(layout)) for image_id in used}
    missing: dict[str, dict[str, Any]] = {
        image_id: {"image_id": image_id, "path": str(index[int(image_id)].path(layout)), "reason": why, "used_by": []}
        for image_id, why in problems.items() if why is not None}
    for name, records in (("desc", desc), ("pope", pope)):
        for image_id in dict.fromkeys(r.image_id for r in records):
            if image_id in missing:
                missing[image_id]["used_by"].append(name)
    leaks = leak_report(((int(i), index[int(i)].coco_id) for i in used), load_eval_images(cfg.data_root),
                        excluded=cfg.exclude_leaks)
    leaking = {str(i) for i in leaking_ids(leaks)}

    def reason(image_id: str, correct: bool | None = None) -> str | None:
        if image_id in missing:
            return "missing_image"
        if cfg.exclude_leaks and image_id in leaking:
            return "leak"
        return "correct" if correct is True else None

    desc_reasons = [reason(r.image_id) for r in desc]
    pope_reasons = [reason(r.image_id, r.correct) for r in pope]
    kept_desc = [r for r, why in zip(desc, desc_reasons, strict=True) if why is None]
    # "correct" records stay in the file: the trainer skips them itself, exactly as the original does.
    kept_pope = [r for r, why in zip(pope, pope_reasons, strict=True) if why in (None, "correct")]

    run_dir = Path(cfg.run_dir)
    out_desc, out_pope = run_dir / DESC_FILE, run_dir / POPE_FILE
    raw_desc = read_json(desc_path)
    if isinstance(raw_desc, dict):
        atomic_write_json(out_desc, {key: value for (key, value), why in zip(raw_desc.items(), desc_reasons,
                                                                              strict=True) if why is None})
    else:
        atomic_write_json(out_desc, [value for value, why in zip(raw_desc, desc_reasons, strict=True) if why is None])
    atomic_write_json(out_pope, [value for value, why in zip(read_json(pope_path), pope_reasons, strict=True)
                                 if why in (None, "correct")])

    answers = Counter(r.answer for r in kept_pope)
    stats: dict[str, Any] = {
        "source": "released",
        "files": {"desc_data": str(desc_path), "pope_data": str(pope_path), "training_desc_data": str(out_desc),
                  "training_pope_data": str(out_pope), "run_dir": str(run_dir)},
        "validation": {name: {k: v for k, v in report.to_dict().items()
                              if k not in ("missing_images", "unreadable_images")}
                       for name, report in reports.items()},
        "images": {"desc": len({r.image_id for r in desc}), "pope": len({r.image_id for r in pope}),
                   "total": len(used), "missing": len(missing),
                   "training": len({r.image_id for r in kept_desc} | {r.image_id for r in kept_pope})},
        "missing_images": list(missing.values()),
        "records": {
            "desc": {"total": len(desc), "kept": len(kept_desc),
                     "dropped": dict(sorted(Counter(w for w in desc_reasons if w is not None).items()))},
            "pope": {"total": len(pope), "kept": len(kept_pope),
                     "dropped": dict(sorted(Counter(w for w in pope_reasons if w is not None).items()))},
        },
        "rewrites": {"chosen_per_image": _mean(sum(len(r.chosen) for r in kept_desc), len(kept_desc)),
                     "rejected_per_image": _mean(sum(len(r.rejected) for r in kept_desc), len(kept_desc))},
        "qa": {"items": len(kept_pope), "yes": answers["yes"], "no": answers["no"],
               "model_correct": sum(1 for r in kept_pope if r.correct is True),
               "trainable": sum(1 for r in kept_pope if r.correct is not True)},
        "leaks": leaks,
        "pairs": pair_counts(kept_desc, kept_pope),
        "pairs_as_released": pair_counts(desc, pope),
    }
    atomic_write_json(run_dir / STATS_FILE, stats)
    return stats
