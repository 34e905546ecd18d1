"""Where the kit expects its input files under a data root (the original HA-DPO ``ha_dpo/data`` layout).

The shapes world writes exactly this layout, and real data placed in it runs through the same code::

    <data_root>/
      VG/image_data.json                 Visual Genome image records (image_id, url, width, height, coco_id)
      VG/objects.json                    per-image object annotations
      VG/region_descriptions.json        per-image region phrases with boxes (SHR judge context)
      VG/VG_100K/<id>.<ext>              images; the local path is the url's last two components
      coco2014/val2014/COCO_val2014_<012d>.<ext>
      coco2014/annotations/instances_val2014.json  coco2014/annotations/captions_val2014.json (CHAIR)
      POPE/output/coco/coco_pope_{random,popular,adversarial}.json
      shr/val_images_final.json  shr/shr_factual_part1.jsonl  shr/shr_factual_part2.jsonl
      AMBER/data/annotations.json  AMBER/data/query/query_*.json  AMBER/data/relation.json
      AMBER/data/safe_words.txt  AMBER/image/AMBER_<id>.jpg
      MMHal-Bench/response_template.json  MMHal-Bench/images/<file>   (the 96 questions and their images)
      hadpo/<model>/desc_data.json  hadpo/<model>/pope_data.json   (released HA-DPO preference data)
      llava/llava_instruct.json          (shapes world only: the base model's SFT conversations)
      world.json                         (shapes world only: seed, categories, splits)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

POPE_SETS = ("random", "popular", "adversarial")


def canonical_pope_set(name: str) -> str:
    """Map a POPE set name to its file stem: ``adv`` (HA-DPO's flag) is accepted for ``adversarial``."""
    aliases = {"adv": "adversarial", "pop": "popular", "rand": "random"}
    key = aliases.get(name, name)
    if key not in POPE_SETS:
        raise ValueError(f"unknown POPE set {name!r}; expected one of random, popular, adv/adversarial")
    return key


@dataclass(frozen=True)
class DataLayout:
    """Paths of every input file under one data root."""

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    @property
    def vg_dir(self) -> Path:
        return self.root / "VG"

    @property
    def image_data(self) -> Path:
        return self.vg_dir / "image_data.json"

    @property
    def objects(self) -> Path:
        return self.vg_dir / "objects.json"

    @property
    def region_descriptions(self) -> Path:
        return self.vg_dir / "region_descriptions.json"

    @property
    def coco_images(self) -> Path:
        return self.root / "coco2014" / "val2014"

    @property
    def coco_instances(self) -> Path:
        return self.root / "coco2014" / "annotations" / "instances_val2014.json"

    @property
    def coco_captions(self) -> Path:
        return self.root / "coco2014" / "annotations" / "captions_val2014.json"

    @property
    def amber_dir(self) -> Path:
        return self.root / "AMBER"

    @property
    def amber_data(self) -> Path:
        return self.amber_dir / "data"

    @property
    def amber_images(self) -> Path:
        return self.amber_dir / "image"

    @property
    def mmhal_dir(self) -> Path:
        return self.root / "MMHal-Bench"

    @property
    def mmhal_questions(self) -> Path:
        return self.mmhal_dir / "response_template.json"

    @property
    def mmhal_images(self) -> Path:
        return self.mmhal_dir / "images"

    @property
    def pope_dir(self) -> Path:
        return self.root / "POPE" / "output" / "coco"

    def pope_file(self, pope_set: str) -> Path:
        """The POPE question file of a set (``random``, ``popular``, ``adv``/``adversarial``)."""
        return self.pope_dir / f"coco_pope_{canonical_pope_set(pope_set)}.json"

    @property
    def shr_dir(self) -> Path:
        return self.root / "shr"

    @property
    def shr_val_images(self) -> Path:
        return self.shr_dir / "val_images_final.json"

    @property
    def shr_factual(self) -> tuple[Path, Path]:
        return (self.shr_dir / "shr_factual_part1.jsonl", self.shr_dir / "shr_factual_part2.jsonl")

    def hadpo_data(self, model: str = "llava-v1.5") -> tuple[Path, Path]:
        """``(desc_data.json, pope_data.json)`` of the released (or mined) preference data."""
        folder = self.root / "hadpo" / model
        return (folder / "desc_data.json", folder / "pope_data.json")

    @property
    def sft_conversations(self) -> Path:
        return self.root / "llava" / "llava_instruct.json"

    @property
    def world_meta(self) -> Path:
        return self.root / "world.json"

    def vg_image_path(self, url: str) -> Path:
        """Local path of a VG image from its url: ``VG/<second-to-last component>/<file name>``."""
        parts = url.rstrip("/").split("/")
        if len(parts) < 2:
            raise ValueError(f"VG url {url!r} has fewer than two path components")
        return self.vg_dir / parts[-2] / parts[-1]
