"""The kit's one progress-bar factory: a live bar where someone watches, a single line where output is kept.

Every bar of the kit (training steps, POPE answers, descriptions, judge requests, image checks) comes from
:func:`progress`, which picks a *mode* when the bar starts:

``live``
    tqdm's widget in a Jupyter kernel that has ipywidgets (JupyterLab), a redrawn bar on a terminal (stderr).
``lines``
    No redraws, for a pipe that a person reads (the training child streamed into a notebook or a console, a log
    file): a progress line at most every :data:`LINE_STEP` of the way and :data:`LINE_MIN_INTERVAL_S` apart, then
    the summary line.
``summary``
    Only the summary line, once the bar ends (``train: 120/120 steps in 35 s, loss 0.41``). A notebook executed
    headlessly keeps every byte a cell prints, so a redrawn bar would leave one line per redraw;
    :func:`hadpo.notebooks.execute` sets this mode for the kernel, and the processes it starts (the training
    child) inherit it.
``off``
    Nothing.

The mode comes from the environment variable :data:`PROGRESS_ENV` (``auto``, the default, or a mode name);
``HADPO_NO_PROGRESS=1`` still means ``off``. ``auto`` is ``live`` in a Jupyter kernel with ipywidgets or on a
terminal, else ``lines``. Lines go to stdout: they are results, not errors, and must not show as stderr boxes.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import sys
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from hadpo.errors import ParamsError

#: Environment variable that chooses the mode (``auto``, ``live``, ``lines``, ``summary`` or ``off``).
PROGRESS_ENV = "HADPO_PROGRESS"
#: The older switch, kept: ``HADPO_NO_PROGRESS=1`` turns every bar off.
NO_PROGRESS_ENV = "HADPO_NO_PROGRESS"
MODES: tuple[str, ...] = ("live", "lines", "summary", "off")
#: ``lines`` mode: a progress line when the bar has moved this share of its total since the last line ...
LINE_STEP = 0.05
#: ... and at least this many seconds have passed (a short bar prints its summary only).
LINE_MIN_INTERVAL_S = 10.0


def in_jupyter_kernel() -> bool:
    """Whether this process is a Jupyter kernel (JupyterLab, papermill), the test tqdm.autonotebook makes."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def _has_ipywidgets() -> bool:
    return importlib.util.find_spec("ipywidgets") is not None


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def progress_mode() -> str:
    """The mode a bar started now gets (see the module docstring); an unknown :data:`PROGRESS_ENV` raises."""
    if os.environ.get(NO_PROGRESS_ENV) == "1":
        return "off"
    value = (os.environ.get(PROGRESS_ENV) or "auto").strip().lower()
    if value == "auto":
        if in_jupyter_kernel():
            # Without ipywidgets tqdm's notebook bar falls back to text redraws (and warns): lines read better.
            return "live" if _has_ipywidgets() else "lines"
        return "live" if _is_tty(sys.stderr) else "lines"
    if value not in MODES:
        raise ParamsError(f"{PROGRESS_ENV}={value!r}: expected auto, {', '.join(MODES)}")
    return value


def format_duration(seconds: float) -> str:
    """``0.4 s``, ``35 s``, ``2 min 05 s``, ``1 h 03 min``."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.3g}"
    return str(value)


class Progress:
    """A bar in one of the :data:`MODES`; use :func:`progress` to make one.

    ``update``, ``set_postfix`` and ``close`` (also as a context manager) are all a call site needs; the
    ``summary``/``lines`` modes print to stdout, the ``live`` mode is a tqdm bar.
    """

    def __init__(self, total: int, desc: str, *, unit: str = "it", initial: int = 0, mode: str = "summary",
                 leave: bool = True) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown progress mode {mode!r}; expected one of {MODES}")
        self.total, self.desc, self.unit, self.initial, self.mode = int(total), desc, unit, int(initial), mode
        self.n = self.initial
        self.postfix: dict[str, Any] = {}
        self.closed = False
        self._start = time.monotonic()
        self._last_line_at, self._last_line_n = self._start, self.initial
        self._bar: Any = None
        if mode == "live":
            if in_jupyter_kernel():
                from tqdm.notebook import tqdm  # a widget; its text fallback goes to stdout
            else:
                from tqdm.std import tqdm  # a terminal bar on stderr
            self._bar = tqdm(total=self.total, initial=self.initial, desc=desc, unit=unit, leave=leave)

    def update(self, n: int = 1) -> None:
        """Advance by ``n``."""
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.mode == "lines" and self.n < self.total:
            now = time.monotonic()
            if (self.n - self._last_line_n >= LINE_STEP * self.total
                    and now - self._last_line_at >= LINE_MIN_INTERVAL_S):
                self._last_line_at, self._last_line_n = now, self.n
                self._print(f"{self.desc}: {self.n}/{self.total} {self.unit} ({100 * self.n / self.total:.0f}%), "
                            f"{format_duration(now - self._start)}{self._postfix_tail()}")

    def set_postfix(self, **values: Any) -> None:
        """Numbers shown after the bar and in the summary line (``loss=0.41``); None values are left out."""
        self.postfix = {k: v for k, v in values.items() if v is not None}
        if self._bar is not None:
            # Short text: a long postfix squeezes a fixed-width bar down to nothing.
            self._bar.set_postfix_str(self.postfix_text(), refresh=False)

    def postfix_text(self) -> str:
        """The postfix as ``loss 0.41, acc 0.75``."""
        return ", ".join(f"{k} {_format_value(v)}" for k, v in self.postfix.items())

    def _postfix_tail(self) -> str:
        text = self.postfix_text()
        return f", {text}" if text else ""

    def summary(self) -> str:
        """The one line a finished (or stopped) bar leaves: count, time, earlier progress and postfix."""
        seconds = format_duration(time.monotonic() - self._start)
        earlier = f" ({self.initial} done earlier)" if self.initial else ""
        if self.n < self.total:
            return f"{self.desc}: stopped at {self.n}/{self.total} {self.unit} after {seconds}{earlier}" + \
                self._postfix_tail()
        return f"{self.desc}: {self.n}/{self.total} {self.unit} in {seconds}{earlier}{self._postfix_tail()}"

    def close(self) -> None:
        """End the bar (once): close the live bar, or print the summary line."""
        if self.closed:
            return
        self.closed = True
        if self._bar is not None:
            self._bar.close()
        elif self.mode in ("lines", "summary"):
            self._print(self.summary())

    @staticmethod
    def _print(line: str) -> None:
        # sys.stdout at call time: a kernel swaps it per cell.
        print(line, file=sys.stdout, flush=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def progress(total: int, desc: str, *, unit: str = "it", initial: int = 0, enabled: bool = True,
             leave: bool = True) -> Progress:
    """A progress bar over ``total`` units, ``initial`` of them done before, in the mode :func:`progress_mode` picks.

    ``enabled=False`` makes a silent bar (the call site's ``progress`` option); ``leave=False`` removes a live bar
    when it ends (the summary line of the other modes is printed either way).
    """
    return Progress(total, desc, unit=unit, initial=initial, mode=progress_mode() if enabled else "off", leave=leave)


@contextlib.contextmanager
def quiet_library_bars() -> Iterator[None]:
    """Hide transformers' and huggingface_hub's own bars ("Loading weights", "Writing model shards", downloads)
    inside the block, unless bars are live: redrawn on stderr, they fill an executed notebook or a log with red
    boxes and tell nothing the kit's own lines do not."""
    if progress_mode() == "live":
        yield
        return
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
