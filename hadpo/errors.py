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


class RunFolderBusy(HadpoError, RuntimeError):
    """Another run holds the run folder (see :func:`hadpo.runlock.run_lock`): two writers would mix their files.

    ``holder`` is the record the holding run wrote into the folder's lock file (``pid``, ``host``, ``argv``,
    ``started``, ``what``), or None when it could not be read; the message is one line naming the folder and it.
    """

    def __init__(self, folder: str | Path, holder: dict | None) -> None:
        self.folder = str(folder)
        self.holder = dict(holder) if holder else None
        self.pid = self.holder.get("pid") if self.holder else None
        super().__init__(f"run folder {self.folder} is in use by {self.describe_holder(self.holder)}; wait for "
                         "that run to end (or stop it), or choose another folder")

    @staticmethod
    def describe_holder(holder: dict | None) -> str:
        """A holder record as one short phrase: ``PID 12 [on host h] (training, started T, command line)``."""
        import socket

        if not holder:
            return "another process (its record is unreadable)"
        where = f"PID {holder.get('pid', '?')}"
        if holder.get("host") and holder["host"] != socket.gethostname():
            where += f" on host {holder['host']}"
        details = [str(holder[k]) for k in ("what",) if holder.get(k)]
        if holder.get("started"):
            details.append(f"started {holder['started']}")
        if holder.get("argv"):
            details.append(str(holder["argv"]))
        return " ".join(f"{where} ({', '.join(details)})".split()) if details else where
