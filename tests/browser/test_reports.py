"""The HTML reports as a reader sees them: ``reports/index.html`` and every page it links, from the session's one CI
pipeline run (the ``ci_run`` fixture, shared with tests/test_pipeline.py), loaded in headless Chromium.

Each page is read once (images, links, outputs, text); each test then checks one property on every page and lists
every offending page with the offending text:

* every ``<img>`` loaded (``naturalWidth > 0``);
* every local link (``a``, ``img``, ``link``, ``script``) resolves to an existing file, and a ``#fragment`` to an
  element of that page;
* no output is a raw dict or repr (text starting with ``{'`` or ``{"``; ``OrderedDict(``, ``<hadpo.``,
  ``<... object at 0x...>`` or ``Name(field=...`` anywhere in it);
* no stderr box (nbconvert renders stderr streams and tracebacks as
  ``.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]``; ``.output_stderr`` / ``.output_error`` in
  its classic template);
* no "NaN" (or "nan") in the page's text.

Screenshots of the index, a POPE page and the dashboard are saved beside the run and copied to /tmp/hadpo-shots/.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlsplit

import pytest

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STAGES = ["00_world", "01_data", "02_train", "03_pope_base", "03_pope_hadpo", "04_shr_base", "04_shr_hadpo",
          "05_chair_base", "05_chair_hadpo", "06_amber_base", "06_amber_hadpo", "07_mmhal_base", "07_mmhal_hadpo",
          "08_dashboard"]
#: Pages to screenshot (the index is always taken), and where copies go for a person to look at.
SCREENSHOT_PAGES = ("03_pope_base.html", "08_dashboard.html")
SHOTS_DIR = Path("/tmp/hadpo-shots")
PAGE_LOAD_S = 60
MAX_SHOT_HEIGHT = 12000
SNIPPET = 300

STDERR_SELECTOR = ('.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"], '
                   ".output_stderr, .output_error")
RAW_REPRS: dict[str, Callable[[str], bool]] = {
    "a dict printed raw ({'...)": lambda text: text.lstrip().startswith(("{'", '{"')),
    "an OrderedDict repr": lambda text: "OrderedDict(" in text,
    "a hadpo object's repr (<hadpo.…>)": lambda text: "<hadpo." in text,
    "a default object repr (<… object at 0x…>)": lambda text: re.search(r"<[\w.]+ object at 0x[0-9a-fA-F]+>",
                                                                        text) is not None,
    "a dataclass-style repr (Name(field=…)": lambda text: re.search(r"\b[A-Z]\w*\(\w+=", text) is not None,
}
NAN = re.compile(r"\bnan\b", re.IGNORECASE)

# One page's facts, read in one call once it has loaded.
_PAGE_JS = """
const text = (e) => (e.innerText || e.textContent || '').trim();
const refs = [];
for (const [selector, attr] of [['a[href]', 'href'], ['img[src]', 'src'], ['link[href]', 'href'],
                                ['script[src]', 'src']]) {
  for (const e of document.querySelectorAll(selector)) {
    refs.push({tag: e.tagName.toLowerCase(), raw: e.getAttribute(attr).slice(0, 200), url: e[attr]});
  }
}
return {
  title: document.title,
  images: [...document.images].map((i) => ({src: (i.getAttribute('src') || '').slice(0, 80), alt: i.alt,
                                             complete: i.complete, width: i.naturalWidth})),
  refs: refs,
  ids: [...document.querySelectorAll('[id], a[name]')].map((e) => e.id || e.getAttribute('name')),
  outputs: [...document.querySelectorAll('.jp-OutputArea-output, .output_area .output_subarea')]
           .map((o) => ({mime: o.getAttribute('data-mime-type'), text: text(o)})),
  stderr: [...document.querySelectorAll(arguments[0])].map(text),
  body: text(document.body),
};
"""
_LOADED_JS = "return document.readyState === 'complete' && [...document.images].every((i) => i.complete);"


class CiRun(Protocol):
    """What these tests use of the ``ci_run`` fixture (tests/conftest.py)."""

    @property
    def index(self) -> Path: ...
    @property
    def reports(self) -> Path: ...


@dataclass(frozen=True)
class Page:
    """What a page showed in the browser: its file, its name (its path under the reports root, as the index links
    it: ``index.html``, ``ci/03_pope_base.html``) and the facts ``_PAGE_JS`` read."""

    path: Path
    name: str
    facts: dict[str, Any]


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET else text[:SNIPPET] + "…"


def _local_file(url: str) -> tuple[Path, str] | None:
    """``(file, fragment)`` of a ``file:`` URL, the fragment as written; None for other schemes (remote, data:)."""
    parts = urlsplit(url)
    return (Path(unquote(parts.path)), parts.fragment) if parts.scheme == "file" else None


def _anchor_found(fragment: str, ids: list[str]) -> bool:
    """Whether a browser finds the fragment's element: by the fragment as written, then percent-decoded (the HTML
    standard's order; nbconvert writes heading ids percent-encoded, e.g. ``id="00-%C2%B7-The-shapes-world"``)."""
    return fragment in ids or unquote(fragment) in ids


