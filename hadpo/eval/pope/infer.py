"""Answer POPE questions with a LLaVA model: batched greedy decoding, each image encoded once, resumable.

The protocol is HA-DPO's ``pope_eval.py``: the ``llava_v1`` conversation with the question verbatim (or, with
``prompt_variant="short"``, LLaVA's single-word suffix on a new line), the image padded to a square with the
processor's mean colour, greedy decoding up to ``max_new_tokens``. What differs is only how fast it gets there:

- questions are grouped by image and decoded in left-padded batches; generation stops as soon as every row of
  the batch has produced EOS;
- each image is preprocessed and run through the vision tower + projector once, and the features are handed
  to ``generate`` as ``mm_encoder_outputs`` for all of that image's questions (the tokens and features are
  exactly what the processor would build, so the answers match batch-1 generation);
- answers are decoded with special tokens skipped. The original kept them, so a bare "No</s>" reached POPE's
  parser as one word, was not recognised as "No" and counted as a yes; here the answer is "No".

Output, in ``<run_dir>/<set>/``: ``answers.jsonl`` (``question_id``, ``question``, ``answer``, sorted by id) and
``protocol.json`` (everything that decides the answers, plus versions). Answers are appended and fsynced per
batch, so a killed run resumes where it stopped; a rerun whose protocol differs is refused instead of mixing
answers of two protocols in one file.

Several processes under ``torchrun`` split the pending questions by image (contiguous shards); rank ``r``
appends to ``answers.rank{r}.jsonl`` and, after a barrier, rank 0 merges every file into ``answers.jsonl``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hadpo.data.images import ImageRef
from hadpo.data.layout import DataLayout
from hadpo.data.pope_files import PopeQuestion, read_pope_questions
from hadpo.distributed import DistContext
from hadpo.errors import DataError, HadpoError
from hadpo.eval.pope.config import PopeConfig
from hadpo.io import append_jsonl, atomic_write_json, atomic_write_jsonl, read_json, read_jsonl_tolerant, sha256_file
from hadpo.manifest import environment
from hadpo.models.prompts import IMAGE_PLACEHOLDER, SHORT_ANSWER_SUFFIX, get_template

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from hadpo.models.loading import LoadedModel

CONVERSATION = "llava_v1"
ANSWERS_FILE = "answers.jsonl"
PROTOCOL_FILE = "protocol.json"
#: protocol.json keys that do not decide the answers (the machine, where the question file lies; its content is
#: pinned by ``questions_sha256``): they may change between resumed runs.
UNCOMPARED_KEYS = ("environment", "world_size", "questions_file")


class ProtocolMismatchError(HadpoError):
    """A run folder already holds answers made under a different protocol."""


# ---- prompts and batched generation ---------------------------------------------------------------------------


def question_prompt(question: str, prompt_variant: str) -> str:
    """The user's text for a POPE question: verbatim (``raw``) or with LLaVA's short-answer suffix (``short``)."""
    if prompt_variant == "raw":
        return question
    if prompt_variant == "short":
        return f"{question}\n{SHORT_ANSWER_SUFFIX}"
    raise ValueError(f"prompt_variant must be 'raw' or 'short', got {prompt_variant!r}")


class PopeAnswerer:
    """Greedy answers for batches of (question, image features), with each image encoded separately once.

    ``loaded`` is a :class:`~hadpo.models.loading.LoadedModel`; the model may be a peft model.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        prompt_variant: str = "raw",
        image_mode: str = "pad",
        max_new_tokens: int = 512,
        template: str = CONVERSATION,
    ) -> None:
        self.loaded = loaded
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.image_processor = loaded.processor.image_processor
        self.template = get_template(template)
        self.prompt_variant = prompt_variant
        self.image_mode = image_mode
        self.max_new_tokens = max_new_tokens
        param = next(self.model.parameters())
        self.device, self.dtype = param.device, param.dtype
        token = getattr(loaded.processor, "image_token", None)
        self.image_token: str = token or loaded.tokenizer.convert_ids_to_tokens(loaded.image_token_id)
        question_prompt("", prompt_variant)  # fail early on a bad variant

    def prompt(self, question: str) -> str:
        """The full conversation string, ending at ``ASSISTANT:``, with one image placeholder."""
        return self.template.prompt(question_prompt(question, self.prompt_variant))

    def encode_images(self, images: Sequence[Image.Image]) -> list[torch.Tensor]:
        """Projected vision features, one ``(image_tokens, hidden)`` tensor per image (one vision-tower pass)."""
        import torch

        from hadpo.models.image import prepare_image

        mean = self.image_processor.image_mean
        prepared = [prepare_image(image, self.image_mode, mean) for image in images]  # type: ignore[arg-type]
        pixels = self.image_processor(images=prepared, return_tensors="pt")["pixel_values"]
        with torch.inference_mode():
            out = self.model.get_image_features(pixel_values=pixels.to(self.device, self.dtype), return_dict=True)
        return list(out.pooler_output)

    def generate(self, questions: Sequence[str], features: Sequence[torch.Tensor]) -> list[str]:
        """Greedy answers to ``questions``, row ``i`` looking at the image whose features are ``features[i]``."""
        import torch
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        if len(questions) != len(features):
            raise ValueError(f"{len(questions)} questions for {len(features)} image features")
        expanded = self.image_token * self.loaded.image_tokens_per_image
        # The processor expands the placeholder the same way; doing it here spares re-processing the image.
        texts = [self.prompt(q).replace(IMAGE_PLACEHOLDER, expanded) for q in questions]
        batch = self.tokenizer(texts, return_tensors="pt", padding=True, padding_side="left")
        batch = {k: v.to(self.device) for k, v in batch.items()}
        encoded = {"image": BaseModelOutputWithPooling(pooler_output=list(features))}
        with torch.inference_mode():
            out = self.model.generate(
                **batch,
                mm_encoder_outputs=encoded,
                do_sample=False,
                num_beams=1,
                max_new_tokens=self.max_new_tokens,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.tokenizer.eos_token_id,
            )
        new_tokens = out[:, batch["input_ids"].shape[1] :]
        return [text.strip() for text in self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]


