"""Headless Chromium for the browser tests: Debian's ``chromium`` driven through Debian's ``chromedriver``.

Nothing is downloaded at test time: the driver's path is passed explicitly, so Selenium Manager never runs
(``SE_OFFLINE=true`` as well, in case a future Selenium consults it anyway), and the browser resolves no host
name but 127.0.0.1/localhost, so a report page that references a CDN cannot reach the network either.

When the browser, its driver or ``selenium`` is missing the tests are skipped (a developer machine), unless a
browser is required: ``HADPO_REQUIRE_BROWSER=1`` (``.ci/run`` sets it) or ``CI`` set to anything but
``""``/``0``/``false`` (what hosted CI services export); then they fail instead, so CI cannot pass by skipping.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # containers often have a 64 MB /dev/shm
    # Hermetic: every host name fails to resolve except the local Jupyter server's.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
    "--window-size=1400,1000",
)
REQUIRE_ENV = "HADPO_REQUIRE_BROWSER"


def browser_required() -> bool:
    """Whether a missing browser fails the tests instead of skipping them (see the module docstring)."""
    ci = os.environ.get("CI", "").strip().lower()
    return os.environ.get(REQUIRE_ENV, "").strip() == "1" or ci not in ("", "0", "false")


def missing_browser_parts() -> list[str]:
    """What the browser tests need and this machine lacks (empty when they can run)."""
    missing = [f"{path} (apt-get install chromium chromium-driver)" for path in (CHROMIUM, CHROMEDRIVER)
               if not os.access(path, os.X_OK)]
    if importlib.util.find_spec("selenium") is None:
        missing.append("the selenium package (pip install -e '.[dev]')")
    return missing


@pytest.fixture(scope="session", autouse=True)
def _browser_present() -> None:
    """Skip (or, where a browser is required, fail) before any expensive fixture runs.

    Autouse and session-scoped, so pytest sets it up before the other session fixtures these tests request
    (the CI pipeline run takes minutes).
    """
    missing = missing_browser_parts()
    if not missing:
        return
    reason = "browser tests need " + "; ".join(missing)
    if browser_required():
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1 or CI is set, so they may not be skipped)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """A headless Chromium session (one per test module), its profile and driver log in a temporary folder."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    folder = tmp_path_factory.mktemp("chromium")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={folder / 'profile'}"):
        options.add_argument(flag)
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(folder / "chromedriver.log"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SE_OFFLINE", "true")
        driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()  # also stops chromedriver, which ends the browser it started

