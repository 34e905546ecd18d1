"""notebooks/03_pope.ipynb as a user runs it: JupyterLab serving a project folder, the notebook opened in headless
Chromium, Run → Run All Cells; every cell runs without a traceback and the last one shows POPE's metrics table.

The server is the kit's own (``python -m jupyterlab`` of this interpreter, so the kernel is its ``python3``), on
127.0.0.1 with a free port and a random token, its config, data and runtime folders in a temporary folder (nothing
is written to ``~``), and is stopped by its PID when the test ends. Waits have generous deadlines, never sleeps.
See ``conftest.py`` for when these tests skip and when they fail instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import nbformat
import pytest

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

pytestmark = [pytest.mark.browser, pytest.mark.slow]
T = TypeVar("T")

NOTEBOOK = "notebooks/03_pope.ipynb"
SERVER_START_S = 120
LAB_LOAD_S = 180  # JupyterLab's bundles plus a kernel start, on a loaded 2-core CI machine
START_S = 60  # from the click until the first cell is marked "[*]" (JupyterLab does it at once)
RUN_ALL_S = 420  # imports torch/transformers, loads the tiny model, answers three POPE sets
STOP_S = 30
#: The Run menu's entry, by the label a user sees (its command id has changed between JupyterLab versions).
RUN_ALL_ITEM = ("//ul[contains(@class, 'lm-Menu-content')]/li[contains(@class, 'lm-Menu-item')]"
                "[not(contains(@class, 'lm-mod-disabled'))]"
                "[div[contains(@class, 'lm-Menu-itemLabel')][normalize-space() = 'Run All Cells']]")


@dataclass(frozen=True)
class LabServer:
    """A running ``jupyter lab``: its process, base URL, token and log file."""

    process: subprocess.Popen[bytes]
    url: str
    token: str
    log: Path

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's log (and its kernels'), for failure messages."""
        return self.log.read_text(errors="replace")[-chars:] if self.log.is_file() else "(no log)"

    def api(self, method: str, path: str) -> Any:
        """Call the server's REST API (``/api/...``) with the token; the decoded JSON reply, or None if empty."""
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as reply:
            body = reply.read()
        return json.loads(body) if body else None


def _until(driver: WebDriver, condition: Callable[[WebDriver], T], timeout: float, failure: Callable[[], str],
           poll: float = 0.5) -> T:
    """The first truthy value of ``condition`` (``WebDriverWait``); after ``timeout`` seconds an AssertionError
    with ``failure()``, computed then, so it can show the latest state and server log."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=poll).until(condition)
    except TimeoutException:
        raise AssertionError(f"timed out after {timeout} s: {failure()}") from None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _jupyter_env(home: Path) -> dict[str, str]:
    """The server's environment: Jupyter's and IPython's per-user folders under ``home``, so nothing reaches
    ``~``; the kernelspec is still found, in ``sys.prefix/share/jupyter`` (or as ipykernel's native spec)."""
    env = dict(os.environ)
    # The notebook must find its project root from notebooks/, as for a user, not from the test's setting.
    env.pop("HADPO_ROOT", None)
    folders = {"JUPYTER_CONFIG_DIR": "config", "JUPYTER_DATA_DIR": "data", "JUPYTER_RUNTIME_DIR": "runtime",
               "IPYTHONDIR": "ipython"}
    for var, name in folders.items():
        (home / name).mkdir(parents=True, exist_ok=True)
        env[var] = str(home / name)
    # Render every cell (no virtual scrolling), so the page's DOM holds all prompts and outputs.
    settings = home / "config" / "lab" / "user-settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    return env


def _stop(server: LabServer) -> None:
    """Shut the kernels down through the API (they run in their own sessions, out of the server's reach once it is
    killed), then terminate the server by its PID, and kill it if it outlives the deadline."""
    process = server.process
    if process.poll() is None:
        try:
            for kernel in server.api("GET", "/api/kernels") or []:
                server.api("DELETE", f"/api/kernels/{kernel['id']}")
        except OSError:
            pass  # the server is unreachable: terminating it below still ends its kernels' parent
        process.terminate()
        try:
            process.wait(timeout=STOP_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_S)
    # Anything the server started in its own process group (it was started as a group leader) goes with it.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def lab_server(pope_project: Path, tmp_path: Path, browser: WebDriver) -> Iterator[LabServer]:
    """``jupyter lab`` serving ``pope_project`` (stopped by its PID afterwards); ready when it answers its API."""

    port, token = _free_port(), secrets.token_hex(24)
    log = tmp_path / "jupyter.log"
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               "--port-retries=0", f"--ServerApp.root_dir={pope_project}", f"--IdentityProvider.token={token}",
               # No calls to PyPI or jupyter.org from the server either.
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.news_url=None",
               "--LabApp.extension_manager=readonly"]
    if os.geteuid() == 0:
        command.append("--allow-root")  # CI runs as root, where the server refuses to start without it
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=pope_project, env=_jupyter_env(tmp_path / "jupyter"),
                                   stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    server = LabServer(process, f"http://127.0.0.1:{port}", token, log)
    try:
        def answers(_: object) -> bool:
            if process.poll() is not None:
                raise AssertionError(f"jupyter lab exited with {process.returncode}:\n{server.log_tail()}")
            try:
                return bool(server.api("GET", "/api/status"))
            except OSError:
                return False

        _until(browser, answers, SERVER_START_S,
               lambda: f"jupyter lab did not answer on {server.url}:\n{server.log_tail()}")
        yield server
    finally:
        _stop(server)


