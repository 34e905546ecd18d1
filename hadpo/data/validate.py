"""Validate one input file of any supported format and summarise it.

``validate(kind, path)`` runs the format's reader (which raises one located :class:`~hadpo.errors.DataError` on
the first malformed record) and returns counts. With ``images_root``, every image the file references is also
looked up on disk:

- ``vg-images``: the url's last two components under ``<root>/VG/`` (the data-root layout);
- ``desc``, ``pope-data``, ``shr-images``: the image id through ``<root>/VG/image_data.json`` (or the VG record
  embedded in an SHR entry), then as for ``vg-images``; an id missing from ``image_data.json`` is an error;
- ``pope``, ``llava``: the record's ``image`` under the root; ``coco``: each image's ``file_name`` under the root.

Each image is opened and decoded (:mod:`hadpo.data.images`): a missing file, a 0-byte file, a truncated file or
a file that is not an image is an error listing every such image with its reason and record (one image: ``image
not found: PATH`` or ``unreadable image PATH: REASON``), unless ``allow_missing`` asks for them to be listed in the
report instead (``missing_images``: not on disk; ``unreadable_images``: on disk but not decodable).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hadpo.data.coco import read_coco_instances
from hadpo.data.hadpo_files import read_desc_data, read_pope_data
from hadpo.data.images import MISSING, ImageRef, UnreadableImage, find_unreadable_images, unreadable_images_error
from hadpo.data.layout import DataLayout
from hadpo.data.llava_conv import read_llava_conversations
from hadpo.data.pope_files import read_pope_answers, read_pope_questions
from hadpo.data.shr_files import read_shr_factual, read_shr_images
from hadpo.data.vg import VGImage, read_vg_images, read_vg_objects, read_vg_regions, vg_image_index
from hadpo.errors import DataError

PathLike = str | Path


@dataclass(frozen=True)
class ValidationReport:
    """What a valid file holds: record and image counts, kind-specific counts, and any missing or unreadable images.

    ``missing_images`` are the references to images not on disk; ``unreadable_images`` those on disk that cannot
    be decoded (with the reason); ``image_problems`` both, in file order (the first reference to each image).
    """

    kind: str
    files: tuple[str, ...]
    records: int
    images: int
    counts: dict[str, int] = field(default_factory=dict)
    images_root: str | None = None
    missing_images: tuple[ImageRef, ...] = ()
    unreadable_images: tuple[UnreadableImage, ...] = ()
    image_problems: tuple[UnreadableImage, ...] = field(default=(), repr=False)

    @property
    def ok(self) -> bool:
        """True when every referenced image was found and decodes (always true without an images root)."""
        return not self.missing_images and not self.unreadable_images

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable summary."""
        return {
            "kind": self.kind,
            "files": list(self.files),
            "records": self.records,
            "images": self.images,
            "counts": dict(self.counts),
            "images_root": self.images_root,
            "missing_images": [
                {k: v for k, v in vars(ref).items() if v is not None} for ref in self.missing_images
            ],
            "unreadable_images": [problem.to_dict() for problem in self.unreadable_images],
        }

    def raise_for_missing(self) -> None:
        """Raise one :class:`DataError` listing every missing or unreadable image, if there is any."""
        problems = self.image_problems or (
            tuple(UnreadableImage(ref, MISSING) for ref in self.missing_images) + self.unreadable_images
        )
        if problems:
            raise unreadable_images_error(problems, source=", ".join(self.files))


@dataclass
class _Summary:
    records: int
    images: int
    counts: dict[str, int]
    refs: list[ImageRef] = field(default_factory=list)


def _vg_index(root: Path) -> dict[int, VGImage]:
    return vg_image_index(read_vg_images(DataLayout(root).image_data))


def _vg_ref(file: Path, index: dict[int, VGImage], root: Path, image_id: str | int, **where: Any) -> ImageRef:
    """Resolve a VG image id through ``image_data.json``; an unknown id is an error at the referring record."""
    key = int(image_id) if isinstance(image_id, int) or image_id.isdigit() else None
    image = index.get(key) if key is not None else None
    if image is None:
        raise DataError(file, f"image id {image_id!r} is not in {DataLayout(root).image_data}", **where)
    return ImageRef(path=str(image.path(DataLayout(root))), **where)


