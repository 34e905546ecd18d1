"""Batched POPE answering on the tiny LLaVA: same answers as HA-DPO's batch-1 loop, images encoded once."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from hadpo.data.layout import DataLayout
from hadpo.data.pope_files import PopeQuestion, read_pope_questions
from hadpo.eval.pope.infer import (
    PopeAnswerer,
    answer_questions,
    group_by_image,
    question_prompt,
    shard,
)
from hadpo.models.image import prepare_image
from hadpo.models.loading import LoadedModel, load_model
from hadpo.models.prompts import SHORT_ANSWER_SUFFIX, get_template
from hadpo.specs import ModelSpec

MAX_NEW = 6


@pytest.fixture(scope="module")
def loaded(varied_model_dir: Path) -> LoadedModel:
    return load_model(ModelSpec(model=str(varied_model_dir), device="cpu"))


@pytest.fixture(scope="module")
def questions(pope_root: Path) -> list[PopeQuestion]:
    return read_pope_questions(DataLayout(pope_root).pope_file("adversarial"))


def _loader(root: Path):
    folder = DataLayout(root).coco_images
    return lambda q: Image.open(folder / q.image)


def _one_by_one(loaded: LoadedModel, questions: list[PopeQuestion], root: Path, variant: str = "raw") -> list[str]:
    """HA-DPO's loop: the processor per question, the image re-encoded each time, batch 1, greedy."""
    import torch

    template = get_template("llava_v1")
    mean = loaded.processor.image_processor.image_mean
    out = []
    for q in questions:
        image = prepare_image(_loader(root)(q), "pad", mean)
        inputs = loaded.processor(images=[image], text=[template.prompt(question_prompt(q.text, variant))],
                                  return_tensors="pt")
        with torch.inference_mode():
            ids = loaded.model.generate(**inputs, do_sample=False, max_new_tokens=MAX_NEW)
        new = ids[0, inputs["input_ids"].shape[1]:]
        out.append(loaded.tokenizer.decode(new, skip_special_tokens=True).strip())
    return out


def _batched(answerer: PopeAnswerer, questions: list[PopeQuestion], root: Path, batch_size: int) -> list[str]:
    records: list[dict] = []
    answer_questions(answerer, questions, _loader(root), batch_size=batch_size, on_batch=records.extend)
    by_id = {r["question_id"]: r["answer"] for r in records}
    return [by_id[q.question_id] for q in questions]


@pytest.mark.parametrize("variant", ["raw", "short"])
def test_batched_answers_equal_the_batch_1_loop(
    loaded: LoadedModel, questions: list[PopeQuestion], pope_root: Path, variant: str
) -> None:
    answerer = PopeAnswerer(loaded, prompt_variant=variant, max_new_tokens=MAX_NEW)
    reference = _one_by_one(loaded, questions, pope_root, variant)
    assert len(set(reference)) > 3  # the model's answers really depend on image and question
    assert _batched(answerer, questions, pope_root, batch_size=5) == reference
    assert _batched(answerer, questions, pope_root, batch_size=24) == reference


def test_prompt_ids_match_the_processor(loaded: LoadedModel, pope_root: Path, questions: list[PopeQuestion]) -> None:
    answerer = PopeAnswerer(loaded, max_new_tokens=MAX_NEW)
    q = questions[0]
    text = answerer.prompt(q.text)
    mean = loaded.processor.image_processor.image_mean
    ref = loaded.processor(images=[prepare_image(_loader(pope_root)(q), "pad", mean)], text=[text],
                           return_tensors="pt")["input_ids"][0].tolist()
    expanded = text.replace("<image>", answerer.image_token * loaded.image_tokens_per_image)
    assert loaded.tokenizer(expanded)["input_ids"] == ref
    assert text.endswith(f"<image>\n{q.text} ASSISTANT:")
    assert question_prompt("Is there a cat in the image?", "short").endswith("\n" + SHORT_ANSWER_SUFFIX)


def test_each_image_goes_through_the_vision_tower_once(
    loaded: LoadedModel, questions: list[PopeQuestion], pope_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answerer = PopeAnswerer(loaded, max_new_tokens=2)
    seen: list[int] = []
    encode = answerer.encode_images
    monkeypatch.setattr(answerer, "encode_images", lambda images: (seen.append(len(images)), encode(images))[1])
    # batch 4 splits each image's 6 questions over two batches: the features must be reused, not recomputed
    n = len(_batched(answerer, questions, pope_root, batch_size=4))
    assert n == len(questions) and sum(seen) == len({q.image for q in questions})


def test_answers_skip_special_tokens(loaded: LoadedModel, questions: list[PopeQuestion], pope_root: Path) -> None:
    answers = _batched(PopeAnswerer(loaded, max_new_tokens=MAX_NEW), questions, pope_root, batch_size=8)
    assert not any(tok in a for a in answers for tok in ("</s>", "<pad>", "<image>", "<s>"))


def test_grouping_and_sharding_keep_images_whole(questions: list[PopeQuestion]) -> None:
    shuffled = questions[::2] + questions[1::2]
    groups = group_by_image(shuffled)
    assert [len(g) for g in groups] == [6, 6, 6, 6]
    parts = [shard(groups, r, 3) for r in range(3)]
    assert sum(len(p) for p in parts) == 4 and [g for p in parts for g in p] == groups
    assert all(len({q.image for q in g}) == 1 for p in parts for g in p)
