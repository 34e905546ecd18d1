"""An offline MMHal-Bench judge for the shapes world: rates an answer 0–6 from the image's annotations.

It reads the request's context (the judge sets it: ``question_type``, ``question``, ``image_content``,
``gt_answer``, ``answer``). The answer's sentences are parsed with the world's grammar
(:func:`hadpo.world.text.parse_description`), clause by clause, and every object the answer claims is checked
against the annotated ones: a category the image does not have, or one placed in a column where it is not, is a
hallucination. Relative phrases ("to the right of the circle", "further to the left") place nothing, so they are
not read as columns. Each question type adds what a wrong answer to it looks like: a wrong count, a wrong colour,
the wrong one of the two objects compared, a background described as bright.

How informative the answer is: it gives what the human answer gives (the objects it names, the absence it states,
the count, the colour, the object further left, a word for the background), it says something true but not that,
or it says nothing checkable. The two verdicts map onto MMHal-Bench's scale: without hallucination 5, 4 or 3;
with it 2, 1 or 0. (6, reasoning beyond the answer, is never given: the world's answers have none to give.) The
reply is in the format the kit's prompt asks for, so the same parser and re-asks run on it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hadpo.eval.mmhal.prompt import format_rating
from hadpo.judge.base import ChatRequest
from hadpo.judge.local import LocalChatClient

ORACLE_NAME = "shapes-oracle"

# Words that deny the object named after them in a clause ("there is no red circle", "I don't see ...").
_NEGATION = re.compile(r"\b(no|not|none|without|nothing|neither|nor)\b|n't\b")
# Relative placements: they relate two objects and say nothing about the column either is in.
_RELATIVE = re.compile(r"\b(?:(?:further|farther|more)\s+)?to\s+the\s+(?:left|right)\s+of\b"
                       r"|\b(?:further|farther|more)\s+(?:to\s+the\s+)?(?:left|right)\b"
                       r"|\b(?:left|right)\s+of\b")
# Clause boundaries inside a sentence: each clause is read as one claim.
_CLAUSE = re.compile(r"[;,:]|\b(?:and|but|while|whereas)\b")
# Words that place something: an answer to "where is X?" using one says X is there.
_LOCATION = re.compile(r"\b(left|right|middle|cent(?:er|re)|top|bottom|corner|next to|beside|near|above|below|"
                       r"between)\b")
_NUMBER_WORDS = {"zero": 0, "one": 1, "single": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
                 "seven": 7, "eight": 8, "nine": 9}
_NUMBER = re.compile(r"\b(\d+|" + "|".join(_NUMBER_WORDS) + r")\b")


@dataclass(frozen=True)
class Claim:
    """One object an answer names: its category, the column it is put in (None: none said), and whether denied."""

    name: str
    column: int | None
    denied: bool


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def _mention(name: str, text: str) -> re.Match[str] | None:
    return re.search(rf"\b{re.escape(name.lower())}\b", text)


def answer_claims(answer: str, categories: Sequence[str]) -> list[Claim]:
    """Every category the answer names, clause by clause, in order.

    A clause naming one object is read with :func:`~hadpo.world.text.parse_sentence` (its column, its denial); in a
    clause naming several, each is claimed without a column, denied when a negation precedes it in the clause.
    """
    from hadpo.world.text import parse_description, parse_sentence

    claims: list[Claim] = []
    for sentence, _ in parse_description(answer, categories):
        for clause in _CLAUSE.split(_RELATIVE.sub(" beside ", sentence.lower())):
            found = sorted((m.start(), n) for n in categories if (m := _mention(n, clause)) is not None)
            if len(found) == 1:
                parsed = parse_sentence(clause, categories)
                name = found[0][1]
                claims.append(Claim(name, parsed[1] if parsed else None, parsed is None))
            else:
                claims += [Claim(n, None, bool(_NEGATION.search(clause[:start]))) for start, n in found]
    return claims


def _count(answer: str) -> int | None:
    """The first number the answer states (digits or a word), if any."""
    match = _NUMBER.search(answer.lower())
    if match is None:
        return None
    word = match.group(1)
    return int(word) if word.isdigit() else _NUMBER_WORDS[word]


def _asked_category(question: str, categories: Sequence[str]) -> str | None:
    """The category whose shape word the question names (each category has its own shape)."""
    words = _words(question)
    return next((n for n in categories if n.split()[-1] in words), None)


def _present(content: Sequence[str], categories: Sequence[str]) -> dict[str, set[int | None]]:
    """The annotated objects: category → the columns it is in."""
    from hadpo.world.text import parse_sentence

    present: dict[str, set[int | None]] = {}
    for phrase in content:
        parsed = parse_sentence(phrase, categories)
        if parsed is not None:
            present.setdefault(parsed[0], set()).add(parsed[1])
    return present


def _answered(answer: str, gt_answer: str, content: Sequence[str], categories: Sequence[str], claims: list[Claim],
              true_names: set[str], question_type: str, question: str) -> tuple[bool, str | None]:
    """``(whether the answer gives what the human answer gives, the type's own kind of mistake in it or None)``."""
    from hadpo.world.mmhal_world import BACKGROUND_WORDS, CONTRARY_BACKGROUND_WORDS

    text = answer.lower()
    truth = answer_claims(gt_answer, categories)
    wanted = [c.name for c in truth if not c.denied]
    denied = sorted({c.name for c in truth if c.denied})
    if question_type == "counting":
        stated, count = _count(answer), len(content)
        wrong = stated is not None and stated != count
        return stated == count, f"it counts {stated} objects; the image has {count}" if wrong else None
    target = _asked_category(question, categories) if question_type == "attribute" else None
    if target is not None:
        colour, shape = target.split()[0], target.split()[-1]
        colours = {n.split()[0] for n in categories} & _words(text)
        wrong = bool(colours) and colour not in colours
        return colour in colours, f"it gives the {shape} another colour than {colour}" if wrong else None
    if denied:  # the human answer states an absence: informative is saying so too
        said = any(c.denied and c.name in denied for c in answer_claims(answer, categories))
        # "Where is the X?" answered with a place ("it is next to the circle") puts the absent X there.
        placed = not said and bool(_LOCATION.search(text))
        return said, f"it places the {denied[0]}, which the image does not have" if placed else None
    if question_type == "comparison" and wanted:
        chosen = next((c.name for c in claims), None)
        wrong = chosen is not None and chosen != wanted[0]
        return chosen == wanted[0], f"it puts the {chosen} further left than the {wanted[0]}" if wrong else None
    if wanted:
        return set(wanted) <= true_names, None
    # The background: what the answer says besides the objects it names.
    rest = text
    for name in categories:
        rest = rest.replace(name.lower(), " ")
    words = _words(rest)
    contrary = sorted(words & set(CONTRARY_BACKGROUND_WORDS))
    return (bool(words & set(BACKGROUND_WORDS)),
            f"it describes a dark background as {'/'.join(contrary)}" if contrary else None)


def oracle_rating(answer: str, gt_answer: str, content: Sequence[str], categories: Sequence[str], *,
                  question_type: str = "", question: str = "") -> tuple[int, str]:
    """``(rating, reason)`` of one answer (see the module docstring)."""
    present = _present(content, categories)
    claims = [c for c in answer_claims(answer, categories) if not c.denied]
    false = [c for c in claims if c.name not in present or (c.column is not None and c.column not in present[c.name])]
    true_names = {c.name for c in claims if c not in false}
    informative, mistake = _answered(answer, gt_answer, content, categories, claims, true_names, question_type,
                                     question)
    if false:  # a false object is the first thing to say
        mistake = f"it claims {_phrase(false[0])}, which the image does not have"
    some = bool(true_names)
    if mistake is not None:
        return (2 if informative else 1 if some else 0), f"Hallucination: {mistake}."
    if informative:
        return 5, "No hallucination: it gives what the image shows and what was asked."
    if some:
        return 4, "No hallucination: it names objects that are there, but not all that was asked."
    return 3, "No hallucination, but it does not answer what was asked."


def _phrase(claim: Claim) -> str:
    """``"a red circle on the left"`` (without the column when the claim gives none)."""
    from hadpo.world.text import object_phrase, with_article

    return with_article(claim.name) if claim.column is None else object_phrase(claim.name, claim.column)


def oracle_responder(categories: Sequence[str]) -> Callable[[ChatRequest], str]:
    """A responder for :class:`~hadpo.judge.local.LocalChatClient` reading the context of MMHal-Bench requests."""

    def respond(request: ChatRequest) -> str:
        context = request.context
        rating, reason = oracle_rating(str(context["answer"]), str(context["gt_answer"]),
                                       [str(c) for c in context["image_content"]], categories,
                                       question_type=str(context.get("question_type", "")),
                                       question=str(context.get("question", "")))
        return format_rating(rating, reason)

    return respond


def world_oracle(data_root: str) -> LocalChatClient:
    """The oracle for the shapes world under ``data_root`` (its categories from ``world.json``)."""
    from hadpo.world.shr_oracle import world_categories

    categories = world_categories(data_root, {})
    return LocalChatClient(oracle_responder(categories), name=ORACLE_NAME,
                           settings={"rule": "MMHal-Bench rating from image_content, the question and gt_answer"})
