"""Pre-flight image checks: every image a stage will read is opened and decoded before any model loads.

A corrupt, empty or missing image used to surface only when its batch came up (training died at step 4 with
``cannot read image``; POPE and SHR mid-run). :func:`preflight_images` decodes every image first (PIL ``open`` +
``load``, in a thread pool: PIL releases the GIL while decoding) and raises one :class:`~hadpo.errors.DataError`
listing every unreadable file with its reason and, where known, the data file and record that refer to it.

Images decoded successfully are remembered for the life of the process, keyed by path, size, mtime and inode, so
a notebook that runs POPE's three sets (the same images) decodes each once, while a file that changed is decoded
again. A new process always checks afresh. Nothing here imports torch, so ``hadpo validate`` and a notebook kernel
can call it without initialising CUDA.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hadpo.errors import DataError

#: The reason given for an image that is not on disk (``ValidationReport.missing_images`` holds these).
MISSING = "missing"
#: Sets this large get a progress bar (smaller ones finish before a bar would be readable).
PROGRESS_MIN_IMAGES = 200
#: Unreadable images named in the error message; the rest are counted ("and N more").
LISTED_IMAGES = 20
#: Decoding threads at most (beyond this the disk, not the CPU, is the limit).
MAX_WORKERS = 8

_verified: set[tuple[str, int, int, int]] = set()
_verified_lock = threading.Lock()


@dataclass(frozen=True)
class ImageRef:
    """Where a data file refers to an image, and the local path it resolves to.

    ``file`` is the data file holding the reference (None: the caller's ``source``); ``record``, ``line`` and
    ``field`` locate it in that file, as in :class:`~hadpo.errors.DataError`.
    """

    path: str
    record: int | str | None = None
    line: int | None = None
    field: str | None = None
    file: str | None = None


@dataclass(frozen=True)
class UnreadableImage:
    """An image that cannot be used, the first reference to it, and why (``missing``, ``0 bytes``, ...)."""

    ref: ImageRef
    reason: str

    @property
    def missing(self) -> bool:
        """True when the file is not on disk at all."""
        return self.reason == MISSING

    def to_dict(self) -> dict[str, Any]:
        """The reference's known fields plus ``reason`` (JSON-serialisable)."""
        return {**{k: v for k, v in vars(self.ref).items() if v is not None}, "reason": self.reason}


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def image_problem(path: str | Path) -> str | None:
    """Why the image at ``path`` cannot be used (``missing``, ``0 bytes``, ``cannot decode: ...``), or None.

    The file is opened and fully decoded, as a stage would, so a truncated file fails here and not mid-run.
    """
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    try:
        info = p.stat()
    except (FileNotFoundError, NotADirectoryError):
        return MISSING
    except OSError as exc:
        return f"cannot open: {exc.strerror or _one_line(exc)}"
    if not stat.S_ISREG(info.st_mode):
        return "not a file"
    if info.st_size == 0:
        return "0 bytes"
    key = (os.path.abspath(p), info.st_size, info.st_mtime_ns, info.st_ino)
    if key in _verified:
        return None
    try:
        image = Image.open(p)
    except UnidentifiedImageError:
        # PIL's message repeats the path; the list already names it.
        return "cannot decode: not an image format PIL can read"
    except FileNotFoundError:
        return MISSING  # removed since the stat
    except OSError as exc:
        return f"cannot open: {exc.strerror or _one_line(exc)}"
    try:
        with image:
            image.load()
    except Exception as exc:  # a corrupt file raises almost anything (OSError, SyntaxError, ValueError, struct.error)
        return f"cannot decode: {_one_line(exc)}"
    with _verified_lock:
        _verified.add(key)
    return None


def _as_ref(ref: ImageRef | str | Path) -> ImageRef:
    return ref if isinstance(ref, ImageRef) else ImageRef(str(ref))


def find_unreadable_images(
    refs: Iterable[ImageRef | str | Path],
    *,
    progress: bool = False,
    desc: str = "check images",
    workers: int | None = None,
) -> list[UnreadableImage]:
    """Decode every referenced image once; returns the unusable ones, in the order of ``refs``.

    An image referred to several times (POPE asks six questions per image) is decoded once and reported with
    its first reference. ``progress`` shows a bar (:func:`hadpo.progress.progress`, not left behind) from
    :data:`PROGRESS_MIN_IMAGES` images up; ``workers`` caps the decoding threads
    (default: up to :data:`MAX_WORKERS`, no more than the CPUs).
    """
    first: dict[str, ImageRef] = {}
    for ref in map(_as_ref, refs):
        first.setdefault(os.path.abspath(ref.path), ref)
    paths = list(first)
    if not paths:
        return []
    workers = max(1, min(workers or MAX_WORKERS, os.cpu_count() or 1, len(paths)))
    bar = None
    if progress and len(paths) >= PROGRESS_MIN_IMAGES:
        from hadpo.progress import progress as make_progress

        bar = make_progress(len(paths), desc, unit="images", leave=False)
    reasons: list[str | None] = []
    pool = ThreadPoolExecutor(workers, thread_name_prefix="hadpo-image-check") if workers > 1 else None
    try:
        # map() yields in input order whatever order the threads finish in: the result is deterministic.
        for reason in (pool.map(image_problem, paths) if pool is not None else map(image_problem, paths)):
            reasons.append(reason)
            if bar is not None:
                bar.update(1)
    except BaseException:
        if pool is not None:
            # On an interrupt, do not wait for thousands of queued decodes.
            pool.shutdown(wait=False, cancel_futures=True)
            pool = None
        raise
    finally:
        if pool is not None:
            pool.shutdown()
        if bar is not None:
            bar.close()
    return [UnreadableImage(first[p], reason) for p, reason in zip(paths, reasons, strict=True) if reason]


def _where(ref: ImageRef, show_file: bool) -> str:
    parts = [Path(ref.file).name] if show_file and ref.file else []
    if ref.line is not None:
        parts.append(f"line {ref.line}")
    if ref.record is not None:
        parts.append(f"record {ref.record!r}" if isinstance(ref.record, str) else f"record {ref.record}")
    return ", ".join(parts)


def unreadable_images_error(problems: Sequence[UnreadableImage], *, source: str | Path | None = None) -> DataError:
    """One single-line :class:`DataError` for ``problems`` (which must not be empty).

    The error's file is the data file the images come from (each reference's ``file``, else ``source``; several
    are joined; with none, the images' common folder). One image reads ``image not found: PATH`` or
    ``unreadable image PATH: REASON`` located at its record and field; several read ``N unreadable images: PATH
    (REASON; record R), ...``, the first :data:`LISTED_IMAGES` named and the rest counted.
    """
    if not problems:
        raise ValueError("no unreadable images to report")
    default = str(source) if source is not None else None
    files = list(dict.fromkeys(f for f in (p.ref.file or default for p in problems) if f is not None))
    if files:
        file = ", ".join(files)
    else:
        folders = [os.path.dirname(os.path.abspath(p.ref.path)) for p in problems]
        file = os.path.commonpath(folders)
    if len(problems) == 1:
        (only,) = problems
        path = Path(only.ref.path).absolute()
        message = f"image not found: {path}" if only.missing else f"unreadable image {path}: {only.reason}"
        return DataError(file, message, record=only.ref.record, line=only.ref.line, field=only.ref.field)
    items = []
    for problem in problems[:LISTED_IMAGES]:
        where = _where(problem.ref, show_file=len(files) > 1)
        items.append(f"{Path(problem.ref.path).absolute()} ({problem.reason}{'; ' + where if where else ''})")
    more = len(problems) - LISTED_IMAGES
    message = f"{len(problems)} unreadable images: {', '.join(items)}" + (f", and {more} more" if more > 0 else "")
    fields = {p.ref.field for p in problems}
    return DataError(file, message, field=fields.pop() if len(fields) == 1 else None)


def preflight_images(
    refs: Iterable[ImageRef | str | Path],
    *,
    source: str | Path | None = None,
    progress: bool = True,
    desc: str = "check images",
) -> int:
    """Open and decode every image a stage will read; raise one :class:`DataError` listing every failure.

    Call it before the model loads. ``refs`` are :class:`ImageRef` (or bare paths); ``source`` names the data
    file for references that carry none. A missing file, a 0-byte file, a truncated file and a file that is
    not an image all fail. Returns the number of distinct images checked.

    Raises:
        DataError: one line, naming the data file, each unreadable image (the first :data:`LISTED_IMAGES`) with
            its reason and record, and the full count.
    """
    refs = list(refs)
    problems = find_unreadable_images(refs, progress=progress, desc=desc)
    if problems:
        raise unreadable_images_error(problems, source=source)
    return len({os.path.abspath(_as_ref(r).path) for r in refs})