# The page's state in one call: every code cell's prompt ("[3]:", "[*]:", "[ ]:"), the kernel's status, the texts of
# stderr outputs (JupyterLab renders tracebacks with that MIME type too) and of any open dialog.
_STATE_JS = """
const text = (e) => (e.textContent || '').trim();
const panel = document.querySelector('.jp-NotebookPanel');
if (!panel) return null;
const cells = [...panel.querySelectorAll('.jp-Notebook .jp-CodeCell')];
const indicator = document.querySelector('.jp-Notebook-ExecutionIndicator');
return {
  prompts: cells.map((c) => text(c.querySelector('.jp-InputPrompt'))),
  status: indicator ? indicator.getAttribute('data-status') : null,
  stderr: [...panel.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
          .map(text),
  dialogs: [...document.querySelectorAll('.jp-Dialog')].map(text),
  last_headers: cells.length ? [...cells[cells.length - 1].querySelectorAll('.jp-OutputArea-output th')]
          .map(text) : [],
  last_output: cells.length ? [...cells[cells.length - 1].querySelectorAll('.jp-OutputArea-output')]
          .map(text).join('\\n') : '',
};
"""


def _state(driver: WebDriver) -> dict[str, Any] | None:
    return driver.execute_script(_STATE_JS)


def _no_dialog(state: dict[str, Any], server: LabServer) -> None:
    # A dialog (no kernel found, a failed start) would otherwise only show up as a timeout.
    if state["dialogs"]:
        raise AssertionError(f"JupyterLab opened a dialog: {state['dialogs']}\n{server.log_tail()}")


def _is_traceback(text: str) -> bool:
    return "Traceback" in text


def _executed(prompt: str) -> bool:
    """Whether an input prompt shows an execution count ("[3]:"), not "[ ]:" or "[*]:"."""
    return any(ch.isdigit() for ch in prompt)


def test_run_all_cells_in_jupyterlab(lab_server: LabServer, pope_project: Path, browser: WebDriver) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    code_cells = sum(c.cell_type == "code" for c in nbformat.read(str(pope_project / NOTEBOOK), as_version=4).cells)
    browser.get(f"{lab_server.url}/lab/tree/{NOTEBOOK}?token={lab_server.token}")

    def opened_with_idle_kernel(driver: WebDriver) -> bool:
        state = _state(driver)
        if state is None:
            return False
        _no_dialog(state, lab_server)
        return len(state["prompts"]) == code_cells and state["status"] == "idle"

    _until(browser, opened_with_idle_kernel, LAB_LOAD_S,
           lambda: f"{NOTEBOOK} did not open with an idle kernel: {_state(browser)}\n{lab_server.log_tail()}")

    # Click into the notebook first, as a user does: JupyterLab's Run menu acts on the notebook that last had
    # focus, and without one "Run All Cells" silently does nothing.
    browser.find_element(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell").click()
    # Run → Run All Cells, through the menu bar.
    run_menu = next(item for item in browser.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-item")
                    if item.text.strip() == "Run")
    run_menu.click()
    WebDriverWait(browser, 30).until(ec.element_to_be_clickable((By.XPATH, RUN_ALL_ITEM))).click()

    def started(driver: WebDriver) -> bool:
        state = _state(driver)
        return state is not None and any("*" in p or _executed(p) for p in state["prompts"])

    _until(browser, started, START_S, lambda: f"Run → Run All Cells started nothing: {_state(browser)}")

    last: list[dict[str, Any]] = []  # the latest state polled, for the timeout's message

    def finished(driver: WebDriver) -> dict[str, Any] | None:
        # Run All marks every cell "[*]" at once and numbers each as it finishes; an error stops the run and
        # blanks the prompts after it. So: finished when no cell is marked and at least one is numbered.
        state = _state(driver)
        assert state is not None, "the notebook panel went away"
        _no_dialog(state, lab_server)
        last[:] = [state]
        busy = any("*" in prompt for prompt in state["prompts"])
        ran = any(_executed(prompt) for prompt in state["prompts"])
        return state if ran and not busy and state["status"] == "idle" else None

    state = _until(browser, finished, RUN_ALL_S, poll=1,
                   failure=lambda: f"Run All Cells did not finish; last seen: {last}\n{lab_server.log_tail()}")

    tracebacks = [t for t in state["stderr"] if _is_traceback(t)]
    assert not tracebacks, "a cell failed:\n" + "\n\n".join(tracebacks)
    assert all(_executed(p) for p in state["prompts"]), (
        f"cells not run: {state['prompts']}; stderr outputs: {state['stderr']}")
    assert any("Accuracy" in header for header in state["last_headers"]), (
        f"no metrics table with an Accuracy column in the last output: {state['last_output'][:2000]!r}")
    # The kernel ran in notebooks/ but wrote where the notebook's relative paths point: the project root.
    for pope_set in ("random", "popular", "adversarial"):
        assert (pope_project / "runs" / "demo" / "pope" / "base" / pope_set / "metrics.json").is_file(), pope_set
    assert not (pope_project / "notebooks" / "runs").exists()
