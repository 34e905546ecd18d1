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


def build_untrained_model(cfg: BaseModelConfig) -> str:
    """The untrained tiny LLaVA (tokenizer trained on every text of the world); skipped when it exists."""
    from hadpo.models.tiny import TinyLlavaConfig, build_tiny_llava
    from hadpo.world.load import tokenizer_corpus

    out = Path(cfg.model_dir) / "untrained"
    if not (out / "config.json").is_file():
        build_tiny_llava(out, tokenizer_corpus(cfg.data_root), TinyLlavaConfig(seed=cfg.world.seed))
    return str(out)


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
    ), source="notebook 00's SFT")


def train_base_model(cfg: BaseModelConfig, echo: Callable[[str], Any] | None = print) -> dict[str, Any]:
    """SFT the tiny LLaVA in a child process (skipped when trained with the same settings)."""
    from hadpo.train.stage import launch_training

    build_untrained_model(cfg)
    return launch_training(sft_config(cfg), echo=echo)


def _pope(cfg: BaseModelConfig, eval_dir: Path) -> dict[str, Any]:
    from hadpo.eval.pope.config import PopeConfig
    from hadpo.eval.pope.stage import run_pope

    pope_cfg = PopeConfig.from_dict(dict(
        set="all", data_root=cfg.data_root, model=cfg.base_model, run_dir=str(eval_dir / "pope"),
        batch_size=cfg.eval_batch_size, max_new_tokens=24, limit=cfg.eval_limit, device="cpu", progress=False,
        template=cfg.prompt_spec.template, image_mode=cfg.prompt_spec.image_mode,
    ))
    return run_pope(pope_cfg)


def _shr(cfg: BaseModelConfig, eval_dir: Path) -> tuple[dict[str, Any], Path]:
    from hadpo.eval.shr.config import ShrConfig
    from hadpo.eval.shr.stage import run_shr

    shr_cfg = ShrConfig.from_dict(dict(
        data_root=cfg.data_root, model=cfg.base_model, run_dir=str(eval_dir / "shr"), judge="oracle",
        num_beams=cfg.eval_num_beams, max_new_tokens=96, batch_size=cfg.eval_batch_size, limit=cfg.eval_limit,
        device="cpu", progress=False, template=cfg.prompt_spec.template, image_mode=cfg.prompt_spec.image_mode,
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
    """The behaviour check as a table: each target, what was measured, and whether it is met."""
    import pandas as pd

    rows = [{"measure": k, "target": v["target"], "measured": round(v["measured"], 4), "met": v["met"]}
            for k, v in report["targets"].items()]
    for key in ("pope_random_yes_ratio", "pope_adversarial_yes_ratio", "hallucinated_sentence_share",
                "wrong_column_share"):
        rows.append({"measure": key, "target": "(reported)", "measured": round(report[key], 4), "met": None})
    return pd.DataFrame(rows)


def run(cfg: BaseModelConfig) -> dict[str, Any]:
    """The whole stage: world, untrained model, SFT, behaviour check; returns the behaviour report."""
    build_world(cfg)
    train_base_model(cfg)
    return measure_base_model(cfg)
