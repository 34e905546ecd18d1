"""Reading a judge reply into per-sentence labels, by the original's rule, with a verdict on whether it is usable.

The original rule: take the non-empty lines after the first line containing ``Judgement:``, drop each line's
first space-separated token (the ``N.`` number), drop lines left empty; a line's label is the lower-cased text
before its first ``:``. Where the original silently set a whole image to "no judgement" when the line count
was off, this parser reports *why* a reply is unusable, so the caller can ask again and count what stays bad.
"""

from __future__ import annotations

from dataclasses import dataclass

from hadpo.eval.shr.prompt import JUDGEMENT_HEADER, LABELS


@dataclass(frozen=True)
class ParsedJudgement:
    """A reply read line by line.

    Attributes:
        lines: the judgement lines with their number dropped (``"correct: reason"``).
        labels: the lower-cased label of each line.
        error: why the reply cannot be used for ``expected`` sentences, or None when it can.
    """

    lines: list[str]
    labels: list[str]
    error: str | None

    @property
    def ok(self) -> bool:
        """Whether every sentence got exactly one known label."""
        return self.error is None


def judgement_lines(reply: str) -> list[str] | None:
    """Lines after the first ``Judgement:`` line, numbers dropped; None when there is no such line."""
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


def label_of(line: str) -> str:
    """The label of a judgement line: lower-cased text before the first ``:``."""
    return line.split(":", 1)[0].strip().lower()


def parse_judgement(reply: str, expected: int) -> ParsedJudgement:
    """Parse ``reply`` for a description of ``expected`` sentences (see the module docstring)."""
    lines = judgement_lines(reply)
    if lines is None:
        return ParsedJudgement([], [], f"no '{JUDGEMENT_HEADER}' line in the reply")
    labels = [label_of(line) for line in lines]
    if len(lines) != expected:
        return ParsedJudgement(lines, labels, f"{len(lines)} judgement line(s) for {expected} sentence(s)")
    for i, label in enumerate(labels, start=1):
        if label not in LABELS:
            return ParsedJudgement(lines, labels, f"line {i} has unknown label {label!r}; expected one of {LABELS}")
    return ParsedJudgement(lines, labels, None)
