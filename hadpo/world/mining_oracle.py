"""The offline judge of mining on the shapes world: every LLM step done from the annotations, replying in the LLM's
text format so the same parsers read it.

- **correct**: sentences are labelled by the SHR oracle's rule (object and column against ``objects.json``); a
  sentence naming an absent object is removed, one placing a present object in the wrong column is rewritten with
  the right column, everything else is kept verbatim. When nothing is left, the correction is the annotation
  caption.
- **rewrite**: style ``i`` is a phrasing of the world grammar (:data:`hadpo.world.text.SENTENCE_STYLES`) plus a
  sentence order (as written, left to right, right to left); each claim ``(name, column)`` is re-rendered in that
  style and unreadable sentences are kept verbatim, so a rewrite claims exactly what its source claims.
- **qa**: a "no" question per hallucinated absent object, a "yes" question per present object (left to right),
  answered in the world's answer sentences.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hadpo.eval.shr.sentences import split_sentences
from hadpo.judge.base import ChatRequest
from hadpo.judge.local import LocalChatClient
from hadpo.mining.prompts import format_correction, format_questions, format_rewrites
from hadpo.world.shr_oracle import ImageObjects, oracle_labels, world_categories, world_objects
from hadpo.world.text import (
    SENTENCE_STYLES,
    describe,
    no_answer,
    object_sentence,
    parse_sentence,
    question,
    styled_sentence,
    yes_answer,
)

ORACLE_NAME = "shapes-mining-oracle"

#: Sentence orders of the rewrite styles.
ORDERS = ("as written", "left to right", "right to left")
#: Phrasings in the order styles use them. Style 0 is the model's own phrasing and sentence order: the first
#: pair stays on the model's output distribution (why HA-DPO mines per model), the others reword both sides.
_PHRASINGS = (0, 1, 2, 3, 4)
_PHRASING_NAMES = ("'there is'", "place first", "object first", "'I can see'", "'the image shows'")

Claim = tuple[str, "int | None"]
Parse = Callable[[str], "Claim | None"]


def style_of(index: int) -> tuple[int, str]:
    """``(phrasing, order)`` of rewrite style ``index`` (0-based); 15 distinct styles before they repeat."""
    return _PHRASINGS[index % len(_PHRASINGS)], ORDERS[index % len(ORDERS)]


def style_name(index: int) -> str:
    """A short name of rewrite style ``index``."""
    phrasing, order = style_of(index)
    return f"{_PHRASING_NAMES[phrasing]} phrasing, {order}"


def _sentences(text: str) -> list[str]:
    return [f"{s}." for s in split_sentences(text)]


def restyle(text: str, index: int, parse: Parse) -> str:
    """``text`` in rewrite style ``index``: every readable claim re-rendered, unreadable sentences kept verbatim."""
    phrasing, order = style_of(index)
    rendered: list[tuple[int | None, str]] = []
    for sentence in _sentences(text):
        claim = parse(sentence)
        if claim is None:
            rendered.append((None, sentence))
        else:
            rendered.append((claim[1], styled_sentence(claim[0], claim[1], phrasing)))
    if order == "left to right":
        rendered.sort(key=lambda item: 3 if item[0] is None else item[0])
    elif order == "right to left":
        rendered.sort(key=lambda item: 3 if item[0] is None else 2 - item[0])
    return " ".join(s for _, s in rendered)


def correct(sentences: Sequence[str], objects: ImageObjects, parse: Parse) -> tuple[list[tuple[str, str]], str | None]:
    """``(labels with reasons, corrected description or None when nothing is hallucinated)``."""
    labels = oracle_labels(sentences, objects, parse)
    if not any(label == "hallucination" for label, _ in labels):
        return labels, None
    columns: dict[str, list[int]] = {}
    for name, column in objects:
        columns.setdefault(name, []).append(column)
    kept = []
    for sentence, (label, _) in zip(sentences, labels, strict=True):
        if label != "hallucination":
            kept.append(sentence)
            continue
        claim = parse(sentence)
        name = claim[0] if claim is not None else None
        if name in columns:  # a present object in the wrong place: put it where it is
            kept.append(object_sentence(name, sorted(columns[name])[0]))
    return labels, " ".join(kept) if kept else describe(objects)


def questions(sentences: Sequence[str], labels: Sequence[str], objects: ImageObjects, parse: Parse, *,
              max_hallucinated: int, max_present: int) -> list[tuple[str, str, str, str]]:
    """``(question, answer, correct, incorrect)``: absent hallucinated objects first, then present objects."""
    present = [name for name, _ in sorted(objects, key=lambda o: o[1])]
    absent: list[str] = []
    for sentence, label in zip(sentences, labels, strict=True):
        claim = parse(sentence) if label == "hallucination" else None
        if claim is not None and claim[0] not in present and claim[0] not in absent:
            absent.append(claim[0])
    items = [(question(n), "no", no_answer(n), yes_answer(n)) for n in absent[:max_hallucinated]]
    items += [(question(n), "yes", yes_answer(n), no_answer(n)) for n in dict.fromkeys(present)][:max_present]
    return items


def mining_responder(objects_by_image: Mapping[str, ImageObjects], parse: Parse) -> Callable[[ChatRequest], str]:
    """A :class:`LocalChatClient` responder for the mining steps, reading each request's ``context``."""

    def respond(request: ChatRequest) -> str:
        ctx: Mapping[str, Any] = request.context
        image_id = str(ctx["image_id"])
        if image_id not in objects_by_image:
            raise KeyError(f"no annotations for image {image_id}")
        objects = objects_by_image[image_id]
        step = ctx["step"]
        if step == "correct":
            labels, corrected = correct(ctx["sentences"], objects, parse)
            return format_correction(labels, corrected)
        if step == "rewrite":
            return format_rewrites([
                (style_name(i), restyle(ctx["positive"], i, parse), restyle(ctx["negative"], i, parse))
                for i in range(int(ctx["k"]))
            ])
        if step == "qa":
            return format_questions(questions(ctx["sentences"], ctx["labels"], objects, parse,
                                              max_hallucinated=int(ctx["max_hallucinated"]),
                                              max_present=int(ctx["max_present"])))
        raise ValueError(f"unknown mining step {step!r}")

    return respond


def mining_oracle(data_root: str | Path) -> LocalChatClient:
    """The mining oracle for the shapes world under ``data_root`` (``protocol()['model']`` names it)."""
    objects = world_objects(data_root)
    categories = world_categories(data_root, objects)
    return LocalChatClient(
        mining_responder(objects, lambda sentence: parse_sentence(sentence, categories)),
        name=ORACLE_NAME,
        settings={"rule": "objects.json; rewrites in the world grammar", "styles": len(SENTENCE_STYLES) * len(ORDERS)},
    )