def _desc(paths: list[Path], root: Path | None) -> _Summary:
    (path,) = paths
    records = read_desc_data(path, allow_empty=False)
    chosen = sum(len(r.chosen) for r in records)
    rejected = sum(len(r.rejected) for r in records)
    counts = {
        "chosen": chosen,
        "rejected": rejected,
        # the original samples one (chosen, rejected) combination per image; all combinations is the upper bound
        "pairs_sampled": len(records),
        "pairs_all_combinations": sum(len(r.chosen) * len(r.rejected) for r in records),
    }
    refs = []
    if root is not None:
        index = _vg_index(root)
        refs = [_vg_ref(path, index, root, r.image_id, record=r.image_id, field="image_id") for r in records]
    return _Summary(len(records), len({r.image_id for r in records}), counts, refs)


def _pope_data(paths: list[Path], root: Path | None) -> _Summary:
    (path,) = paths
    records = read_pope_data(path, allow_empty=False)
    skipped = sum(1 for r in records if r.correct is True)
    counts = {"pairs": len(records) - skipped, "skipped_correct": skipped}
    refs = []
    if root is not None:
        index = _vg_index(root)
        refs = [_vg_ref(path, index, root, r.image_id, record=i, field="image_id") for i, r in enumerate(records)]
    return _Summary(len(records), len({r.image_id for r in records}), counts, refs)


def _vg_images(paths: list[Path], root: Path | None) -> _Summary:
    (path,) = paths
    images = read_vg_images(path)
    counts = {"with_coco_id": sum(1 for im in images if im.coco_id is not None)}
    refs = []
    if root is not None:
        layout = DataLayout(root)
        refs = [ImageRef(str(im.path(layout)), record=i, field="url") for i, im in enumerate(images)]
    return _Summary(len(images), len(images), counts, refs)


def _vg_objects(paths: list[Path], root: Path | None) -> _Summary:
    (path,) = paths
    objects = read_vg_objects(path)
    names = {obj.name for objs in objects.values() for obj in objs}
    counts = {"objects": sum(len(objs) for objs in objects.values()), "object_names": len(names)}
    return _Summary(len(objects), len(objects), counts)


def _vg_regions(paths: list[Path], root: Path | None) -> _Summary:
    (path,) = paths
    regions = read_vg_regions(path)
    all_regions = [r for rs in regions.values() for r in rs]
    counts = {"regions": len(all_regions), "empty_phrases": sum(1 for r in all_regions if not r.phrase.strip())}
    return _Summary(len(regions), len(regions), counts)


def _coco(paths: list[Path], root: Path | None) -> _Summary:
    (path,) = paths
    coco = read_coco_instances(path)
    counts = {"annotations": len(coco.annotations), "categories": len(coco.categories)}
    refs = []
    if root is not None:
        refs = [
            ImageRef(str(root / im.file_name), field=f"images[{i}].file_name")
            for i, im in enumerate(coco.images)
        ]
    return _Summary(len(coco.images), len(coco.images), counts, refs)


def _pope(paths: list[Path], root: Path | None) -> _Summary:
    (path,) = paths
    questions = read_pope_questions(path, require_label=False)
    labels = Counter(q.label for q in questions)
    if labels[None] and len(labels) > 1:
        # a label file with a few unlabelled lines would silently shift the scorer's line-order pairing
        first = next(q for q in questions if q.label is None)
        raise DataError(path, "some questions are labelled and this one is not", record=first.question_id,
                        field="label")
    counts = {"yes": labels["yes"], "no": labels["no"], "unlabelled": labels[None]}
    refs = []
    if root is not None:
        refs = [ImageRef(str(root / q.image), record=q.question_id, field="image") for q in questions]
    return _Summary(len(questions), len({q.image for q in questions}), counts, refs)


def _pope_answers(paths: list[Path], root: Path | None) -> _Summary:
    (path,) = paths
    answers = read_pope_answers(path)
    counts = {"empty_answers": sum(1 for a in answers if not a.answer.strip())}
    return _Summary(len(answers), 0, counts)


def _shr_images(paths: list[Path], root: Path | None) -> _Summary:
    (path,) = paths
    images = read_shr_images(path)
    counts = {"with_image_record": sum(1 for im in images if im.image is not None)}
    refs = []
    if root is not None:
        layout = DataLayout(root)
        index: dict[int, VGImage] | None = None
        for i, im in enumerate(images):
            if im.image is not None:
                refs.append(ImageRef(str(im.image.path(layout)), record=i, field="image.url"))
                continue
            if index is None:
                index = _vg_index(root)
            refs.append(_vg_ref(path, index, root, im.image_id, record=i, field="image_id"))
    return _Summary(len(images), len(images), counts, refs)


