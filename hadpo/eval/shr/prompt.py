"""The SHR judge prompt: ground truth about one image, then the description's numbered sentences.

A prompt is a template with three slots, filled in this order by the original judge: the region descriptions
(boxes normalised to the image size), the human-written facts, and the numbered sentences. The judge answers
under a ``Judgement:`` line with one ``N. <label>: <reason>`` line per sentence.

* The kit's own template (:data:`KIT_TEMPLATE`, the default) is the kit's wording. A user may supply any template
  file instead (``judge_prompt``), e.g. the original's prompt text copied from the original repository: the file
  is used verbatim, with the slots written ``{regions}``, ``{facts}`` and ``{sentences}``, or as three ``{}`` in
  that order (the original's form); a literal brace is written ``{{`` or ``}}``.
* How the slots are written is a separate choice (``judge_format``): ``kit`` writes boxes as ``[0.10, 0.25, ...]``
  with two decimals, stripped facts one per line, ``(none)`` for an empty list and each sentence with its final
  period; ``original`` writes them as the original code did: boxes as Python's list of floats rounded to two
  decimals (``[0.1, 0.25, ...]``), phrases and facts as stored, each line ending in a newline, nothing for an
  empty list, and sentences without a final period.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from hadpo.eval.shr.sentences import numbered_sentences
from hadpo.judge.template import PromptTemplate

#: The labels a judge may give, lower-case, as the parser compares them.
LABELS = ("hallucination", "correct", "cannot judge")

#: Prompts longer than this are not sent (the original skipped them too); such images are counted, not judged.
DEFAULT_MAX_PROMPT_CHARS = 15000

JUDGEMENT_HEADER = "Judgement:"

#: The slots a template fills, in the order of the original's positional slots.
SLOTS = ("regions", "facts", "sentences")

JudgeFormat = Literal["kit", "original"]

KIT_TEMPLATE = """\
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

Answer with the line "Judgement:" followed by exactly one line per sentence, in the same order, formatted as
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


@dataclass(frozen=True)
class NormalizedRegion:
    """A region's box corners as fractions of the image size, and its phrase as stored."""

    x1: float
    y1: float
    x2: float
    y2: float
    phrase: str

    @property
    def box(self) -> tuple[float, float, float, float]:
        """``(x1, y1, x2, y2)``."""
        return (self.x1, self.y1, self.x2, self.y2)


def normalized_regions(regions: Iterable[RegionLike], image_width: float,
                       image_height: float) -> list[NormalizedRegion]:
    """Every region with its corners divided by the image size (phrases untouched, blank ones included)."""
    if image_width <= 0 or image_height <= 0:
        raise ValueError(f"image size must be positive, got {image_width}x{image_height}")
    return [
        NormalizedRegion(r.x / image_width, r.y / image_height, (r.x + r.width) / image_width,
                         (r.y + r.height) / image_height, r.phrase)
        for r in regions
    ]


def _kit_region(region: NormalizedRegion) -> str | None:
    phrase = region.phrase.strip()
    return f"[{', '.join(f'{v:.2f}' for v in region.box)}]: {phrase}" if phrase else None


def _original_region(region: NormalizedRegion) -> str | None:
    # The original printed a list of floats rounded through '%.2f' and kept any non-empty phrase as stored.
    return f"{[float(f'{v:.2f}') for v in region.box]}: {region.phrase}" if region.phrase else None


def region_lines(regions: Iterable[RegionLike], image_width: float, image_height: float) -> list[str]:
    """``[x1, y1, x2, y2]: phrase`` (kit format) per region with a non-empty phrase."""
    lines = (_kit_region(r) for r in normalized_regions(regions, image_width, image_height))
    return [line for line in lines if line is not None]


def prompt_blocks(regions: Sequence[NormalizedRegion], facts: Sequence[str], sentences: Sequence[str],
                  judge_format: JudgeFormat = "kit") -> dict[str, str]:
    """The three slot texts in ``judge_format`` (module docstring); ``sentences`` are given without a period."""
    if judge_format == "original":
        lines = [line for line in map(_original_region, regions) if line is not None]
        return {
            "regions": "".join(f"{line}\n" for line in lines),
            "facts": "".join(f"{fact}\n" for fact in facts),
            "sentences": "".join(f"{i}. {s}\n" for i, s in enumerate(sentences, start=1)),
        }
    kit_lines = [line for line in map(_kit_region, regions) if line is not None]
    kept_facts = [f.strip() for f in facts if f.strip()]
    return {
        "regions": "\n".join(kit_lines) if kit_lines else "(none)",
        "facts": "\n".join(kept_facts) if kept_facts else "(none)",
        "sentences": numbered_sentences([f"{s}." for s in sentences]),
    }


class JudgePrompt(PromptTemplate):
    """SHR's judge prompt template: the kit's own, or a file with the slots {regions}, {facts} and {sentences}."""

    @classmethod
    def kit(cls) -> JudgePrompt:
        """The kit's own template."""
        return cls(KIT_TEMPLATE, SLOTS)

    @classmethod
    def from_file(cls, path: str | Path, slots: tuple[str, ...] = SLOTS) -> JudgePrompt:
        """A template file with SHR's slots, used verbatim; checked now (a :class:`DataError` names the file)."""
        template = PromptTemplate.from_file(path, slots)
        return cls(template.text, template.slots, template.source, template.positional)


def build_judge_prompt(regions: Sequence[NormalizedRegion], facts: Sequence[str], sentences: Sequence[str], *,
                       template: JudgePrompt | None = None, judge_format: JudgeFormat = "kit") -> str:
    """The filled prompt for ``sentences`` (without their final period) of one image."""
    return (template or JudgePrompt.kit()).fill(prompt_blocks(regions, facts, sentences, judge_format))


def format_judgement(items: Sequence[tuple[str, str]]) -> str:
    """A reply in the format the prompt asks for, from ``(label, reason)`` pairs (used by offline judges)."""
    body = [f"{i}. {label}: {reason}" for i, (label, reason) in enumerate(items, start=1)]
    return "\n".join([JUDGEMENT_HEADER, *body])
