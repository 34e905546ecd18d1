"""The shapes world's CHAIR files: its benchmark images as a COCO val set, with instances, captions and a synonym
table, under ``<data_root>/chair/`` (``instances.json``, ``captions.json``, ``synonyms.txt``, ``images/``).

The instances name each image's objects (one annotation per object, the world's boxes); the one caption per image
states exactly what is there, as a COCO caption would; the synonym table names each category by its full name
("red circle") and by its shape word alone ("circle"), which is unique to it in the world's palette.
"""

from __future__ import annotations

from pathlib import Path

from hadpo.eval.chair.synonyms import category_table
from hadpo.io import atomic_write_json, atomic_write_text
from hadpo.world.bench import BenchWorld

#: The folder under the data root.
CHAIR_DIR = "chair"


def chair_files(root: str | Path) -> dict[str, Path]:
    """Where the world's CHAIR files lie under ``root``: instances, captions, synonyms and the image folder."""
    folder = Path(root) / CHAIR_DIR
    return {"instances": folder / "instances.json", "captions": folder / "captions.json",
            "synonyms": folder / "synonyms.txt", "images_dir": folder / "images"}


def image_file_name(coco_id: int) -> str:
    """The COCO val2014 file name of a benchmark image."""
    return f"COCO_val2014_{coco_id:012d}.png"


def write_chair_world(world: BenchWorld) -> list[Path]:
    """Write the CHAIR files of ``world``'s benchmark images; returns the paths written."""
    files = chair_files(world.root)
    files["images_dir"].mkdir(parents=True, exist_ok=True)
    ids = {c.name: c.id for c in world.categories}
    images, annotations, captions, written = [], [], [], []
    for image in world.images:
        name = image_file_name(image.coco_id)
        path = files["images_dir"] / name
        path.write_bytes(image.png)
        written.append(path)
        images.append({"id": image.coco_id, "file_name": name, "width": image.width, "height": image.height})
        for obj in image.objects:
            annotations.append({"id": len(annotations) + 1, "image_id": image.coco_id, "category_id": ids[obj.name],
                                "bbox": [float(v) for v in obj.box], "area": float(obj.box[2] * obj.box[3]),
                                "iscrowd": 0})
        captions.append({"id": len(captions) + 1, "image_id": image.coco_id, "caption": image.caption})
    categories = [{"id": c.id, "name": c.name, "supercategory": c.shape} for c in world.categories]
    atomic_write_json(files["instances"], {"images": images, "annotations": annotations, "categories": categories})
    atomic_write_json(files["captions"], {"images": images, "annotations": captions})
    table = category_table([c.name for c in world.categories], {c.name: [c.shape] for c in world.categories})
    atomic_write_text(files["synonyms"], "# The shapes world's categories: the full name and the shape word.\n"
                      + table.to_text())
    return [*written, files["instances"], files["captions"], files["synonyms"]]
