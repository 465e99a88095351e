"""The test browser (tests/support/browser.py): headless Chromium reads a page JavaScript renders, and screenshots it.

A real loopback http.server serves a page whose script adds an element and recolours the page after a
delay, so a helper that did not wait would find no element and photograph the wrong colour. Chromium
comes from `make browser-tool` (`make test-unit` runs it first); without it these tests fail.
"""

from __future__ import annotations

import functools
import logging
import struct
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

import pytest
from PIL import Image
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By

from tests.support.browser import (
    BrowserToolMissing,
    browser_paths,
    console_errors,
    headless_chrome,
    screenshot,
    wait_until,
)
from tests.support.loopback import loopback_server

pytestmark = pytest.mark.unit

RENDER_DELAY_MS = 700
RENDERED_TEXT = "rendered by JavaScript"
BEFORE_RGB = (255, 255, 255)
AFTER_RGB = (20, 120, 200)
PAGE = f"""<!doctype html>
<html><head><title>aqstream browser check</title><link rel="icon" href="data:,">
<style>html, body {{ margin: 0; height: 100%; background: rgb{BEFORE_RGB}; }}</style></head>
<body>
<script>
  setTimeout(() => {{
    document.body.style.background = "rgb{AFTER_RGB}";
    const line = document.createElement("p");
    line.id = "rendered";
    line.textContent = "{RENDERED_TEXT}";
    document.body.appendChild(line);
  }}, {RENDER_DELAY_MS});
</script>
</body></html>
"""


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture
def page_url(tmp_path) -> Iterator[str]:
    """The page above, served by a real http.server on a free loopback port."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text(PAGE)
    with loopback_server(functools.partial(QuietHandler, directory=str(site))) as url:
        yield f"{url}/index.html"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG signature and IHDR chunk (the first chunk of every PNG)."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG: starts {header[:8]!r}"
    assert header[12:16] == b"IHDR", f"{path} has no IHDR chunk first"
    return struct.unpack(">II", header[16:24])


def test_reads_the_text_javascript_rendered_without_selenium_manager(page_url, caplog):
    caplog.set_level(logging.DEBUG, logger="selenium.webdriver.common.driver_finder")
    started = time.monotonic()
    with headless_chrome() as driver:
        driver.get(page_url)
        assert driver.title == "aqstream browser check"
        wait_until(driver, "#rendered", timeout=10)
        assert driver.find_element(By.CSS_SELECTOR, "#rendered").text == RENDERED_TEXT
    assert time.monotonic() - started < 15, "Chromium took too long to start, load and quit"
    # the driver path was given, so Selenium did not ask Selenium Manager (which downloads) for one
    assert any("Skipping Selenium Manager" in record.getMessage() for record in caplog.records)


def test_screenshot_waits_for_the_page_and_saves_a_png_of_the_window_size(page_url, tmp_path):
    shot = screenshot(page_url, tmp_path / "shots" / "page.png", wait_for="#rendered", window_size=(640, 480))
    assert png_size(shot) == (640, 480)
    with Image.open(shot) as image:
        image.verify()  # the whole file decodes, not only its header
    with Image.open(shot) as image:
        # the colour the script sets once it has run: the helper waited before taking the picture
        assert image.convert("RGB").getpixel((600, 440)) == AFTER_RGB


def test_screenshot_waits_for_a_callable_condition(page_url, tmp_path):
    def page_recoloured(driver):
        return driver.execute_script("return getComputedStyle(document.body).backgroundColor") == f"rgb{AFTER_RGB}"

    shot = screenshot(page_url, tmp_path / "page.png", wait_for=page_recoloured, window_size=(320, 240))
    assert png_size(shot) == (320, 240)


def test_a_condition_never_met_fails_after_the_timeout_naming_it(page_url, tmp_path):
    started = time.monotonic()
    with pytest.raises(TimeoutException, match=r"#never-there"):
        screenshot(page_url, tmp_path / "never.png", wait_for="#never-there", timeout=1.5)
    assert 1.5 <= time.monotonic() - started < 15
    assert not (tmp_path / "never.png").exists()


def test_console_errors_are_the_pages_errors_and_failed_loads(page_url, tmp_path):
    with headless_chrome() as driver:
        driver.get(page_url)
        wait_until(driver, "#rendered", timeout=10)
        assert console_errors(driver) == []  # the page itself logs nothing (its icon is inline: no /favicon.ico)
        driver.execute_script(
            "console.error('broken on purpose');"
            "const img = document.createElement('img'); img.src = '/missing.png'; document.body.append(img);"
        )
        wait_until(driver, lambda d: d.execute_script("return document.querySelector('img').complete"), timeout=5)
        messages = " ".join(e["message"] for e in console_errors(driver))
    assert "broken on purpose" in messages and "missing.png" in messages and "404" in messages


def test_a_missing_browser_names_the_tool_and_the_make_target(tmp_path):
    with pytest.raises(BrowserToolMissing, match=r"chromium is not installed.*make browser-tool"):
        browser_paths(tmp_path)
    (tmp_path / "chromium").write_text("#!/bin/sh\n")
    (tmp_path / "chromium").chmod(0o755)
    with pytest.raises(BrowserToolMissing, match=r"chromedriver is not installed.*make browser-tool"):
        browser_paths(tmp_path)
