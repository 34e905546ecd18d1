"""The three judge prompts of mining, and the reply format each asks for.

1. **Detect and correct**: the image's annotations and the model's description, sentence by sentence; the judge
   labels every sentence (the SHR labels) and writes a corrected description without the hallucinations.
2. **Rewrite**: the corrected (positive) and the original (negative) description; the judge writes ``k`` pairs of
   rewrites, pair ``i`` in one shared style, each side keeping exactly its own facts.
3. **QA conversion**: both descriptions and the annotations; the judge writes existence questions about the
   hallucinated objects and about objects that are present, each with a correct and an incorrect answer in the
   model's own answer style.

Replies use labelled lines, which the parsers in :mod:`hadpo.mining.parse` read; the ``format_*`` functions write
the same format, so an offline responder is read by exactly the same code as an LLM. The wording is the kit's own.
"""

from __future__ import annotations

from collections.abc import Sequence

from hadpo.eval.shr.prompt import JUDGEMENT_HEADER, format_judgement, region_lines
from hadpo.eval.shr.sentences import numbered_sentences
from hadpo.mining.annotations import ImageAnnotations

CORRECTED_HEADER = "Corrected description:"
NONE_MARK = "NONE"
STYLE_LABEL, POSITIVE_LABEL, NEGATIVE_LABEL = "Style", "Positive", "Negative"
QUESTION_LABEL, ANSWER_LABEL, CORRECT_LABEL, INCORRECT_LABEL = "Question", "Answer", "Correct", "Incorrect"
NO_QUESTIONS = "Questions: none"

_CORRECT_TEMPLATE = """\
You will check a description of an image for hallucination (content that is not actually in the image) and \
then correct it.

Ground truth about the image follows: the annotated objects and region descriptions, each with a box \
"[x1, y1, x2, y2]" whose corners are fractions of the image width and height (0 is the left or top edge, 1 the \
right or bottom edge). Boxes that overlap a lot may show the same object. Treat the annotations as reliable.

First label every numbered sentence with exactly one of:
- hallucination: it names an object, attribute, number, position or relation that the annotations contradict \
or that is not in the image;
- correct: the annotations support it;
- cannot judge: it is subjective (mood, style, feelings) or cannot be checked against the annotations.
Give a short reason for each label.

Then write the corrected description: the same text with every hallucination removed or fixed to agree with the \
annotations. Change nothing else: keep the correct and uncheckable sentences, their wording and their order, and \
add nothing new. If no sentence is a hallucination, write {none} as the corrected description.

Answer in exactly this format and write nothing else:
{header}
<number>. <hallucination, correct or cannot judge>: <reason>
(one line per sentence, in order)
{corrected}
<the corrected description as one paragraph, or {none}>

Annotations:
{annotations}

Sentences to check:
{sentences}
"""

_REWRITE_TEMPLATE = """\
Below are two descriptions of the same image. The positive one is accurate; the negative one contains \
hallucinations. Write {k} pairs of rewrites. In pair i, rewrite the positive and the negative description in \
one shared writing style (sentence order, sentence structure, word choice, tone), and use a different style for \
each pair. Every rewrite must keep exactly the facts of the description it rewrites: the positive rewrite adds \
no object, attribute or position and drops none; the negative rewrite keeps every one of its claims, the \
hallucinated ones included. Within a pair the two rewrites should differ only where the facts differ.

Answer in exactly this format, {k} times, and write nothing else:
{style} <i>: <a few words naming the style>
{positive}: <the positive description rewritten, one paragraph>
{negative}: <the negative description rewritten in the same style, one paragraph>

Positive description:
{positive_text}

Negative description:
{negative_text}
"""

