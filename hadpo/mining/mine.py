"""Mining end to end: select → describe → detect and correct → rewrite → QA conversion → model answers → files.

``mine(cfg)`` writes ``desc_data.json`` and ``pope_data.json`` in the released schema under
``<data_root>/hadpo/<name>/`` (with ``mining.json``: config, judge and describe protocols, file hashes), and every
step's output in ``run_dir``:

=====================  =======================================================================
selection.json         the chosen images, what was left out and why, leak counts
descriptions.jsonl     the model's descriptions (+ descriptions.protocol.json)
corrections.jsonl      per image: sentences, labels, corrected description (or none), status
rewrites.jsonl         per image with a pair: k style-matched rewrites of both sides
qa_items.jsonl         per image with a pair: questions with correct / incorrect responses
qa_answers.jsonl       the model's greedy answer to every question
steps.json             the settings of every step, checked on a rerun
data_stats.json        the counts (also returned)
=====================  =======================================================================

Every step resumes: the selection is reused, and each per-image file is appended chunk by chunk, so a rerun only
does the images (or questions) that have no record yet, plus those the judge failed on (no reply, or no usable
one: unusable replies are never cached, so they are asked afresh). A rerun with different settings for a step
that already has output is refused, naming the setting, instead of mixing two protocols in one file.

The judge is probed (:meth:`~hadpo.judge.base.ChatClient.probe`) before the model describes anything, when a
judge step has work left: a wrong key or model stops the run before the GPU time is spent. Its requests and
faults are recorded in ``data_stats.json`` under ``judge``.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hadpo.data.hadpo_files import read_desc_data, read_pope_data
from hadpo.data.images import ImageRef, preflight_images
from hadpo.data.layout import DataLayout
from hadpo.errors import ParamsError
from hadpo.eval.pope.score import parse_pope
from hadpo.io import append_jsonl, atomic_write_json, read_json, read_jsonl_tolerant, sha256_file
from hadpo.judge import ChatClient, JudgeContext, build_judge
from hadpo.manifest import environment
from hadpo.mining.annotations import ImageAnnotations, load_annotations
from hadpo.mining.config import DataConfig
from hadpo.mining.leak import load_eval_images
from hadpo.mining.prompts import annotation_text
from hadpo.mining.select import SELECTION_KEYS, select_images
from hadpo.mining.stats import STATS_FILE, judge_step_counts, mining_stats

SELECTION_FILE = "selection.json"
DESCRIPTIONS_FILE = "descriptions.jsonl"
CORRECTIONS_FILE = "corrections.jsonl"
REWRITES_FILE = "rewrites.jsonl"
QA_ITEMS_FILE = "qa_items.jsonl"
QA_ANSWERS_FILE = "qa_answers.jsonl"
STEPS_FILE = "steps.json"
MANIFEST_FILE = "mining.json"

#: Each step's output file(s) in the run folder, for the settings check.
_STEP_FILES = {
    "select": (SELECTION_FILE,),
    "describe": (DESCRIPTIONS_FILE,),
    "correct": (CORRECTIONS_FILE,),
    "rewrite": (REWRITES_FILE,),
    "qa": (QA_ITEMS_FILE,),
    "answer": (QA_ANSWERS_FILE,),
}


# ---- settings of each step --------------------------------------------------------------------------------------


def step_settings(cfg: DataConfig) -> dict[str, dict[str, Any]]:
    """What decides each step's output; a rerun must match it for every step that has output."""
    spec, prompt, j, d = cfg.model_spec, cfg.prompt_spec, cfg.judge_spec, cfg.decoding
    model = {"model": spec.model, "adapter": spec.adapter, "dtype": spec.dtype, "template": prompt.template,
             "image_mode": prompt.image_mode}
    judge: dict[str, Any] = {"judge": j.judge, "judge_seed": j.judge_seed, "judge_attempts": j.judge_attempts}
    if j.judge == "openai":
        judge.update(base_url=j.base_url, judge_model=j.judge_model, judge_temperature=j.judge_temperature,
                     judge_max_tokens=j.judge_max_tokens)
    decoding = {"num_beams": d.num_beams, "do_sample": d.do_sample, "max_new_tokens": d.max_new_tokens}
    if d.do_sample:
        decoding.update(sample_temperature=d.sample_temperature, sample_top_p=d.sample_top_p,
                        sample_seed=d.sample_seed)
    return {
        "select": {key: getattr(cfg, key) for key in SELECTION_KEYS},
        "describe": {**model, **decoding},
        "correct": dict(judge),
        "rewrite": {**judge, "rewrites": cfg.rewrites},
        "qa": {**judge, "qa_hallucinated": cfg.qa_hallucinated, "qa_present": cfg.qa_present,
               "qa_yes_example": cfg.qa_yes_example, "qa_no_example": cfg.qa_no_example},
        "answer": {**model, "qa_max_new_tokens": cfg.qa_max_new_tokens},
    }


