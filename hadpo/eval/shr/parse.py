"""Reading a judge reply into per-sentence labels, with a verdict on whether it can be used.

Both readings take the non-empty lines after the first line containing ``Judgement:``, drop each line's first
space-separated token (the ``N.`` number), drop lines left empty, and take as a line's label the lower-cased
text before its first ``:``. They differ where a reply is imperfect (``counting``):

* ``kit``: each line is stripped before its number is dropped and its label is stripped, so ``  1. correct :``
  reads ``correct``; a reply is usable only with one known label per sentence, otherwise it is asked again.
* ``original``: exactly the original code's reading (lines split on ``\\n``, no stripping before the number is
  dropped or around the label), so an indented line or ``correct :`` gives a label that is not one of the three,
  and that sentence is discarded from the ratio; a reply is usable when it has a ``Judgement:`` line. A reply
  with the wrong number of lines is kept with no label for any sentence (the image stays in the counts, as in the
  original), and is reported as unjudged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hadpo.eval.shr.prompt import JUDGEMENT_HEADER, LABELS

#: How replies are read and images counted: the kit's way or the original code's.
Counting = Literal["kit", "original"]


@dataclass(frozen=True)
class ParsedJudgement:
    """A reply read line by line.

    Attributes:
        lines: the judgement lines with their number dropped (``"correct: reason"``).
        labels: the lower-cased label of each line (possibly not one of :data:`LABELS` under ``original``).
        error: why the reply does not give one known label per sentence, or None when it does.
        header: whether the reply has a ``Judgement:`` line.
    """

    lines: list[str]
    labels: list[str]
    error: str | None
    header: bool = True

    @property
    def ok(self) -> bool:
        """Whether every sentence got exactly one known label."""
        return self.error is None


def judgement_lines(reply: str) -> list[str] | None:
    """Lines after the first ``Judgement:`` line, numbers dropped (kit reading); None when there is no such line."""
    lines = [line for line in reply.splitlines() if line.strip()]
    start = next((i for i, line in enumerate(lines) if JUDGEMENT_HEADER in line), None)
    if start is None:
        return None
    out = []
    for line in lines[start + 1 :]:
        rest = " ".join(line.strip().split(" ")[1:]).strip()
        if rest:
            out.append(rest)
    return out


def original_judgement_lines(reply: str) -> list[str] | None:
    """The same lines as the original code reads them (no stripping before the number is dropped)."""
    lines = [line for line in reply.split("\n") if len(line) > 0]
    start = next((i for i, line in enumerate(lines) if JUDGEMENT_HEADER in line), None)
    if start is None:
        return None
    kept = (" ".join(line.split(" ")[1:]).strip() for line in lines[start + 1 :])
    return [line for line in kept if line]


def label_of(line: str) -> str:
    """The label of a judgement line (kit reading): lower-cased, stripped text before the first ``:``."""
    return line.split(":", 1)[0].strip().lower()


def parse_judgement(reply: str, expected: int, counting: Counting = "kit") -> ParsedJudgement:
    """Parse ``reply`` for a description of ``expected`` sentences (see the module docstring)."""
    original = counting == "original"
    lines = original_judgement_lines(reply) if original else judgement_lines(reply)
    if lines is None:
        return ParsedJudgement([], [], f"no '{JUDGEMENT_HEADER}' line in the reply", header=False)
    labels = [line.split(":")[0].lower() for line in lines] if original else [label_of(line) for line in lines]
    if len(lines) != expected:
        return ParsedJudgement(lines, labels, f"{len(lines)} judgement line(s) for {expected} sentence(s)")
    for i, label in enumerate(labels, start=1):
        if label not in LABELS:
            return ParsedJudgement(lines, labels, f"line {i} has unknown label {label!r}; expected one of {LABELS}")
    return ParsedJudgement(lines, labels, None)


def unusable_reason(parsed: ParsedJudgement, counting: Counting = "kit") -> str | None:
    """Why a parsed reply must be asked again, or None: ``kit`` needs one known label per sentence, ``original``
    only a ``Judgement:`` line (its other flaws are counted, as the original did)."""
    if counting == "original":
        return None if parsed.header else parsed.error
    return parsed.error
