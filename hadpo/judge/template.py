"""A judge prompt template with named slots, the kit's own or a user's file used verbatim.

The kit never ships another benchmark's protocol text: each judged benchmark has its own wording, and a user who
wants the original prompt puts it in a file (``judge_prompt``), with the slots written by name (``{question}``) or
as positional ``{}`` in the benchmark's slot order; a literal brace is written ``{{`` or ``}}``. The file's slots are
checked when it is read, so a bad template stops a run before anything is spent.
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass
from pathlib import Path

from hadpo.errors import DataError

_COUNT_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}


def _named(slots: tuple[str, ...]) -> str:
    names = ["{" + s + "}" for s in slots]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


@dataclass(frozen=True)
class PromptTemplate:
    """A template text, where it came from (``kit`` or the file's path), its slots and their form."""

    text: str
    slots: tuple[str, ...]
    source: str = "kit"
    positional: bool = False

    @classmethod
    def from_file(cls, path: str | Path, slots: tuple[str, ...]) -> PromptTemplate:
        """A template file, used verbatim; its slots are checked now (a :class:`DataError` names the file)."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise DataError(path, "judge prompt template not found (parameter judge_prompt)") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(path, f"cannot read the judge prompt template: {exc}") from None
        try:
            fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(text) if name is not None]
        except ValueError as exc:
            raise DataError(path, f"not a valid template ({exc}); write a literal brace as {{{{ or }}}}") from None
        count = _COUNT_WORDS.get(len(slots), str(len(slots)))
        names = [name for name, _, _ in fields]
        if any(spec or conv for _, spec, conv in fields):
            raise DataError(path, "a slot may not carry a format spec or conversion; use "
                            f"{', '.join('{' + s + '}' for s in slots)} or {count} {{}}")
        if names and all(n == "" for n in names):
            if len(names) != len(slots):
                raise DataError(path, f"{len(names)} positional slot(s) {{}}; a positional template has exactly "
                                f"{len(slots)} ({', '.join(slots)}, in that order)")
            return cls(text, slots, str(path), positional=True)
        unknown = sorted({n for n in names if n not in slots})
        if unknown:
            raise DataError(path, f"unknown slot(s) {', '.join('{' + n + '}' for n in unknown)}; the slots are "
                            f"{_named(slots)} (or {count} positional {{}})")
        missing = [n for n in slots if n not in names]
        if missing:
            raise DataError(path, f"the template has no {', '.join('{' + n + '}' for n in missing)} slot")
        return cls(text, slots, str(path))

    @property
    def sha256(self) -> str:
        """SHA-256 of the template text (recorded with the results)."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def fill(self, blocks: dict[str, str]) -> str:
        """The prompt with the slot texts filled in."""
        if self.positional:
            return self.text.format(*(blocks[s] for s in self.slots))
        return self.text.format(**blocks)

    def record(self) -> dict[str, str]:
        """Where the template came from and its hash, for the results' protocol."""
        return {"source": self.source, "sha256": self.sha256}