def check_steps(run_dir: Path, settings: Mapping[str, Mapping[str, Any]]) -> None:
    """Refuse settings that differ from those a step with output in ``run_dir`` was made with; then record them."""
    path = run_dir / STEPS_FILE
    previous = read_json(path) if path.is_file() else {}
    for step, files in _STEP_FILES.items():
        has_output = any((run_dir / f).is_file() and (run_dir / f).stat().st_size > 0 for f in files)
        old = previous.get(step)
        if not has_output or old is None:
            continue
        for key, value in settings[step].items():
            if old.get(key) != value:
                raise ParamsError(
                    f"{run_dir}: step '{step}' was run with {key}={old.get(key)!r}, now {value!r}; use another "
                    f"run_dir or delete {', '.join(files)} and the files of the later steps"
                )
    atomic_write_json(path, {step: dict(values) for step, values in settings.items()})


# ---- backends ---------------------------------------------------------------------------------------------------


class _Model:
    """The mined model, loaded on first use only (a rerun with every description and answer present loads none)."""

    def __init__(self, cfg: DataConfig, loaded: Any = None) -> None:
        self.cfg = cfg
        self.loaded = loaded
        self.owned = False

    def get(self) -> Any:
        if self.loaded is None:
            from hadpo.models.loading import load_model

            self.loaded = load_model(self.cfg.model_spec)
            self.owned = True
        return self.loaded

    def release(self) -> None:
        if self.owned:
            self.loaded = None
            gc.collect()


# ---- resumable per-image steps ----------------------------------------------------------------------------------


def run_step(
    path: Path,
    ids: Sequence[str],
    work: Callable[[list[str]], list[dict[str, Any]]],
    *,
    chunk_size: int,
) -> dict[str, dict[str, Any]]:
    """Records of ``ids`` from ``path`` (JSON lines, the last record of an image wins), doing the missing ones.

    ``work`` gets a chunk of image ids and returns one record per id; each chunk is appended before the next
    starts. An image whose record failed (no reply, or none usable) is done again.
    """
    done = {str(r["image_id"]): r for r in read_jsonl_tolerant(path)}
    todo = step_todo(done, ids)
    for start in range(0, len(todo), chunk_size):
        records = work(todo[start : start + chunk_size])
        append_jsonl(path, records)
        done.update({str(r["image_id"]): r for r in records})
    return {i: done[i] for i in ids}


def step_todo(done: Mapping[str, Mapping[str, Any]], ids: Sequence[str]) -> list[str]:
    """The ids of ``ids`` without a record in ``done``, or whose record failed."""
    return [i for i in ids if i not in done or done[i].get("status") == "failed"]


def judge_work_left(run_dir: Path, ids: Sequence[str]) -> bool:
    """Whether any judge step would ask something: an image without a successful record in a step's file.

    Later steps only see images paired by the corrections, so they are checked against those.
    """
    corrections = {str(r["image_id"]): r for r in read_jsonl_tolerant(run_dir / CORRECTIONS_FILE)}
    if step_todo(corrections, ids):
        return True
    paired = [i for i in ids if corrections[i].get("pair")]
    for name in (REWRITES_FILE, QA_ITEMS_FILE):
        if step_todo({str(r["image_id"]): r for r in read_jsonl_tolerant(run_dir / name)}, paired):
            return True
    return False


def _select(cfg: DataConfig, annotations: Mapping[int, ImageAnnotations], run_dir: Path) -> dict[str, Any]:
    path = run_dir / SELECTION_FILE
    if path.is_file():
        return read_json(path)  # check_steps has made sure it was made with these settings
    selection = select_images(cfg, annotations, load_eval_images(cfg.data_root))
    atomic_write_json(path, selection)
    return selection