def group_by_image(questions: Sequence[PopeQuestion]) -> list[list[PopeQuestion]]:
    """Questions grouped by image, groups in order of each image's first question, question order within."""
    groups: dict[str, list[PopeQuestion]] = {}
    for q in questions:
        groups.setdefault(q.image, []).append(q)
    return list(groups.values())


def iter_batches(groups: Sequence[Sequence[PopeQuestion]], batch_size: int) -> Iterator[list[PopeQuestion]]:
    """Fixed-size batches over the grouped questions (an image's questions may span two batches)."""
    flat = [q for group in groups for q in group]
    for start in range(0, len(flat), batch_size):
        yield flat[start : start + batch_size]


def answer_questions(
    answerer: PopeAnswerer,
    questions: Sequence[PopeQuestion],
    load_image: Callable[[PopeQuestion], Image.Image],
    *,
    batch_size: int,
    on_batch: Callable[[list[dict[str, Any]]], None],
    progress: Any = None,
) -> int:
    """Answer ``questions`` in batches, calling ``on_batch`` with each batch's answer records; returns the count.

    Image features are cached until the image's last question is answered, so each image goes through the
    vision tower once however its questions fall into batches.
    """
    groups = group_by_image(questions)
    remaining = {group[0].image: len(group) for group in groups}
    cache: dict[str, torch.Tensor] = {}
    done = 0
    for batch in iter_batches(groups, batch_size):
        first_of_new: dict[str, PopeQuestion] = {}
        for q in batch:
            if q.image not in cache:
                first_of_new.setdefault(q.image, q)
        if first_of_new:
            features = answerer.encode_images([load_image(q) for q in first_of_new.values()])
            cache.update(zip(first_of_new, features, strict=True))
        answers = answerer.generate([q.text for q in batch], [cache[q.image] for q in batch])
        on_batch(
            [
                {"question_id": q.question_id, "question": q.text, "answer": a}
                for q, a in zip(batch, answers, strict=True)
            ]
        )
        for q in batch:
            remaining[q.image] -= 1
            if not remaining[q.image]:
                del cache[q.image]
        done += len(batch)
        if progress is not None:
            progress.update(len(batch))
    return done


# ---- processes --------------------------------------------------------------------------------------------------


