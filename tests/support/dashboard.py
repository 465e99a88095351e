"""What the dashboard tests share: the EPA's categories written out (the tests' own copy of the spec, so a
wrong table in the service is caught), a free loopback port, and ``python -m dashboard`` as a subprocess."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import requests

from tests.support.pipeline import REPO_ROOT

# the upper AQI of each EPA category (TAD 2024): 0-50 Good, 51-100 Moderate, ...
EPA_CATEGORY_TOPS = (
    (50, "Good"),
    (100, "Moderate"),
    (150, "Unhealthy for Sensitive Groups"),
    (200, "Unhealthy"),
    (300, "Very Unhealthy"),
    (500, "Hazardous"),
)


def epa_category(aqi: int | None) -> str | None:
    if aqi is None:
        return None
    return next((name for top, name in EPA_CATEGORY_TOPS if aqi <= top), "Hazardous")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def served_dashboard(env: dict[str, str], log: Path, timeout_s: float = 60.0) -> Iterator[str]:
    """``python -m dashboard`` with ``env`` (AQSTREAM__* overrides) on a free loopback port; yields its URL,
    stops it (SIGTERM) on exit. Fails, with the tail of its log, when it does not answer in ``timeout_s``."""
    port = free_port()
    log.parent.mkdir(parents=True, exist_ok=True)
    environment = {
        **os.environ,
        **env,
        "AQSTREAM__DASHBOARD__HOST": "127.0.0.1",
        "AQSTREAM__DASHBOARD__PORT": str(port),
    }
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "dashboard"], cwd=REPO_ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise AssertionError(f"python -m dashboard exited {process.returncode}: {log.read_text()[-3000:]}")
            try:
                if requests.get(f"{url}/openapi.json", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"python -m dashboard did not answer in {timeout_s:g} s: {log.read_text()[-3000:]}"
                )
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# the colour of each EPA category (the EPA's RGB), as a browser reports a cell's background
EPA_CATEGORY_RGB = {
    "Good": (0, 228, 0),
    "Moderate": (255, 255, 0),
    "Unhealthy for Sensitive Groups": (255, 126, 0),
    "Unhealthy": (255, 0, 0),
    "Very Unhealthy": (143, 63, 151),
    "Hazardous": (126, 0, 35),
}