def _describe(cfg: DataConfig, images: Sequence[Mapping[str, Any]], model: _Model, run_dir: Path) -> dict[str, str]:
    from hadpo.models.describe import describe_images

    path = run_dir / DESCRIPTIONS_FILE
    ids = [str(im["image_id"]) for im in images]
    done = {str(r["image_id"]): r for r in read_jsonl_tolerant(path)}
    if any(i not in done for i in ids):
        records = describe_images([(str(im["image_id"]), im["path"]) for im in images], path, model.get(),
                                  cfg.decoding, cfg.prompt_spec, progress=cfg.progress)
        done = {str(r["image_id"]): r for r in records}
    return {i: str(done[i]["response"]) for i in ids}


# ---- outputs ----------------------------------------------------------------------------------------------------


def _check_output_folder(folder: Path, cfg: DataConfig) -> None:
    """Mining must not silently replace data it did not write (the released files share the layout)."""
    existing = [p.name for p in (folder / "desc_data.json", folder / "pope_data.json") if p.is_file()]
    if existing and not (folder / MANIFEST_FILE).is_file() and not cfg.overwrite_released:
        raise ParamsError(
            f"{folder} holds {', '.join(existing)} that mining did not write (released data?); choose another "
            "'name' or set overwrite_released: true"
        )


def _image_id(image_id: str) -> int | str:
    return int(image_id) if image_id.isdigit() else image_id


def assemble(
    ids: Sequence[str],
    corrections: Mapping[str, Mapping[str, Any]],
    rewrites: Mapping[str, Mapping[str, Any]],
    qa_items: Mapping[str, Mapping[str, Any]],
    answers: Mapping[str, Mapping[str, Any]],
) -> tuple[dict[str, dict[str, list[str]]], list[dict[str, Any]]]:
    """``(desc_data, pope_data)`` in the released schema, images in selection order."""
    from hadpo.mining.answer import answer_key

    desc: dict[str, dict[str, list[str]]] = {}
    pope: list[dict[str, Any]] = []
    for image_id in ids:
        if not corrections.get(image_id, {}).get("pair"):
            continue
        rewrite = rewrites.get(image_id)
        if rewrite is not None and rewrite["status"] == "ok":
            desc[image_id] = {"chosen": list(rewrite["chosen"]), "rejected": list(rewrite["rejected"])}
        qa = qa_items.get(image_id)
        if qa is None or qa["status"] != "ok":
            continue
        for index, item in enumerate(qa["items"]):
            model_answer = answers[answer_key(image_id, index)]["model_answer"]
            pope.append({
                "image_id": _image_id(image_id),
                "question": item["question"],
                "answer": item["answer"],
                "chosen": item["chosen"],
                "reject": item["reject"],
                "correct": parse_pope(model_answer) == item["answer"],
            })
    return desc, pope


