"""Reading judge replies of the three mining steps, each with a verdict on whether it is usable.

The parsers are lenient about form (case, Markdown emphasis, a label repeated with its number, text running over
several lines) and strict about content: a reply is unusable, and asked again, when a sentence has no label, a
hallucination has no correction, a rewrite pair lacks a side, or an answer does not read the way it claims by
POPE's rule. Nothing here raises for a bad reply; the ``error`` field says what is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hadpo.eval.pope.score import parse_pope
from hadpo.eval.shr.parse import parse_judgement
from hadpo.mining.prompts import CORRECTED_HEADER, NONE_MARK

_MARKUP = re.compile(r"[*`]+")
_HEADING = re.compile(r"^\s*#+\s*")
# A label may follow a list marker ("- ", "1. "), and carry its number ("Positive 2:").
_LIST_MARK = r"^\s*(?:[-•]\s*|\d+[.)]\s*)?"
_REWRITE_FIELD = re.compile(_LIST_MARK + r"(style|positive|negative)\b\s*(\d+)?\s*[:.)\-]\s*(.*)$", re.IGNORECASE)
_QA_FIELD = re.compile(_LIST_MARK + r"(question|answer|correct|incorrect)(?:\s+answer)?\s*(\d+)?\s*[:.)\-]\s*(.*)$",
                       re.IGNORECASE)
_NO_QUESTIONS = re.compile(r"questions\s*:\s*none", re.IGNORECASE)


def clean_reply(reply: str) -> str:
    """The reply without Markdown emphasis, code marks and heading hashes (LLMs add them unasked)."""
    return "\n".join(_HEADING.sub("", _MARKUP.sub("", line)) for line in reply.splitlines())


def _unquote(text: str) -> str:
    text = " ".join(text.split())
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text


@dataclass(frozen=True)
class ParsedCorrection:
    """A detect-and-correct reply: per-sentence labels and lines, the corrected text (None: nothing to correct)."""

    labels: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    corrected: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the reply can be used."""
        return self.error is None

    @property
    def hallucinated(self) -> list[int]:
        """Indices of the sentences labelled hallucination."""
        return [i for i, label in enumerate(self.labels) if label == "hallucination"]


def parse_correction(reply: str, expected: int) -> ParsedCorrection:
    """Read a detect-and-correct reply for a description of ``expected`` sentences."""
    text = clean_reply(reply)
    at = text.lower().find(CORRECTED_HEADER.lower())
    if at < 0:
        return ParsedCorrection(error=f"no '{CORRECTED_HEADER}' line in the reply")
    judged = parse_judgement(text[:at], expected)
    if not judged.ok:
        return ParsedCorrection(judged.labels, judged.lines, error=judged.error)
    corrected: str | None = _unquote(text[at + len(CORRECTED_HEADER):])
    if not corrected or corrected.rstrip(".").upper() == NONE_MARK:
        corrected = None
    if "hallucination" not in judged.labels:
        # Nothing to correct: whatever text follows is not a positive (it would equal the negative).
        return ParsedCorrection(judged.labels, judged.lines, None)
    if corrected is None:
        return ParsedCorrection(judged.labels, judged.lines,
                                error="sentences are labelled hallucination but no corrected description is given")
    return ParsedCorrection(judged.labels, judged.lines, corrected)


@dataclass(frozen=True)
class RewritePair:
    """Rewrite ``i`` of the positive and of the negative description, in one style."""

    style: str
    positive: str
    negative: str


@dataclass(frozen=True)
class ParsedRewrites:
    """A rewrite reply: the first ``k`` complete pairs, or why there are not ``k`` of them."""

    pairs: list[RewritePair] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the reply can be used."""
        return self.error is None


def _labelled_blocks(text: str, pattern: re.Pattern[str], opener: str) -> list[dict[str, str]]:
    """Blocks of ``{label: value}``: a line with the ``opener`` label starts a block, unlabelled lines continue the
    last field, and a label seen twice in a block starts the next block (a reply that omits the opener)."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    last: str | None = None
    for line in text.splitlines():
        match = pattern.match(line)
        if match:
            label, value = match.group(1).lower(), match.group(3).strip()
            if current is None or label == opener or label in current:
                current = {}
                blocks.append(current)
            current[label] = value
            last = label
        elif current is not None and last is not None and line.strip():
            current[last] = f"{current[last]} {line.strip()}".strip()
    return blocks


def parse_rewrites(reply: str, k: int) -> ParsedRewrites:
    """Read a rewrite reply asking for ``k`` pairs; extra pairs beyond ``k`` are ignored."""
    blocks = _labelled_blocks(clean_reply(reply), _REWRITE_FIELD, "style")
    pairs: list[RewritePair] = []
    for n, block in enumerate(blocks, start=1):
        positive, negative = _unquote(block.get("positive", "")), _unquote(block.get("negative", ""))
        if not positive or not negative:
            missing = "positive" if not positive else "negative"
            return ParsedRewrites(pairs, f"pair {n} has no {missing} rewrite")
        pairs.append(RewritePair(_unquote(block.get("style", "")), positive, negative))
    if len(pairs) < k:
        return ParsedRewrites(pairs, f"{len(pairs)} rewrite pair(s) for the {k} asked")
    return ParsedRewrites(pairs[:k])


@dataclass(frozen=True)
class QAItem:
    """An existence question with its right answer (``yes``/``no``) and a correct and an incorrect response."""

    question: str
    answer: str
    correct: str
    incorrect: str


@dataclass(frozen=True)
class ParsedQuestions:
    """A QA-conversion reply: the questions kept, or why the reply cannot be used."""

    items: list[QAItem] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the reply can be used."""
        return self.error is None


def parse_questions(reply: str, *, max_no: int, max_yes: int) -> ParsedQuestions:
    """Read a QA-conversion reply; keeps at most ``max_no`` no-questions and ``max_yes`` yes-questions.

    Each response must read as its claim by POPE's rule (the correct one as the answer, the incorrect one as the
    opposite), since that is how the trained model's answers are scored.
    """
    text = clean_reply(reply)
    blocks = _labelled_blocks(text, _QA_FIELD, "question")
    if not blocks:
        if _NO_QUESTIONS.search(text):
            return ParsedQuestions([])
        return ParsedQuestions(error="no 'Question' blocks and no 'Questions: none' line")
    items: list[QAItem] = []
    seen: set[str] = set()
    kept = {"yes": 0, "no": 0}
    for n, block in enumerate(blocks, start=1):
        missing = [key for key in ("question", "answer", "correct", "incorrect") if not block.get(key, "").strip()]
        if missing:
            return ParsedQuestions(items, f"question {n} lacks {', '.join(missing)}")
        question = _unquote(block["question"])
        answer = block["answer"].strip().strip(".!\"'").lower()
        if answer not in ("yes", "no"):
            return ParsedQuestions(items, f"question {n} has answer {block['answer']!r}; expected yes or no")
        correct, incorrect = _unquote(block["correct"]), _unquote(block["incorrect"])
        if parse_pope(correct) != answer:
            return ParsedQuestions(items, f"question {n}: the correct response {correct!r} does not read as {answer!r}")
        if parse_pope(incorrect) == answer:
            return ParsedQuestions(items, f"question {n}: the incorrect response {incorrect!r} reads as {answer!r}")
        key = question.lower()
        if key in seen or kept[answer] >= (max_yes if answer == "yes" else max_no):
            continue
        seen.add(key)
        kept[answer] += 1
        items.append(QAItem(question, answer, correct, incorrect))
    return ParsedQuestions(items)