def _shr_factual(paths: list[Path], root: Path | None) -> _Summary:
    facts = read_shr_factual(paths)
    counts = {
        "statements": sum(len(v) for v in facts.values()),
        "images_without_statements": sum(1 for v in facts.values() if not v),
    }
    return _Summary(len(facts), len(facts), counts)


def _llava(paths: list[Path], root: Path | None) -> _Summary:
    (path,) = paths
    convs = read_llava_conversations(path)
    counts = {"exchanges": sum(len(c.turns) // 2 for c in convs)}
    for kind, n in Counter(c.kind for c in convs if c.kind is not None).items():
        counts[f"kind:{kind}"] = n
    refs = []
    if root is not None:
        refs = [ImageRef(str(root / c.image), record=i, field="image") for i, c in enumerate(convs)]
    return _Summary(len(convs), len({c.image for c in convs}), counts, refs)


_HANDLERS: dict[str, tuple[Callable[[list[Path], Path | None], _Summary], str]] = {
    "desc": (_desc, "HA-DPO desc_data.json (dict keyed by image id, or list of records)"),
    "pope-data": (_pope_data, "HA-DPO pope_data.json (QA preference records)"),
    "vg-images": (_vg_images, "Visual Genome image_data.json"),
    "vg-objects": (_vg_objects, "Visual Genome objects.json"),
    "vg-regions": (_vg_regions, "Visual Genome region_descriptions.json"),
    "coco": (_coco, "COCO instances_*.json"),
    "pope": (_pope, "POPE question file (JSON lines; labels optional)"),
    "pope-answers": (_pope_answers, "POPE answer file (JSON lines)"),
    "shr-images": (_shr_images, "SHR val_images_final.json"),
    "shr-factual": (_shr_factual, "SHR factual JSON-lines parts (give both to check ids across them)"),
    "llava": (_llava, "LLaVA conversation file (llava_instruct.json)"),
}

#: every kind ``validate`` accepts, with a one-line description of its file.
KINDS: dict[str, str] = {kind: desc for kind, (_, desc) in _HANDLERS.items()}

#: kinds that accept several files at once (the others take exactly one).
MULTI_FILE_KINDS = frozenset({"shr-factual"})


def _image_problems(refs: list[ImageRef], decode: bool, progress: bool) -> tuple[UnreadableImage, ...]:
    """The first reference to each image that is missing or (with ``decode``) cannot be decoded, in file order."""
    if decode:
        return tuple(find_unreadable_images(refs, progress=progress, desc="validate images"))
    checked: set[str] = set()
    out = []
    for ref in refs:  # existence only: POPE asks several questions per image, each image is looked up once
        if ref.path not in checked:
            checked.add(ref.path)
            if not Path(ref.path).is_file():
                out.append(UnreadableImage(ref, MISSING))
    return tuple(out)


def validate(
    kind: str,
    path: PathLike | Sequence[PathLike],
    images_root: PathLike | None = None,
    *,
    allow_missing: bool = False,
    decode: bool = True,
    progress: bool = True,
) -> ValidationReport:
    """Read ``path`` as a file of ``kind`` (see :data:`KINDS`) and summarise it.

    With ``images_root``, every referenced image is opened and decoded (``decode=False``: only looked up).
    Raises :class:`DataError` for a malformed file, and for missing or unreadable images (one error listing them
    all) unless ``allow_missing`` is set, in which case they are listed in the report. ``progress`` shows a bar
    while a large set of images decodes.
    """
    if kind not in _HANDLERS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(_HANDLERS)}")
    paths = [Path(path)] if isinstance(path, (str, Path)) else [Path(p) for p in path]
    if not paths:
        raise ValueError("no file given")
    if len(paths) > 1 and kind not in MULTI_FILE_KINDS:
        raise ValueError(f"kind {kind!r} takes one file, got {len(paths)}")
    root = Path(images_root) if images_root is not None else None
    if root is not None and not root.is_dir():
        raise DataError(root, "images root is not a folder")
    handler, _ = _HANDLERS[kind]
    summary = handler(paths, root)
    problems = _image_problems(summary.refs, decode, progress)
    report = ValidationReport(
        kind=kind,
        files=tuple(str(p) for p in paths),
        records=summary.records,
        images=summary.images,
        counts=summary.counts,
        images_root=str(root) if root is not None else None,
        missing_images=tuple(p.ref for p in problems if p.missing),
        unreadable_images=tuple(p for p in problems if not p.missing),
        image_problems=problems,
    )
    if not allow_missing:
        report.raise_for_missing()
    return report
