"""`make demo` on the running stack (the session's ``demo`` fixture, tests/e2e/conftest.py), and the
Prometheus graph of the jobs' lag it leaves behind, looked at in a real headless browser. The screenshot
(``.runs/screenshots/prometheus-lag.png``) is the one the README shows
(docs/images/prometheus-lag.png is a copy from such a run)."""

from __future__ import annotations

import time

from stack.demo import lag_graph_url
from tests.support import prometheus as prom
from tests.support.browser import screenshot
from tests.support.pipeline import REPO_ROOT

SCREENSHOT = REPO_ROOT / ".runs" / "screenshots" / "prometheus-lag.png"


def test_demo_runs_the_flow_and_prometheus_graphs_both_jobs_lag(stack, demo):
    started = demo.started
    assert "What landed where" in demo.stdout

    # Prometheus scraped both jobs while they ran: a lag above zero, then worked off
    url = stack.cfg.prometheus_url
    window = f"{int(time.time() - started) + 30}s"
    for query in ("raw_to_mongo", "cdc_to_cassandra"):
        peak = prom.value(url, f'max(max_over_time(aqstream_records_behind_latest{{query="{query}"}}[{window}]))')
        assert peak is not None and peak > 0, f"{query}: no lag above zero was scraped during the demo"

    def legend_names_both_jobs(driver) -> bool:
        legend = " ".join(e.text for e in driver.find_elements("css selector", ".legend"))
        graphed = driver.find_elements("css selector", ".graph svg path")
        return bool(graphed) and "raw_to_mongo" in legend and "cdc_to_cassandra" in legend

    screenshot(
        lag_graph_url(url, range_input="10m"),
        SCREENSHOT,
        wait_for=legend_names_both_jobs,
        timeout=30,
        window_size=(1280, 900),
    )
    assert SCREENSHOT.stat().st_size > 10_000