def shard(groups: Sequence[Sequence[PopeQuestion]], rank: int, world_size: int) -> list[list[PopeQuestion]]:
    """Rank ``rank``'s contiguous slice of the image groups (sizes differ by at most one group)."""
    n = len(groups)
    start, end = (n * rank) // world_size, (n * (rank + 1)) // world_size
    return [list(g) for g in groups[start:end]]


# ---- protocol, resume, merge -----------------------------------------------------------------------------------


def questions_path(cfg: PopeConfig, pope_set: str) -> Path:
    """The question file of ``pope_set``: ``cfg.questions`` or the data layout's."""
    return Path(cfg.questions) if cfg.questions else DataLayout(cfg.data_root).pope_file(pope_set)


def load_questions(cfg: PopeConfig, pope_set: str) -> list[PopeQuestion]:
    """The labelled questions of a set, limited to the first ``cfg.limit`` when set."""
    questions = read_pope_questions(questions_path(cfg, pope_set))
    return questions[: cfg.limit] if cfg.limit else questions


def _adapter_hashes(adapter: str | None) -> dict[str, str]:
    """SHA-256 of each file in the adapter folder, so a retrained adapter in the same place is a new protocol."""
    if not adapter:
        return {}
    folder = Path(adapter).expanduser()
    if not folder.is_dir():
        raise DataError(folder.absolute(), "adapter folder not found")
    return {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.is_file()}


def build_protocol(cfg: PopeConfig, pope_set: str, ctx: DistContext) -> dict[str, Any]:
    """Everything that decides the answers of ``pope_set`` (plus, not compared, versions and world size)."""
    qpath = questions_path(cfg, pope_set)
    return {
        "pope_set": pope_set,
        "questions_file": str(qpath),
        "questions_sha256": sha256_file(qpath),
        "model": cfg.model_spec.model,
        "adapter": cfg.model_spec.adapter,
        "adapter_sha256": _adapter_hashes(cfg.model_spec.adapter),
        "merge_adapter": cfg.model_spec.merge_adapter,
        "conversation": cfg.prompt_spec.template,
        "prompt_variant": cfg.prompt_variant,
        "image_mode": cfg.prompt_spec.image_mode,
        "decoding": {"strategy": "greedy", "max_new_tokens": cfg.decoding.max_new_tokens,
                     "skip_special_tokens": True},
        "batch_size": cfg.decoding.batch_size,
        "dtype": cfg.model_spec.dtype,
        "device_type": ctx.device.split(":")[0],
        "attn_implementation": cfg.model_spec.attn_implementation,
        "world_size": ctx.world_size,
        "environment": environment(),
    }


def check_protocol(path: Path, protocol: dict[str, Any]) -> None:
    """Refuse to add answers to a run folder whose ``protocol.json`` differs (machine details aside)."""
    if not path.is_file():
        return
    old = read_json(path)
    if not isinstance(old, dict):
        raise DataError(path, "expected a JSON object")
    keys = sorted((set(old) | set(protocol)) - set(UNCOMPARED_KEYS))
    diffs = [f"{k}: {old.get(k)!r} -> {protocol.get(k)!r}" for k in keys if old.get(k) != protocol.get(k)]
    if diffs:
        raise ProtocolMismatchError(
            f"{path}: the answers in this folder were made under another protocol; refusing to mix them. "
            f"Differences: {'; '.join(diffs)}. Use a new run_dir, or delete the folder to start over."
        )


def _rank_files(set_dir: Path) -> list[Path]:
    return sorted(set_dir.glob("answers.rank*.jsonl"))


def answered_ids(set_dir: Path) -> set[int]:
    """Question ids already answered in ``set_dir`` (merged file and per-rank files; a torn last line is ignored)."""
    ids: set[int] = set()
    for path in [set_dir / ANSWERS_FILE, *_rank_files(set_dir)]:
        for record in read_jsonl_tolerant(path):
            if not isinstance(record, dict) or not isinstance(record.get("question_id"), int):
                raise DataError(path, f"not an answer record: {record!r}", field="question_id")
            ids.add(record["question_id"])
    return ids


