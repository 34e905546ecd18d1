"""Errors the kit raises for bad input: each names the file, the record and the field."""

from __future__ import annotations

from pathlib import Path


class HadpoError(Exception):
    """Base class of the kit's own errors."""


class DataError(HadpoError, ValueError):
    """A malformed input file.

    The message always names the file, and, where they are known, the record (index or id, or the
    line number of a JSON-lines file) and the field, so the user can open the file and fix it.
    """

    def __init__(
        self,
        file: str | Path,
        message: str,
        *,
        record: int | str | None = None,
        field: str | None = None,
        line: int | None = None,
    ) -> None:
        self.file = str(file)
        self.record = record
        self.field = field
        self.line = line
        self.reason = message
        where = [self.file]
        if line is not None:
            where.append(f"line {line}")
        if record is not None:
            where.append(f"record {record!r}" if isinstance(record, str) else f"record {record}")
        if field is not None:
            where.append(f"field '{field}'")
        super().__init__(": ".join([", ".join(where), message]))


class ParamsError(HadpoError, ValueError):
    """A bad parameter: unknown key, wrong type or value out of range."""


class JudgeError(HadpoError):
    """The LLM judge as a whole failed: the run cannot produce an honest judged result."""


class JudgeUnavailable(JudgeError):
    """The judge cannot be used at all: a rejected key, an unknown model, no server, or a server that stays down.

    Raised at once, before more work is spent; the message names the endpoint, the model and what the server said
    (never the key). Replies accepted before the failure stay in the reply cache, so a rerun resumes.
    """


class JudgeIncomplete(JudgeError):
    """More items stayed unjudged than the run allows; the results were written, marked incomplete."""
