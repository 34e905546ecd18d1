"""A small shapes world with preference files in the released HA-DPO schema, for trainer tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def write_preference_files(data_root: Path, n_desc: int = 12, n_qa: int = 8) -> tuple[Path, Path]:
    """desc_data.json / pope_data.json built from the world's captions: chosen = truthful, rejected = with an
    absent object appended (the shape of HA-DPO's data, not its mining)."""
    records = json.loads((data_root / "llava" / "llava_instruct.json").read_text())
    desc: dict[str, dict[str, list[str]]] = {}
    pope: list[dict] = []
    for rec in records:
        image_id = rec["image"].split("/")[-1].split(".")[0]
        answer = rec["conversations"][1]["value"]
        if rec["kind"] == "desc" and len(desc) < n_desc:
            desc[image_id] = {
                "chosen": [answer, answer.replace("There is", "I can see")],
                "rejected": [answer + " There is a white triangle on the right.",
                             answer + " There is a cyan cross in the middle."],
            }
        elif rec["kind"] == "qa_no" and len(pope) < n_qa:
            question = rec["conversations"][0]["value"].split("\n", 1)[1]
            name = question[len("Is there a "):-len(" in the image?")]
            pope.append({"image_id": int(image_id), "question": question, "answer": "no", "chosen": answer,
                         "reject": f"Yes, there is a {name} in the image.", "correct": False})
    folder = data_root / "hadpo" / "llava-v1.5"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "desc_data.json").write_text(json.dumps(desc))
    (folder / "pope_data.json").write_text(json.dumps(pope))
    return folder / "desc_data.json", folder / "pope_data.json"


@pytest.fixture(scope="session")
def train_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Data root of a 60-image shapes world with preference files."""
    from hadpo.world.config import WorldConfig
    from hadpo.world.generate import generate_world

    root = tmp_path_factory.mktemp("train_world") / "data"
    generate_world(root, WorldConfig(seed=3, train_images=60, pope_images=20, shr_images=10))
    write_preference_files(root)
    return root
