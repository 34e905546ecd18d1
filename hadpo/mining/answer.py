"""Step e (second half): put the mined questions to the model, greedily and in batches, resumably.

Each image is encoded once for all its questions (the POPE answerer's batching). The model's answer is read by
POPE's rule; ``correct`` in ``pope_data.json`` records whether it already matched the right answer, and the
trainer skips those records, as the original does. Answers are appended per batch to ``qa_answers.jsonl``, so a
rerun asks only the questions not answered yet.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hadpo.errors import DataError
from hadpo.io import append_jsonl, read_jsonl_tolerant


@dataclass(frozen=True)
class Question:
    """A question about one image; ``index`` is its place among the image's questions."""

    image_id: str
    index: int
    text: str
    image_path: Path


def answer_key(image_id: str, index: int) -> str:
    """The key of an answer record: ``"<image_id>#<index>"``."""
    return f"{image_id}#{index}"


def read_answers(path: str | Path) -> dict[str, dict[str, Any]]:
    """Answer records of ``qa_answers.jsonl`` by :func:`answer_key` (a torn last line is dropped)."""
    return {answer_key(str(r["image_id"]), int(r["index"])): r for r in read_jsonl_tolerant(path)}


def answer_with_model(
    get_model: Callable[[], Any],
    questions: Sequence[Question],
    out_path: str | Path,
    *,
    template: str = "llava_v1",
    image_mode: str = "pad",
    max_new_tokens: int = 64,
    batch_size: int = 8,
    progress: bool = True,
) -> dict[str, dict[str, Any]]:
    """Answer the questions not yet in ``out_path``; returns every answer (old and new) by :func:`answer_key`.

    ``get_model`` returns a :class:`~hadpo.models.loading.LoadedModel`; it is called only when a question is left.

    Records are ``{"image_id", "index", "question", "model_answer"}``.
    """
    from PIL import Image

    from hadpo.data.pope_files import PopeQuestion
    from hadpo.eval.pope.infer import PopeAnswerer, answer_questions
    from hadpo.models.prompts import get_template
    from hadpo.progress import progress as make_progress

    out_path = Path(out_path)
    done = read_answers(out_path)
    todo = [q for q in questions if answer_key(q.image_id, q.index) not in done]
    if not todo:
        return done
    answerer = PopeAnswerer(get_model(), prompt_variant="raw", image_mode=image_mode, max_new_tokens=max_new_tokens)
    # The answerer asks with the evaluation conversation; mining asks in the template the config names.
    answerer.template = get_template(template)
    by_id = {i: q for i, q in enumerate(todo)}
    paths = {q.image_id: q.image_path for q in todo}
    pope_questions = [PopeQuestion(question_id=i, image=q.image_id, text=q.text, label=None) for i, q in by_id.items()]

    def load(q: PopeQuestion) -> Image.Image:
        path = paths[q.image]
        try:
            with Image.open(path) as img:
                img.load()
                return img
        except OSError as exc:
            raise DataError(path, f"cannot read image: {exc}", record=q.image) from None

    def save(records: list[dict[str, Any]]) -> None:
        rows = []
        for r in records:
            q = by_id[r["question_id"]]
            rows.append({"image_id": q.image_id, "index": q.index, "question": q.text, "model_answer": r["answer"]})
        append_jsonl(out_path, rows)
        done.update({answer_key(row["image_id"], row["index"]): row for row in rows})

    with make_progress(len(todo), "answer questions", unit="questions", enabled=progress, leave=False) as bar:
        answer_questions(answerer, pope_questions, load, batch_size=batch_size, on_batch=save, progress=bar)
    return done