_QA_TEMPLATE = """\
Below are the annotations of an image, a description of it that contains hallucinations (negative), the \
corrected description (positive) and the sentences found to be hallucinations. Turn them into yes/no questions \
about whether an object is in the image:
- up to {max_hallucinated} question(s) about objects that the negative description mentions but that are not in \
the image (the right answer is no);
- up to {max_present} question(s) about objects that are in the image according to the annotations (the right \
answer is yes).
Ask each question as "Is there a <object> in the image?" (with "an" before a vowel sound). For each give the \
correct answer and an incorrect answer, both as full sentences in exactly the style of these two examples:
"{yes_example}"
"{no_example}"

Answer in exactly this format, one block per question, and write nothing else:
{question} <n>: <question>
{answer}: <yes or no>
{correct}: <the correct answer sentence>
{incorrect}: <the incorrect answer sentence>
If there is nothing to ask, answer with the single line "{no_questions}".

Annotations:
{annotations}

Negative description:
{negative_text}

Positive description:
{positive_text}

Hallucinated sentences:
{hallucinated}
"""


def _box(x: float, y: float, w: float, h: float, width: float, height: float) -> str:
    return f"[{x / width:.2f}, {y / height:.2f}, {(x + w) / width:.2f}, {(y + h) / height:.2f}]"


def annotation_text(image: ImageAnnotations) -> str:
    """The ground-truth block of a prompt: object lines (name and box), then region lines (``[box]: phrase``)."""
    objects = [f"{_box(o.x, o.y, o.w, o.h, image.width, image.height)}: {o.name}" for o in image.objects]
    regions = region_lines(image.regions, image.width, image.height)
    return "\n".join(["Objects:", *(objects or ["(none)"]), "Regions:", *(regions or ["(none)"])])


def correct_prompt(annotations: str, sentences: Sequence[str]) -> str:
    """The detect-and-correct prompt for a description split into ``sentences``."""
    return _CORRECT_TEMPLATE.format(header=JUDGEMENT_HEADER, corrected=CORRECTED_HEADER, none=NONE_MARK,
                                    annotations=annotations, sentences=numbered_sentences(list(sentences)))


def rewrite_prompt(positive: str, negative: str, k: int) -> str:
    """The rewrite prompt asking for ``k`` style-matched pairs."""
    return _REWRITE_TEMPLATE.format(k=k, style=STYLE_LABEL, positive=POSITIVE_LABEL, negative=NEGATIVE_LABEL,
                                    positive_text=positive, negative_text=negative)


def qa_prompt(annotations: str, positive: str, negative: str, hallucinated: Sequence[str], *,
              max_hallucinated: int, max_present: int, yes_example: str, no_example: str) -> str:
    """The QA-conversion prompt."""
    return _QA_TEMPLATE.format(
        max_hallucinated=max_hallucinated, max_present=max_present, yes_example=yes_example,
        no_example=no_example, question=QUESTION_LABEL, answer=ANSWER_LABEL, correct=CORRECT_LABEL,
        incorrect=INCORRECT_LABEL, no_questions=NO_QUESTIONS, annotations=annotations, negative_text=negative,
        positive_text=positive, hallucinated="\n".join(hallucinated) if hallucinated else "(none)",
    )


def format_correction(labels: Sequence[tuple[str, str]], corrected: str | None) -> str:
    """A detect-and-correct reply: judgement lines, then the corrected description (None: no hallucination)."""
    return "\n".join([format_judgement(labels), CORRECTED_HEADER, corrected if corrected is not None else NONE_MARK])


def format_rewrites(pairs: Sequence[tuple[str, str, str]]) -> str:
    """A rewrite reply from ``(style name, positive, negative)`` triples."""
    lines = []
    for i, (style, positive, negative) in enumerate(pairs, start=1):
        lines += [f"{STYLE_LABEL} {i}: {style}", f"{POSITIVE_LABEL}: {positive}", f"{NEGATIVE_LABEL}: {negative}"]
    return "\n".join(lines)


def format_questions(items: Sequence[tuple[str, str, str, str]]) -> str:
    """A QA reply from ``(question, answer, correct answer, incorrect answer)`` tuples."""
    if not items:
        return NO_QUESTIONS
    lines = []
    for i, (question, answer, correct, incorrect) in enumerate(items, start=1):
        lines += [f"{QUESTION_LABEL} {i}: {question}", f"{ANSWER_LABEL}: {answer}", f"{CORRECT_LABEL}: {correct}",
                  f"{INCORRECT_LABEL}: {incorrect}"]
    return "\n".join(lines)
