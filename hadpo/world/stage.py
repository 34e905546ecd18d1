"""Stage 00: build the shapes world and train the tiny LLaVA that stands in for LLaVA-1.5, then measure it.

The embedded default is only worth something if its base model behaves like LLaVA-1.5 in miniature: it
describes images and answers existence questions well, and it hallucinates objects that usually co-occur with
what it sees. This module generates the world, builds an untrained tiny LLaVA (tokenizer trained on the
world's text), trains it with the kit's own trainer (a child process, like every training run) through the
world's own objective, and measures it with the kit's POPE and SHR code (oracle judge).

The conditions a model this small needs, and that are not part of HA-DPO (a short per-patch classification
of the vision tower standing in for CLIP pretraining, then frozen; an up-weighted loss on the Yes/No token of
existence questions; a matching weight on descriptions), are the options of that objective
(:class:`~hadpo.world.config.ShapesSftOptions`), registered as ``shapes_sft``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hadpo.display import shown_value, table
from hadpo.io import atomic_write_json, read_json
from hadpo.world.config import BaseModelConfig

NOTEBOOK = "00_world"
Config = BaseModelConfig

BEHAVIOUR_FILE = "base_behaviour.json"
#: The world's SFT objective (entry point group hadpo.objectives).
SFT_OBJECTIVE = "shapes_sft"

#: What the base model must show to stand in for LLaVA-1.5: it answers existence questions well, says "yes" more
#: often to absent co-occurring objects, and its descriptions mention absent objects, nearly all of them partners.
TARGETS = {
    "pope_random_accuracy": ("≥", 0.85),
    "adversarial_minus_random_yes_ratio": ("≥", 0.10),
    "absent_object_sentence_share": ("≥", 0.10),
    "partner_share": ("≥", 0.90),
}
#: The behaviour measures as notebook 00's table names them (all shares, shown in %; the difference in points).
MEASURE_LABELS = {
    "pope_random_accuracy": "POPE random: accuracy",
    "adversarial_minus_random_yes_ratio": "POPE yes-ratio: adversarial minus random (points)",
    "absent_object_sentence_share": "Description sentences naming an absent object",
    "partner_share": "… of those, naming the absent partner of a present object",
    "pope_random_yes_ratio": "POPE random: yes-ratio",
    "pope_adversarial_yes_ratio": "POPE adversarial: yes-ratio",
    "hallucinated_sentence_share": "Description sentences judged hallucinated",
    "wrong_column_share": "Description sentences with a present object in the wrong column",
}
#: The SFT corpus' conversation kinds (``world.json`` counts) as the world table names them.
_SFT_KINDS = {
    "desc": "SFT conversations: descriptions",
    "qa_yes": "SFT conversations: question about a present object",
    "qa_no": "SFT conversations: question about a random absent object",
    "qa_adv": "SFT conversations: question about an absent partner",
}


def build_world(cfg: BaseModelConfig) -> dict[str, Any]:
    """Generate the world (skipped when it exists with the same settings) and build its POPE question files."""
    from hadpo.data.layout import DataLayout
    from hadpo.eval.pope.build import build_pope_files
    from hadpo.eval.pope.config import PopeBuildConfig
    from hadpo.world.generate import generate_world

    generate_world(cfg.data_root, cfg.world)
    layout = DataLayout(cfg.data_root)
    if not all(layout.pope_file(s).is_file() for s in ("random", "popular", "adversarial")):
        build_pope_files(PopeBuildConfig(data_root=cfg.data_root, n_images=cfg.world.pope_images,
                                         seed=cfg.world.seed))
    meta = read_json(layout.world_meta)
    return {"data_root": cfg.data_root, "counts": meta.get("counts"), "pairs": meta.get("pairs")}


def world_table(world: dict[str, Any]):
    """What :func:`build_world` made, as a table of counts, the co-occurrence pairs in the caption."""
    counts = world.get("counts") or {}
    rows = [{"What": f"{split.upper() if split in ('pope', 'shr') else split.capitalize()} images", "Count": n}
            for split, n in (counts.get("images") or {}).items()]
    rows.append({"What": "Objects placed", "Count": counts.get("objects", 0)})
    rows += [{"What": _SFT_KINDS.get(kind, f"SFT conversations: {kind}"), "Count": n}
             for kind, n in (counts.get("sft") or {}).items()]
    pairs = "; ".join(" + ".join(p) for p in world.get("pairs") or [])
    return table(rows, caption=f"Co-occurrence pairs: {pairs}" if pairs else None)


def build_untrained_model(cfg: BaseModelConfig) -> str:
    """The untrained tiny LLaVA (tokenizer trained on every text of the world); skipped when it exists.

    With ``cfg.rerun.force`` the earlier model and behaviour report are first moved into
    ``<model_dir>/replaced-<UTC time>/`` (:func:`hadpo.rerun.set_aside`) and the model is built again; the SFT and
    the behaviour check then redo theirs (the ``force`` of the configs they build).
    """
    from hadpo.models.tiny import TinyLlavaConfig, build_tiny_llava
    from hadpo.progress import quiet_library_bars
    from hadpo.rerun import set_aside
    from hadpo.world.load import tokenizer_corpus

    out = Path(cfg.model_dir) / "untrained"
    if cfg.rerun.force:
        set_aside(cfg.model_dir, [out.name, BEHAVIOUR_FILE])
    if not (out / "config.json").is_file():
        with quiet_library_bars():  # transformers' "Writing model shards" bar, on stderr
            build_tiny_llava(out, tokenizer_corpus(cfg.data_root), TinyLlavaConfig(seed=cfg.world.seed))
    return str(out)


def _parameter_count(model_dir: Path) -> int:
    """Parameters in a model folder's safetensors files, from their headers (no weights read)."""
    import json
    import math
    import struct

    total = 0
    for path in sorted(model_dir.glob("*.safetensors")):
        with path.open("rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(size))
        total += sum(math.prod(v["shape"]) for k, v in header.items() if k != "__metadata__")
    return total


def model_table(model_dir: str):
    """A model folder's geometry in one row: parameters, vocabulary, layers and widths, image tokens per image."""
    folder = Path(model_dir)
    config = read_json(folder / "config.json")
    text, vision = config.get("text_config", {}), config.get("vision_config", {})
    return table([{
        "Model folder": shown_value(str(folder.absolute())),
        "Parameters": _parameter_count(folder),
        "Vocabulary": text.get("vocab_size"),
        "Language model (layers × width)": f"{text.get('num_hidden_layers')} × {text.get('hidden_size')}",
        "Vision tower (layers × width)": f"{vision.get('num_hidden_layers')} × {vision.get('hidden_size')}",
        "Image tokens per image": config.get("image_seq_length"),
    }], formats={"Parameters": "{:,}"})


def sft_config(cfg: BaseModelConfig):
    """The trainer's configuration of the base model's SFT (the recipe that worked in the trials on 2 cores)."""
    from hadpo.train.config import TrainConfig

    return TrainConfig.from_dict(dict(
        objective=SFT_OBJECTIVE, objective_options=cfg.sft_options.to_dict(),
        model=str(Path(cfg.model_dir) / "untrained"), data_root=cfg.data_root,
        output_dir=str(Path(cfg.model_dir) / "sft"), template=cfg.prompt_spec.template,
        image_mode=cfg.prompt_spec.image_mode, learning_rate=cfg.sft_learning_rate, lr_scheduler="cosine",
        warmup_ratio=1 / 30, weight_decay=0.01, adam_beta2=0.98, max_grad_norm=1.0, num_epochs=cfg.sft_epochs,
        max_steps=cfg.sft_max_steps, per_device_batch_size=cfg.sft_batch_size, seed=cfg.world.seed,
        launcher="python", deepspeed_config=None, device="cpu", save_steps=200, disable_dropout=True,
        force=cfg.rerun.force,
    ), source="notebook 00's SFT")


def train_base_model(cfg: BaseModelConfig, echo: Callable[[str], Any] | None = print) -> dict[str, Any]:
    """SFT the tiny LLaVA in a child process (skipped when trained with the same settings; redone with force)."""
    from hadpo.train.stage import launch_training

    # Builds the untrained model only if it is missing: with force, build_untrained_model(cfg) has rebuilt it.
    build_untrained_model(cfg.replace(force=False))
    return launch_training(sft_config(cfg), echo=echo)


def training_table(summary: dict[str, Any]):
    """The SFT run's summary (:func:`train_base_model`) as a one-row table."""
    from hadpo.train.stage import summary_table

    return summary_table(summary)


def _pope(cfg: BaseModelConfig, eval_dir: Path) -> dict[str, Any]:
    from hadpo.eval.pope.config import PopeConfig
    from hadpo.eval.pope.stage import run_pope

    pope_cfg = PopeConfig.from_dict(dict(
        set="all", data_root=cfg.data_root, model=cfg.base_model, run_dir=str(eval_dir / "pope"),
        batch_size=cfg.eval_batch_size, max_new_tokens=24, limit=cfg.eval_limit, device="cpu", progress=False,
        template=cfg.prompt_spec.template, image_mode=cfg.prompt_spec.image_mode, force=cfg.rerun.force,
    ))
    return run_pope(pope_cfg)


def _shr(cfg: BaseModelConfig, eval_dir: Path) -> tuple[dict[str, Any], Path]:
    from hadpo.eval.shr.config import ShrConfig
    from hadpo.eval.shr.stage import run_shr

    shr_cfg = ShrConfig.from_dict(dict(
        data_root=cfg.data_root, model=cfg.base_model, run_dir=str(eval_dir / "shr"), judge="oracle",
        num_beams=cfg.eval_num_beams, max_new_tokens=96, batch_size=cfg.eval_batch_size, limit=cfg.eval_limit,
        device="cpu", progress=False, template=cfg.prompt_spec.template, image_mode=cfg.prompt_spec.image_mode,
        force=cfg.rerun.force,
    ))
    return run_shr(shr_cfg), Path(shr_cfg.run_dir)


def sentence_breakdown(judgement_path: Path, data_root: str) -> dict[str, Any]:
    """Split the judged description sentences by what is wrong with them.

    The oracle labels a sentence a hallucination when it names an object the image lacks *or* puts a present
    object in the wrong column. The first kind is object hallucination, what HA-DPO targets; of those, the ones
    naming the absent co-occurrence partner of a present object show the bias the world plants. Wrong columns
    are reported on their own.
    """
    from hadpo.world.load import load_world
    from hadpo.world.text import parse_sentence

    world = load_world(data_root)
    names = world.category_names
    sentences = absent = partners = wrong_column = 0
    for run in read_json(judgement_path).values():
        for image_id, record in run.items():
            present = set(world.images[int(image_id)].present)
            for item in record.get("judgement") or []:
                sentences += 1
                if item.get("classification") != "hallucination":
                    continue
                claim = parse_sentence(item["model_response"], names)
                if claim is None or claim[0] in present:
                    wrong_column += 1
                    continue
                absent += 1
                partners += any(world.partner(p) == claim[0] for p in present)
    return {
        "sentences": sentences,
        "absent_object_sentences": absent,
        "absent_object_sentence_share": absent / sentences if sentences else 0.0,
        "partner_sentences": partners,
        "partner_share": partners / absent if absent else 0.0,
        "wrong_column_sentences": wrong_column,
        "wrong_column_share": wrong_column / sentences if sentences else 0.0,
    }


def measure_base_model(cfg: BaseModelConfig) -> dict[str, Any]:
    """POPE (three sets) and SHR-style descriptions judged by the oracle; writes ``base_behaviour.json``."""
    eval_dir = Path(cfg.model_dir) / "eval"
    pope = _pope(cfg, eval_dir)
    shr, shr_dir = _shr(cfg, eval_dir)
    run1 = shr["run1"]
    report = {
        "model": cfg.base_model,
        "seed": cfg.world.seed,
        "pope_random_accuracy": pope["random"]["accuracy"],
        "pope_random_yes_ratio": pope["random"]["yes_ratio"],
        "pope_popular_yes_ratio": pope["popular"]["yes_ratio"],
        "pope_adversarial_yes_ratio": pope["adversarial"]["yes_ratio"],
        "adversarial_minus_random_yes_ratio": pope["adversarial"]["yes_ratio"] - pope["random"]["yes_ratio"],
        "hallucinated_sentence_share": run1["hal_sents_ratio"],
        "sentences_per_image": run1["sents_per_image"],
        **sentence_breakdown(shr_dir / "judgement.json", cfg.data_root),
        "pope": pope,
    }
    report["targets"] = {
        key: {"target": f"{op} {value}", "measured": report[key], "met": report[key] >= value}
        for key, (op, value) in TARGETS.items()
    }
    atomic_write_json(Path(cfg.model_dir) / BEHAVIOUR_FILE, report)
    return report


def behaviour_table(report: dict[str, Any]):
    """The behaviour check as a table: each target, what was measured, and whether it is met (shares in %)."""
    rows = []
    for key, (op, value) in TARGETS.items():
        met = report["targets"][key]["met"]
        rows.append({"Measure": MEASURE_LABELS[key], "Target (%)": f"{op} {100 * value:g}",
                     "Measured (%)": 100 * report[key], "Met": "yes" if met else "NO"})
    for key in ("pope_random_yes_ratio", "pope_adversarial_yes_ratio", "hallucinated_sentence_share",
                "wrong_column_share"):
        rows.append({"Measure": MEASURE_LABELS[key], "Target (%)": "(reported)", "Measured (%)": 100 * report[key],
                     "Met": ""})
    return table(rows, formats={"Measured (%)": "{:.1f}"})


def run(cfg: BaseModelConfig) -> dict[str, Any]:
    """The whole stage: world, untrained model, SFT, behaviour check; returns the behaviour report."""
    build_world(cfg)
    build_untrained_model(cfg)
    train_base_model(cfg)
    return measure_base_model(cfg)