def merge_answers(set_dir: Path) -> Path:
    """Merge the answer file and any per-rank files into ``answers.jsonl`` sorted by ``question_id``.

    The merged file is written atomically before the rank files are removed, so a kill in between loses
    nothing (the next merge sees the same records twice and keeps one).
    """
    merged: dict[int, dict[str, Any]] = {}
    rank_files = _rank_files(set_dir)
    for path in [set_dir / ANSWERS_FILE, *rank_files]:
        for record in read_jsonl_tolerant(path):
            merged.setdefault(record["question_id"], record)
    out = atomic_write_jsonl(set_dir / ANSWERS_FILE, (merged[k] for k in sorted(merged)))
    for path in rank_files:
        path.unlink()
    return out


def image_folder(cfg: PopeConfig) -> Path:
    """The folder holding the questions' ``image`` files: ``cfg.images_dir`` or the layout's COCO val2014."""
    return Path(cfg.images_dir) if cfg.images_dir else DataLayout(cfg.data_root).coco_images


def pending_image_refs(cfg: PopeConfig, pope_sets: Sequence[str]) -> list[ImageRef]:
    """The images that questions not yet answered in ``<run_dir>/<set>/`` will read, for the pre-flight check."""
    folder = image_folder(cfg)
    refs = []
    for pope_set in pope_sets:
        done = answered_ids(Path(cfg.run_dir) / pope_set)
        qfile = str(questions_path(cfg, pope_set))
        refs += [ImageRef(str(folder / q.image), record=q.question_id, field="image", file=qfile)
                 for q in load_questions(cfg, pope_set) if q.question_id not in done]
    return refs


def _image_loader(cfg: PopeConfig, qfile: Path) -> Callable[[PopeQuestion], Image.Image]:
    from PIL import Image

    folder = image_folder(cfg)

    def load(q: PopeQuestion) -> Image.Image:
        path = folder / q.image
        try:
            with Image.open(path) as img:
                img.load()
                return img
        except FileNotFoundError:
            raise DataError(qfile, f"image file {path.absolute()} not found", record=q.question_id,
                            field="image") from None
        except OSError as exc:
            raise DataError(qfile, f"cannot read image {path}: {exc}", record=q.question_id, field="image") from None

    return load


def run_inference(
    cfg: PopeConfig,
    pope_set: str,
    ctx: DistContext,
    get_model: Callable[[], LoadedModel],
) -> Path:
    """Answer every not-yet-answered question of ``pope_set`` into ``<run_dir>/<set>/``; returns answers.jsonl.

    Collective under torchrun: every rank calls it. ``get_model`` is called only when this rank has work, so
    re-scoring a finished run loads nothing.
    """
    set_dir = Path(cfg.run_dir) / pope_set
    qfile = questions_path(cfg, pope_set)
    questions = load_questions(cfg, pope_set)
    protocol = build_protocol(cfg, pope_set, ctx)
    done = answered_ids(set_dir)
    # A protocol guards answers; one left by a run that wrote none (a typo'd model path, say) never blocks.
    # Every rank checks (read-only) so all of them fail together instead of some waiting at a barrier.
    if done:
        check_protocol(set_dir / PROTOCOL_FILE, protocol)
    ctx.barrier()  # all ranks have read the answered ids before anyone appends
    if ctx.is_main and (not done or not (set_dir / PROTOCOL_FILE).is_file()):
        atomic_write_json(set_dir / PROTOCOL_FILE, protocol)

    pending = [q for q in questions if q.question_id not in done]
    mine = [q for g in shard(group_by_image(pending), ctx.rank, ctx.world_size) for q in g]
    out = set_dir / (ANSWERS_FILE if ctx.world_size == 1 else f"answers.rank{ctx.rank}.jsonl")
    if mine:
        from hadpo.progress import progress

        answerer = PopeAnswerer(
            get_model(),
            prompt_variant=cfg.prompt_variant,
            image_mode=cfg.prompt_spec.image_mode,
            max_new_tokens=cfg.decoding.max_new_tokens,
            template=cfg.prompt_spec.template,
        )
        show = cfg.progress and ctx.is_main
        with progress(len(mine), f"POPE {pope_set}", unit="questions", enabled=show) as bar:
            answer_questions(
                answerer,
                mine,
                _image_loader(cfg, qfile),
                batch_size=cfg.decoding.batch_size,
                on_batch=lambda records: append_jsonl(out, records),
                progress=bar,
            )
    ctx.barrier()
    if ctx.is_main:
        merge_answers(set_dir)
    ctx.barrier()
    return set_dir / ANSWERS_FILE
