"""A real headless browser for tests that look at a web page: Debian's Chromium, driven by Selenium.

Chromium and chromedriver come from ``make browser-tool`` (stack/tools/chromium.sh, unpacked into
.tools/bin, not installed system-wide). Selenium is handed both paths, so Selenium Manager (which would
download a browser and a driver) never runs; SE_OFFLINE keeps it offline should anything start it.
Without the tool the helpers raise, naming it and the command that fetches it: a test that needs a
browser fails rather than skips.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

TOOLS_BIN = Path(__file__).resolve().parents[2] / ".tools" / "bin"
DEFAULT_WINDOW_SIZE = (1280, 800)

# headless, as root (no sandbox), no GPU, and quiet: nothing fetched from Google (components, sync,
# field trials), no QUIC
CHROME_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

os.environ["SE_OFFLINE"] = "true"

WaitCondition = str | Callable[[WebDriver], object]


class BrowserToolMissing(RuntimeError):
    """Chromium or chromedriver is not unpacked in .tools/bin."""


def browser_paths(tools_bin: Path = TOOLS_BIN) -> tuple[Path, Path]:
    """The chromium and chromedriver launchers stack/tools/chromium.sh wrote, or BrowserToolMissing."""
    paths = (tools_bin / "chromium", tools_bin / "chromedriver")
    for path in paths:
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise BrowserToolMissing(
                f"{path.name} is not installed (no {path}): run `make browser-tool` (stack/tools/chromium.sh install)"
            )
    return paths


@contextmanager
def headless_chrome(
    window_size: tuple[int, int] = DEFAULT_WINDOW_SIZE, page_load_timeout: float = 30.0
) -> Iterator[WebDriver]:
    """A headless Chromium with a fresh throwaway profile and a viewport of window_size (width, height) CSS pixels.

    The browser is quit and its profile deleted on exit.
    """
    chromium, chromedriver = browser_paths()
    width, height = window_size
    with tempfile.TemporaryDirectory(prefix="aqstream-chromium-") as profile:
        options = Options()
        options.binary_location = str(chromium)
        for flag in (*CHROME_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
            options.add_argument(flag)
        # keep the page's console (errors, failed loads, console.* calls) for console_errors()
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(executable_path=str(chromedriver)), options=options)
        try:
            driver.set_page_load_timeout(page_load_timeout)
            # headless Chromium keeps room for window decorations and a 500 px minimum width, so the page
            # would get less than --window-size: the viewport is set exactly, one device pixel per CSS pixel
            driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            )
            yield driver
        finally:
            driver.quit()


def wait_until(driver: WebDriver, condition: WaitCondition, timeout: float) -> object:
    """Wait (polling, no fixed sleep) until a CSS selector matches a visible element, or a callable is truthy."""
    if isinstance(condition, str):
        check = expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, condition))
        what = f"an element visible at CSS selector {condition!r}"
    else:
        check = condition
        what = getattr(condition, "__name__", repr(condition))
    return WebDriverWait(driver, timeout).until(check, f"waited {timeout:g} s on {driver.current_url} for {what}")


def console_errors(driver: WebDriver) -> list[dict]:
    """The browser console's SEVERE entries since the last call (uncaught errors, console.error, a resource
    that failed to load, such as a 404 or a blocked external fetch)."""
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def screenshot(
    url: str,
    path: Path,
    wait_for: WaitCondition,
    timeout: float = 10.0,
    window_size: tuple[int, int] = DEFAULT_WINDOW_SIZE,
    driver: WebDriver | None = None,
) -> Path:
    """Load url, wait for the condition, save the window as a PNG at path; in a browser of its own unless given one."""
    if driver is None:
        with headless_chrome(window_size=window_size) as own:
            return screenshot(url, path, wait_for, timeout, driver=own)
    driver.get(url)
    wait_until(driver, wait_for, timeout)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not driver.save_screenshot(str(path)):
        raise OSError(f"the screenshot of {url} could not be written to {path}")
    return path
