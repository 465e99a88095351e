"""The dashboard's load test harness (tests/load): percentiles, loopback only, the trend request, and a short
real run against a loopback server whose one path fails, so errors are counted, not hidden."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.load.harness import loopback_only, percentile, run_load, trend_path
from tests.support.loopback import loopback_server

pytestmark = pytest.mark.unit


def test_nearest_rank_percentiles():
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 100)) == (50.0, 95.0, 100.0)
    assert percentile([3.0, 1.0, 2.0], 95) == 3.0
    assert percentile([7.0], 50) == 7.0
    assert percentile([], 95) is None


@pytest.mark.parametrize("url", ["http://127.0.0.1:8050", "http://127.3.4.5/", "http://localhost:1", "http://[::1]:80"])
def test_loopback_addresses_are_accepted(url):
    assert loopback_only(url) == url


@pytest.mark.parametrize("url", ["http://10.0.0.1:8050", "http://192.168.1.2", "http://example.org", "http://8.8.8.8"])
def test_any_other_address_is_refused(url):
    with pytest.raises(ValueError, match="only targets loopback"):
        loopback_only(url)


def test_the_trend_request_is_the_hours_ending_with_the_latest_hour():
    path = trend_path("beijing-dongsi", "2013-03-14T07:00:00Z", hours=72)
    url = urlsplit(path)
    assert url.path == "/api/stations/beijing-dongsi/aggregates"
    assert parse_qs(url.query) == {
        "window": ["1h"],
        "start": ["2013-03-11T08:00:00Z"],
        "end": ["2013-03-14T08:00:00Z"],
    }


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        status = 500 if self.path == "/fails" else 200
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def server() -> Iterator[str]:
    with loopback_server(Handler) as url:
        yield url


def test_a_short_run_counts_every_request_and_every_error(server):
    result = asyncio.run(run_load(server, {"good": ["/a", "/b"], "bad": ["/fails"]}, clients=4, seconds=1.0))
    good, bad = result["endpoints"]["good"], result["endpoints"]["bad"]
    assert good["requests"] > 10 and good["errors"] == 0
    assert (
        bad["requests"] > 10
        and bad["errors"] == bad["requests"]
        and bad["error_kinds"] == {"HTTP 500": bad["requests"]}
    )
    assert result["requests"] == good["requests"] + bad["requests"] and result["errors"] == bad["requests"]
    assert 1.0 <= result["elapsed_s"] < 5 and result["p95_ms"] is not None
