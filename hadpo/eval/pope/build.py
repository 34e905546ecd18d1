"""Build the three POPE question sets (random, popular, adversarial) from COCO-style object annotations.

The procedure is POPE's (Li et al. 2023, ``RUCAIBox/POPE``):

1. keep the images annotated with at least ``sample_num`` (3) distinct categories and draw ``n_images`` of them
   with a seeded sample;
2. count, over the drawn images only, how often each category occurs (``popular``) and how often each pair
   of categories occurs together (``adversarial``);
3. per image, take its first ``sample_num`` categories in annotation order as the "yes" objects; after each one
   add a "no" object that is neither in the image nor already asked about, chosen
   - ``random``: uniformly among the categories seen in the drawn images,
   - ``popular``: the most frequent such category,
   - ``adversarial``: the category most often co-occurring with that "yes" object,
   falling back to a uniform choice when the ranked list is exhausted;
4. number the questions 1.. in that order, so each image has yes/no/yes/no/yes/no.

The "yes" questions therefore come out identical across the three sets, which is why recall is equal across
sets in every POPE table. Ties in the frequency rankings keep first-seen order (Python's stable sort, as POPE).
The question text follows the released files: "Is there a {object} in the image?", with "an" before an object
whose name starts with a vowel letter ("Is there an umbrella in the image?", but "Is there a scissors ...").
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hadpo.data.coco import read_coco_instances
from hadpo.data.layout import POPE_SETS, DataLayout
from hadpo.data.pope_files import PopeQuestion
from hadpo.errors import DataError
from hadpo.eval.pope.config import PopeBuildConfig
from hadpo.io import atomic_write_json, atomic_write_jsonl, sha256_file

DEFAULT_TEMPLATE = "Is there a {} in the image?"
_VOWELS = ("a", "e", "i", "o", "u")


@dataclass(frozen=True)
class ImageObjects:
    """An image (its file name, as POPE's ``image`` field) and its distinct annotated categories, in order."""

    image: str
    objects: tuple[str, ...]


def question_text(obj: str, template: str = DEFAULT_TEMPLATE) -> str:
    """The question for ``obj``: the template's article becomes "an" before a vowel letter, as in POPE's files."""
    if obj[:1].lower() in _VOWELS and " a {}" in template:
        template = template.replace(" a {}", " an {}", 1)
    return template.format(obj)


def coco_image_objects(instances_path: str | Path) -> list[ImageObjects]:
    """Every image of a COCO instances file with its distinct categories (first-annotation order), file order."""
    instances = read_coco_instances(instances_path)
    by_image = instances.objects_by_image()
    return [ImageObjects(image.file_name, tuple(by_image[image.image_id])) for image in instances.images]


def build_pope_sets(
    images: Sequence[ImageObjects],
    *,
    n_images: int,
    seed: int,
    sample_num: int = 3,
    template: str = DEFAULT_TEMPLATE,
    source: str | Path = "<annotations>",
) -> dict[str, list[PopeQuestion]]:
    """The three POPE sets built from ``images`` (see the module docstring); keys are ``POPE_SETS``.

    ``source`` names the annotation file in errors: too few eligible images, or too few categories to find
    ``sample_num`` absent objects for an image, are :class:`DataError`.
    """
    eligible = [img for img in images if len(img.objects) >= sample_num]
    if len(eligible) < n_images:
        raise DataError(
            source,
            f"only {len(eligible)} image(s) have at least {sample_num} distinct categories; n_images={n_images} "
            "requested",
        )
    drawn = random.Random(seed).sample(eligible, n_images)

    frequency: Counter[str] = Counter()
    co_occur: dict[str, Counter[str]] = defaultdict(Counter)
    for img in drawn:
        frequency.update(img.objects)
        for obj in img.objects:
            co_occur[obj].update(other for other in img.objects if other != obj)
    # Counter preserves first-seen order and `sorted` is stable, so equal counts keep first-seen order.
    all_objects = list(frequency)
    by_frequency = [obj for obj, _ in sorted(frequency.items(), key=lambda kv: kv[1], reverse=True)]
    by_co_occurrence = {
        obj: [other for other, _ in sorted(counts.items(), key=lambda kv: kv[1], reverse=True)]
        for obj, counts in co_occur.items()
    }

    sets: dict[str, list[PopeQuestion]] = {}
    for index, pope_set in enumerate(POPE_SETS):
        # One generator per set, derived from the seed, so each file is reproducible on its own.
        rng = random.Random(seed * len(POPE_SETS) + index)
        questions: list[PopeQuestion] = []
        for img in drawn:
            asked: list[str] = []
            for positive in img.objects[:sample_num]:
                asked.append(positive)
                questions.append(_question(len(questions) + 1, img.image, positive, "yes", template))
                excluded = set(asked) | set(img.objects)
                if pope_set == "popular":
                    ranked = by_frequency
                elif pope_set == "adversarial":
                    ranked = by_co_occurrence.get(positive, [])
                else:
                    ranked = []
                negative = next((obj for obj in ranked if obj not in excluded), None)
                if negative is None:
                    pool = [obj for obj in all_objects if obj not in excluded]
                    if not pool:
                        raise DataError(
                            source,
                            f"no category left to ask about as absent from image {img.image!r}: the drawn images "
                            f"have only {len(all_objects)} categories",
                        )
                    negative = rng.choice(pool)
                asked.append(negative)
                questions.append(_question(len(questions) + 1, img.image, negative, "no", template))
        sets[pope_set] = questions
    return sets


def _question(question_id: int, image: str, obj: str, label: str, template: str) -> PopeQuestion:
    return PopeQuestion(question_id=question_id, image=image, text=question_text(obj, template), label=label)


def write_pope_questions(path: str | Path, questions: Sequence[PopeQuestion]) -> Path:
    """Write questions atomically in POPE's layout: JSON lines (despite ``.json``), keys in POPE's order."""
    records = ({"question_id": q.question_id, "image": q.image, "text": q.text, "label": q.label} for q in questions)
    return atomic_write_jsonl(path, records)


def build_pope_files(cfg: PopeBuildConfig) -> dict[str, Path]:
    """Build the three sets from ``cfg``'s instances file and write them where :class:`DataLayout` expects them.

    Also writes ``coco_pope_build.json`` next to them (parameters, source hash, per-set counts), so a question
    file can be traced to the annotations and seed that made it. Returns ``{set: path}``.
    """
    layout = DataLayout(cfg.data_root)
    instances = Path(cfg.instances) if cfg.instances else layout.coco_instances
    images = coco_image_objects(instances)
    sets = build_pope_sets(
        images,
        n_images=cfg.n_images,
        seed=cfg.seed,
        sample_num=cfg.sample_num,
        template=cfg.question_template,
        source=instances,
    )
    out_dir = Path(cfg.out_dir) if cfg.out_dir else layout.pope_dir
    paths: dict[str, Path] = {}
    for pope_set, questions in sets.items():
        path = out_dir / layout.pope_file(pope_set).name
        paths[pope_set] = write_pope_questions(path, questions)
    atomic_write_json(
        out_dir / "coco_pope_build.json",
        {
            "params": cfg.to_dict(),
            "instances": str(instances),
            "instances_sha256": sha256_file(instances),
            "sets": {
                s: {"file": paths[s].name, "questions": len(q), "sha256": sha256_file(paths[s])}
                for s, q in sets.items()
            },
        },
    )
    return paths
