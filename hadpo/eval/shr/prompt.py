"""The SHR judge prompt: ground truth about one image, then the description's numbered sentences.

The structure follows the original judge: region descriptions with boxes normalised to the image size,
human-written factual statements, then the sentences; the judge answers under a ``Judgement:`` line with one
``N. <label>: <reason>`` line per sentence. The wording is the kit's own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from hadpo.eval.shr.sentences import numbered_sentences

#: The labels a judge may give, lower-case, as the parser compares them.
LABELS = ("hallucination", "correct", "cannot judge")

#: Prompts longer than this are not sent (the original skipped them too); such images are counted, not judged.
DEFAULT_MAX_PROMPT_CHARS = 15000

JUDGEMENT_HEADER = "Judgement:"

_TEMPLATE = """\
You will check a description of an image, sentence by sentence, for hallucination: content that is not \
actually in the image.

You get two kinds of ground truth about the image.
1. Region descriptions, one per line, written as "[x1, y1, x2, y2]: description". The numbers are the corners \
of the region's box as fractions of the image width and height (0 is the left or top edge, 1 the right or \
bottom edge). Boxes that overlap a lot may show the same object.
2. Facts written by people who looked at the image. Treat them as fully reliable.

Both only describe objects and what is visible in regions of the image. Label every numbered sentence with \
exactly one of:
- hallucination: it names an object, attribute, number, position or relation that the ground truth \
contradicts or that is not in the image;
- correct: the ground truth supports it;
- cannot judge: it is subjective (mood, atmosphere, style, feelings) or cannot be checked against the \
ground truth.
Give a short reason for each label.

Answer with the line "{header}" followed by exactly one line per sentence, in the same order, formatted as
<number>. <hallucination, correct or cannot judge>: <reason>
Write nothing else.

Region descriptions:
{regions}

Facts:
{facts}

Sentences to judge:
{sentences}
"""


@dataclass(frozen=True)
class Region:
    """A region annotation in pixels (Visual Genome's ``x, y, width, height, phrase``)."""

    x: float
    y: float
    width: float
    height: float
    phrase: str


class RegionLike(Protocol):
    """Anything with a pixel box and a phrase (:class:`Region`, ``hadpo.data.vg.Region``)."""

    x: float
    y: float
    width: float
    height: float
    phrase: str


def region_lines(regions: Iterable[RegionLike], image_width: float, image_height: float) -> list[str]:
    """``[x1, y1, x2, y2]: phrase`` per region with a non-empty phrase, corners divided by the image size."""
    if image_width <= 0 or image_height <= 0:
        raise ValueError(f"image size must be positive, got {image_width}x{image_height}")
    lines = []
    for r in regions:
        phrase = r.phrase.strip()
        if not phrase:
            continue
        box = (r.x / image_width, r.y / image_height, (r.x + r.width) / image_width, (r.y + r.height) / image_height)
        lines.append(f"[{', '.join(f'{v:.2f}' for v in box)}]: {phrase}")
    return lines


def build_judge_prompt(region_text: Sequence[str], facts: Sequence[str], sentences: Sequence[str]) -> str:
    """The filled prompt: region lines, facts (one per line, may be empty) and the numbered ``sentences``."""
    return _TEMPLATE.format(
        header=JUDGEMENT_HEADER,
        regions="\n".join(region_text) if region_text else "(none)",
        facts="\n".join(f.strip() for f in facts if f.strip()) if any(f.strip() for f in facts) else "(none)",
        sentences=numbered_sentences(list(sentences)),
    )


def format_judgement(items: Sequence[tuple[str, str]]) -> str:
    """A reply in the format the prompt asks for, from ``(label, reason)`` pairs (used by offline judges)."""
    body = [f"{i}. {label}: {reason}" for i, (label, reason) in enumerate(items, start=1)]
    return "\n".join([JUDGEMENT_HEADER, *body])