def _screenshot(driver: WebDriver, path: Path) -> Path:
    """The whole page (the window stretched to its height, up to a limit) as a PNG at ``path``."""
    window = driver.get_window_size()
    # The tallest scrolling content, not just the document's: nbconvert's lab template may scroll inside <body>.
    height = driver.execute_script("return Math.max(...[...document.querySelectorAll('*')]"
                                   ".map((e) => e.scrollHeight), document.documentElement.scrollHeight);")
    frame = window["height"] - driver.execute_script("return window.innerHeight;")  # the window's own chrome
    driver.set_window_size(window["width"], min(int(height) + frame, MAX_SHOT_HEIGHT))
    try:
        if not driver.save_screenshot(str(path)):
            raise AssertionError(f"Chromium could not save a screenshot to {path}")
    finally:
        driver.set_window_size(window["width"], window["height"])
    return path


def _read(driver: WebDriver, path: Path) -> dict[str, Any]:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(path.as_uri())
    # An image that never completes is reported by the image check, with the others: read the page anyway.
    with contextlib.suppress(TimeoutException):
        WebDriverWait(driver, PAGE_LOAD_S, poll_frequency=0.2).until(lambda d: d.execute_script(_LOADED_JS))
    return driver.execute_script(_PAGE_JS, STDERR_SELECTOR)


@pytest.fixture(scope="module")
def pages(ci_run: CiRun, browser: WebDriver, tmp_path_factory: pytest.TempPathFactory) -> list[Page]:
    """The index and every local page it links, in its order, each read once; screenshots taken on the way."""
    shots = tmp_path_factory.mktemp("screenshots")
    SHOTS_DIR.mkdir(parents=True, exist_ok=True)
    root = ci_run.index.resolve().parent
    index = Page(ci_run.index.resolve(), "index.html", _read(browser, ci_run.index))
    taken = [_screenshot(browser, shots / "index.png")]
    out = [index]
    for ref in index.facts["refs"]:
        local = _local_file(ref["url"]) if ref["tag"] == "a" else None
        if local is None or local[0].suffix != ".html" or not local[0].is_file():
            continue  # a link to a missing file is the link check's to report
        path = local[0].resolve()
        name = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
        page = Page(path, name, _read(browser, path))
        out.append(page)
        if page.path.name in SCREENSHOT_PAGES and page.path.parent == ci_run.reports.resolve():
            taken.append(_screenshot(browser, shots / page.path.with_suffix(".png").name))
    for shot in taken:
        copy = SHOTS_DIR / shot.name
        shutil.copyfile(shot, copy)
        print(f"screenshot: {shot}  (copy: {copy})")
    return out


def _report(problems: list[tuple[str, str, str]]) -> str:
    return "\n".join(f"  {page}: {check}: {text}" for page, check, text in problems)


def test_the_index_links_every_stage_page(pages: list[Page], ci_run: CiRun) -> None:
    """The index links each stage's page of the run (so the checks below see all of them)."""
    linked = {page.path for page in pages[1:]}
    missing = [name for name in STAGES if (ci_run.reports / f"{name}.html").resolve() not in linked]
    assert not missing, f"index.html links no page for {missing}; it links {[p.name for p in pages[1:]]}"


def test_every_image_loaded(pages: list[Page]) -> None:
    problems = [(page.name, "image not loaded", f"src={img['src']!r} alt={img['alt']!r} "
                 f"complete={img['complete']} naturalWidth={img['width']}")
                for page in pages for img in page.facts["images"] if not img["complete"] or img["width"] <= 0]
    assert not problems, "images that did not load:\n" + _report(problems)


def test_every_local_link_resolves(pages: list[Page]) -> None:
    problems = []
    for page in pages:
        for ref in page.facts["refs"]:
            local = _local_file(ref["url"])
            if local is None:
                continue
            file, fragment = local
            if not file.is_file():
                problems.append((page.name, f"<{ref['tag']}> to a missing file", f"{ref['raw']} → {file}"))
            elif fragment and file.resolve() == page.path and not _anchor_found(fragment, page.facts["ids"]):
                problems.append((page.name, f"<{ref['tag']}> to a missing anchor", ref["raw"]))
    assert not problems, "broken local links:\n" + _report(problems)


def test_no_raw_dict_or_repr_output(pages: list[Page]) -> None:
    problems = [(page.name, f"{check} in a {output['mime'] or 'rendered'} output", _snippet(output["text"]))
                for page in pages for output in page.facts["outputs"]
                for check, found in RAW_REPRS.items() if found(output["text"])]
    assert not problems, "raw dicts or reprs shown to the reader:\n" + _report(problems)


def test_no_stderr_box(pages: list[Page]) -> None:
    problems = [(page.name, "stderr box", _snippet(text)) for page in pages for text in page.facts["stderr"]]
    assert not problems, f"{len(problems)} stderr box(es):\n" + _report(problems)


def test_no_nan_in_the_text(pages: list[Page]) -> None:
    problems = []
    for page in pages:
        body = page.facts["body"]
        for match in NAN.finditer(body):
            start = max(0, match.start() - 80)
            problems.append((page.name, f"{match.group()!r} in the text", _snippet(body[start:match.end() + 80])))
    assert not problems, "NaN shown to the reader:\n" + _report(problems)