def mine(cfg: DataConfig, *, client: ChatClient | None = None, loaded: Any = None) -> dict[str, Any]:
    """Mine preference data as configured; returns the stats (also in ``<run_dir>/data_stats.json``).

    ``client`` replaces the judge backend the config names and ``loaded`` (a LoadedModel) the model it names,
    e.g. to reuse a model already in memory; both are then recorded by what they report.
    """
    from hadpo.mining.answer import Question, answer_with_model
    from hadpo.mining.correct import Description, detect_and_correct
    from hadpo.mining.qa import QASource, convert_to_qa
    from hadpo.mining.rewrite import DescriptionPair, rewrite_pairs

    if cfg.source != "mine":
        raise ParamsError(f"mine() needs source: mine, got source: {cfg.source!r} (use prepare_released)")
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    desc_path, pope_path = DataLayout(cfg.data_root).hadpo_data(cfg.name)
    _check_output_folder(desc_path.parent, cfg)
    check_steps(run_dir, step_settings(cfg))

    annotations = load_annotations(cfg.data_root)
    selection = _select(cfg, annotations, run_dir)
    images = selection["images"]
    ids = [str(im["image_id"]) for im in images]
    # Pre-flight, before the judge is asked or the model loads: every selected image (described, then asked about).
    preflight_images([ImageRef(str(im["path"]), record=im["image_id"], field="path") for im in images],
                     source=run_dir / SELECTION_FILE, progress=cfg.progress, desc="check mining images")

    own_client = client is None
    judge = client if client is not None else build_judge(
        cfg.judge_spec, JudgeContext(task="mining", data_root=cfg.data_root, run_dir=cfg.run_dir,
                                     progress=cfg.progress))
    try:
        if judge_work_left(run_dir, ids):
            judge.probe()  # before the model describes anything
        model = _Model(cfg, loaded)
        descriptions = _describe(cfg, images, model, run_dir)
        notes = {i: annotation_text(annotations[int(i)]) if int(i) in annotations else "" for i in ids}
        ask = {"max_attempts": cfg.judge_spec.judge_attempts, "seed": cfg.judge_spec.judge_seed}
        corrections = run_step(
            run_dir / CORRECTIONS_FILE, ids,
            lambda chunk: detect_and_correct([Description(i, descriptions[i], notes[i]) for i in chunk], judge, **ask),
            chunk_size=cfg.chunk_size)
        paired = [i for i in ids if corrections[i]["pair"]]
        rewrites = run_step(
            run_dir / REWRITES_FILE, paired,
            lambda chunk: rewrite_pairs(
                [DescriptionPair(i, corrections[i]["positive"], corrections[i]["negative"]) for i in chunk], judge,
                k=cfg.rewrites, **ask),
            chunk_size=cfg.chunk_size)
        qa_items = run_step(
            run_dir / QA_ITEMS_FILE, paired,
            lambda chunk: convert_to_qa(
                [QASource(i, notes[i], corrections[i]["positive"], corrections[i]["negative"],
                          tuple(corrections[i]["sentences"]), tuple(corrections[i]["labels"])) for i in chunk],
                judge, max_hallucinated=cfg.qa_hallucinated, max_present=cfg.qa_present,
                yes_example=cfg.qa_yes_example, no_example=cfg.qa_no_example, **ask),
            chunk_size=cfg.chunk_size)
        judge_protocol = judge.protocol()
        judge_faults = judge.faults()
    finally:
        close = getattr(judge, "close", None)
        if own_client and close is not None:
            close()

    paths = {str(im["image_id"]): Path(im["path"]) for im in images}
    questions = [
        Question(i, index, item["question"], paths[i])
        for i in paired if qa_items[i]["status"] == "ok"
        for index, item in enumerate(qa_items[i]["items"])
    ]
    answers = answer_with_model(model.get, questions, run_dir / QA_ANSWERS_FILE, template=cfg.prompt_spec.template,
                                image_mode=cfg.prompt_spec.image_mode, max_new_tokens=cfg.qa_max_new_tokens,
                                batch_size=cfg.decoding.batch_size, progress=cfg.progress) if questions else {}
    model.release()

    desc_data, pope_data = assemble(ids, corrections, rewrites, qa_items, answers)
    atomic_write_json(desc_path, desc_data)
    atomic_write_json(pope_path, pope_data)
    describe_protocol = run_dir / f"{Path(DESCRIPTIONS_FILE).stem}.protocol.json"
    atomic_write_json(desc_path.parent / MANIFEST_FILE, {
        "run_dir": str(run_dir),
        "config": cfg.to_dict(),
        "judge": judge_protocol,
        "describe": read_json(describe_protocol) if describe_protocol.is_file() else None,
        "files": {p.name: sha256_file(p) for p in (desc_path, pope_path)},
        "environment": environment(),
    })

    # Read the outputs back with the trainer's readers: what the stats count is what training will see.
    stats = mining_stats(selection, descriptions, corrections, rewrites, qa_items, read_desc_data(desc_path),
                         read_pope_data(pope_path), rewrites_asked=cfg.rewrites)
    stats["files"] = {"desc_data": str(desc_path), "pope_data": str(pope_path), "run_dir": str(run_dir)}
    stats["judge"] = {**{k: judge_protocol.get(k) for k in ("backend", "model")},
                      "calls": judge_faults, "steps": judge_step_counts(corrections, rewrites, qa_items)}
    atomic_write_json(run_dir / STATS_FILE, stats)
    return stats
