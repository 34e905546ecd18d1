"""An offline MMHal-Bench judge for the shapes world: rates an answer 0–6 from the image's annotations.

It reads the request's context (the judge sets it: ``image_content``, ``gt_answer``, ``answer``), parses the answer's
sentences with the world's grammar and checks each claimed object against the annotated ones (name and, when the
sentence names one, column). An answer with a false claim is a hallucination (rated 2, 1 or 0), one without is not
(rated 5, 4 or 3); within each, how informative it is: it gives what the human answer gives (the objects it names,
the absence it states, or for a count or the background at least half of its content words), it says something
true but not that, or it says nothing checkable. The reply is in the
format the kit's prompt asks for, so the same parser and re-asks run on it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from hadpo.eval.mmhal.prompt import format_rating
from hadpo.judge.base import ChatRequest
from hadpo.judge.local import LocalChatClient

ORACLE_NAME = "shapes-oracle"
_NEGATION = re.compile(r"\b(no|not|none|isn't|there's no)\b")


def oracle_rating(answer: str, gt_answer: str, content: Sequence[str], categories: Sequence[str]) -> tuple[int, str]:
    """``(rating, reason)`` of one answer (see the module docstring)."""
    from hadpo.world.text import parse_description, parse_sentence

    present: dict[str, set[int | None]] = {}
    for phrase in content:
        claim = parse_sentence(phrase, categories)
        if claim is not None:
            present.setdefault(claim[0], set()).add(claim[1])
    claims = [claim for _, claim in parse_description(answer, categories) if claim is not None]
    false = [(n, c) for n, c in claims if n not in present or (c is not None and c not in present[n])]
    true_names = {n for n, c in claims if (n, c) not in false}
    wanted = {claim[0] for _, claim in parse_description(gt_answer, categories) if claim is not None}
    denied = [name for name in categories if f"no {name}" in gt_answer.lower()]
    if denied:  # the human answer states an absence: informative is saying so
        informative = any(f"no {name}" in answer.lower() or (name in answer.lower() and _NEGATION.search(
            answer.lower())) for name in denied)
    elif wanted:
        informative = wanted <= true_names
    else:  # counting, the background: at least half of the human answer's content words
        key = {w for w in re.findall(r"[a-z]+", gt_answer.lower()) if len(w) > 3}
        said = set(re.findall(r"[a-z]+", answer.lower()))
        informative = bool(key) and len(key & said) >= len(key) / 2
    some = bool(true_names)
    if false:
        name, column = false[0]
        why = f"it claims {name}{'' if column is None else f' in column {column}'}, which the image does not have"
        return (2 if informative else 1 if some else 0), why
    if informative:
        return 5, "it gives what the image shows, without hallucination"
    return (4, "it names objects that are there, but not what was asked") if some else (
        3, "it claims nothing about the image that can be checked")


def oracle_responder(categories: Sequence[str]) -> Callable[[ChatRequest], str]:
    """A responder for :class:`~hadpo.judge.local.LocalChatClient` reading the context of MMHal-Bench requests."""

    def respond(request: ChatRequest) -> str:
        context = request.context
        rating, reason = oracle_rating(str(context["answer"]), str(context["gt_answer"]),
                                       list(context["image_content"]), categories)
        return format_rating(rating, reason)

    return respond


def world_oracle(data_root: str) -> LocalChatClient:
    """The oracle for the shapes world under ``data_root`` (its categories from ``world.json``)."""
    from hadpo.world.shr_oracle import world_categories

    categories = world_categories(data_root, {})
    return LocalChatClient(oracle_responder(categories), name=ORACLE_NAME,
                           settings={"rule": "MMHal-Bench rating from image_content and gt_answer"})
