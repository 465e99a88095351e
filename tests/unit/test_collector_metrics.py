"""The collectors' Prometheus metrics: real collector runs against a loopback API server that replays
recorded responses and injects faults, then the real /metrics endpoint scraped over HTTP. Every
expected count is read off the recorded responses, the faults injected or the files written."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from collectors import cli, openaq, openmeteo
from collectors.httpclient import HttpError
from collectors.metrics import CollectorMetrics
from collectors.sink import Spool
from jobs.config import load_config
from jobs.metrics_endpoint import MetricsServer
from tests.unit.test_http_faults import FaultServer
from tests.unit.test_metrics import scrape

BRNO = "reflbo_air_brno_unixtime_2026-10-01.json"  # 72 unixtime hours, no `current` block
AS_OF = "2026-10-01T08:30:00Z"


@pytest.fixture
def server():
    with FaultServer() as fault_server:
        yield fault_server


def _settings(args):
    return cli.settings_from_args(args, load_config())


def _run(argv: list[str], metrics: CollectorMetrics) -> int:
    """One collection (or replay) through the CLI's own code path, counting into ``metrics``."""
    args = cli.build_parser().parse_args(argv)
    return cli.run(args, _settings(args), threading.Event(), metrics)


def _scrape_served(metrics: CollectorMetrics) -> dict:
    server = MetricsServer("127.0.0.1", 0, metrics.registry)  # an ephemeral port, never 9403
    try:
        return scrape(server.url)
    finally:
        server.close()


def _series(samples: dict, source: str) -> Callable[..., float | None]:
    """``value(name, **labels)``: the sample ``aqstream_collector_<name>{source, labels}`` of a scrape, or None."""

    def value(name: str, **labels: str) -> float | None:
        return samples.get((f"aqstream_collector_{name}", tuple(sorted({"source": source, **labels}.items()))))

    return value


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _observed_hours(response: dict, until_s: float) -> int:
    """Hours of a recorded unixtime response at or before ``until_s``: what the collector must read."""
    return sum(1 for t in response["hourly"]["time"] if t <= until_s)


def _openaq_readings(locations: dict, latest: dict) -> int:
    """One reading per location and measurement time, for the sensors the locations list."""
    sensors = {s["id"] for loc in locations["results"] for s in loc["sensors"]}
    return len({(m["locationsId"], m["datetime"]["utc"]) for m in latest["results"] if m["sensorsId"] in sensors})


def test_openmeteo_over_http_counts_readings_requests_errors_retries_and_waits(server, data_dir, tmp_path, monkeypatch):
    body = (data_dir / "openmeteo" / BRNO).read_bytes()
    response = json.loads(body)
    monkeypatch.setattr(openmeteo, "API_URL", f"{server.url}/v1/air-quality")
    server.scripts["/v1/air-quality"] = [
        {"status": 503},
        {"status": 429, "headers": {"Retry-After": "0"}},
        {"body": body},  # from here on: the second city gets it at once
    ]
    out = tmp_path / "readings.ndjson"
    metrics = CollectorMetrics("openmeteo")
    started = time.time()
    argv = ["openmeteo", "--city", "nairobi", "--city", "mombasa", "--backoff-base", "0.01", "--out", str(out)]
    assert _run(argv, metrics) == 0
    finished = time.time()
    got = _scrape_served(metrics)

    per_city = _observed_hours(response, started)  # the recorded hours are all in the past
    forecast = len(response["hourly"]["time"]) - per_city
    written = out.read_text().splitlines()
    assert per_city > 0 and len(written) == 2 * per_city
    value = _series(got, "openmeteo")
    assert value("readings_fetched_total") == 2 * per_city
    assert value("readings_sent_total") == len(written)
    assert value("readings_spooled_total") == 0
    assert value("readings_dropped_total", reason="forecast") == 2 * forecast
    assert value("readings_dropped_total", reason="already_sent") == 0  # an --out run keeps no state
    assert value("fetches_total", outcome="success") == 1
    assert value("fetches_total", outcome="failure") is None
    # four attempts: 503, 429, then one success per city
    assert value("http_requests_total") == server.hits["/v1/air-quality"] == 4
    assert value("http_errors_total", kind="503") == value("http_errors_total", kind="429") == 1
    assert value("http_retries_total", kind="503") == value("http_retries_total", kind="429") == 1
    assert value("http_wait_seconds_total", cause="retry_after") == 0  # Retry-After: 0 honoured
    assert 0 <= value("http_wait_seconds_total", cause="backoff") <= 0.01  # full jitter under the base
    assert started <= value("last_success_timestamp_seconds") <= finished


def test_a_refused_request_counts_as_an_error_and_a_failed_fetch_without_retries(server, tmp_path, monkeypatch):
    monkeypatch.setattr(openaq, "API_URL", f"{server.url}/v3")
    monkeypatch.setenv(openaq.API_KEY_ENV, "sk-test-not-a-real-key")
    server.scripts["/v3/locations/1"] = [{"status": 401, "body": b'{"detail":"Invalid credentials"}'}]
    metrics = CollectorMetrics("openaq")
    with pytest.raises(HttpError):
        _run(["openaq", "--location-ids", "1", "--out", str(tmp_path / "r.ndjson")], metrics)
    got = _scrape_served(metrics)
    value = _series(got, "openaq")
    assert value("http_requests_total") == 1 and value("http_errors_total", kind="401") == 1
    assert value("http_retries_total", kind="401") is None
    assert value("fetches_total", outcome="failure") == 1 and value("fetches_total", outcome="success") is None
    assert value("last_success_timestamp_seconds") is None  # never a success: no time to report
    assert value("readings_fetched_total") == 0


def test_a_scheduled_run_serves_its_metrics_and_the_last_success_moves_only_on_success(
    server, data_dir, tmp_path, monkeypatch
):
    """``python -m collectors openaq --every 1s`` through ``main``: a success, a failed cycle (503), a
    success, scraped on the run's own endpoint as it goes; SIGTERM ends it and the endpoint with it."""
    locations = (data_dir / "openaq" / "openaqr_v3_locations_1.json").read_bytes()
    latest = (data_dir / "openaq" / "openaqr_v3_locations_1_latest.json").read_bytes()
    per_fetch = _openaq_readings(json.loads(locations), json.loads(latest))
    monkeypatch.setattr(openaq, "API_URL", f"{server.url}/v3")
    monkeypatch.setenv(openaq.API_KEY_ENV, "sk-test-not-a-real-key")
    server.scripts["/v3/locations/1"] = [{"body": locations}]
    # the 503 answers late: the next cycle may start a few ms after the first (cycles align to whole
    # seconds), and the watcher must see the state between them
    server.scripts["/v3/locations/1/latest"] = [{"body": latest}, {"status": 503, "sleep": 0.5}, {"body": latest}]
    port = _free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    out = tmp_path / "readings.ndjson"
    argv = ["openaq", "--location-ids", "1", "--every", "1s", "--retries", "0", "--out", str(out)]
    argv += ["--metrics-port", str(port)]

    states: list[tuple] = []  # (successes, failures, last success) each time they change
    scrapes: list[dict] = []
    finished = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not finished.is_set():
            try:
                got = scrape(url)
            except OSError:  # not serving yet
                time.sleep(0.05)
                continue
            value = _series(got, "openaq")
            state = (
                value("fetches_total", outcome="success") or 0,
                value("fetches_total", outcome="failure") or 0,
                value("last_success_timestamp_seconds"),
            )
            if not states or states[-1] != state:
                states.append(state)
                scrapes.append(got)
            if state[0] >= 2:
                break
            time.sleep(0.05)
        if not finished.is_set():  # main's handler turns SIGTERM into a clean stop
            os.kill(os.getpid(), signal.SIGTERM)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        assert cli.main(argv) == 0
    finally:
        finished.set()
        watcher.join(timeout=35)

    successes = [s for s in states if s[0] >= 1]
    one_success, after_failure, two_successes = (
        next(s for s in successes if s[:2] == (1, 0)),
        next(s for s in successes if s[:2] == (1, 1)),
        next(s for s in successes if s[:2] == (2, 1)),
    )
    assert after_failure[2] == one_success[2]  # the failed cycle left the last success where it was
    assert two_successes[2] > one_success[2]
    final = scrapes[states.index(two_successes)]
    value = _series(final, "openaq")
    assert value("http_errors_total", kind="503") == 1 and value("http_retries_total", kind="503") is None
    assert value("readings_fetched_total") == value("readings_sent_total") == 2 * per_fetch
    assert len(out.read_text().splitlines()) == 2 * per_fetch
    with pytest.raises(OSError):  # the run is over: so is its endpoint
        scrape(url)


def test_spooled_and_already_sent_readings_are_counted(data_dir, tmp_path):
    """Kafka away: an Open-Meteo collection spools its readings; the next one finds them all sent
    already (the high-water mark counts spooled as handed over); a replay spools its own."""
    recorded = data_dir / "openmeteo" / BRNO
    response = json.loads(recorded.read_text())
    observed = _observed_hours(response, cli.parse_utc(AS_OF).timestamp())
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        kafka = f"127.0.0.1:{closed.getsockname()[1]}"  # nothing listens there
    away = ["--bootstrap", kafka, "--max-block-ms", "1000", "--spool-dir", str(tmp_path / "spool")]

    metrics = CollectorMetrics("openmeteo")
    collect = ["openmeteo", "--from-file", str(recorded), "--as-of", AS_OF, *away]
    assert _run(collect, metrics) == 0
    assert _run(collect, metrics) == 0  # the next cycle
    got = _scrape_served(metrics)
    value = _series(got, "openmeteo")
    spooled = Spool(tmp_path / "spool").pending_count()
    assert spooled == observed > 0
    assert value("readings_fetched_total") == 2 * observed
    assert value("readings_spooled_total") == spooled and value("readings_sent_total") == 0
    assert value("readings_dropped_total", reason="already_sent") == observed
    assert value("readings_dropped_total", reason="forecast") == 2 * (len(response["hourly"]["time"]) - observed)
    assert value("fetches_total", outcome="success") == 2

    source = tmp_path / "readings.ndjson"
    assert (
        cli.main(
            ["openmeteo", "--from-file", str(recorded), "--as-of", AS_OF, "--out", str(source), "--metrics-port", "0"]
        )
        == 0
    )
    lines = len(source.read_text().splitlines())
    metrics = CollectorMetrics("replay")
    started = time.time()
    assert _run(["replay", "--dataset", "ndjson", "--files", str(source), *away], metrics) == 0
    got = _scrape_served(metrics)
    value = _series(got, "replay")
    assert value("readings_fetched_total") == lines
    assert value("readings_spooled_total") == lines and value("readings_sent_total") == 0
    assert Spool(tmp_path / "spool").pending_count() == spooled + lines
    assert value("last_success_timestamp_seconds") >= started
    assert value("http_requests_total") is None  # a replay makes no HTTP request


def test_the_port_comes_from_the_config_the_flag_overrides_it_and_a_taken_port_only_warns(
    data_dir, tmp_path, monkeypatch, caplog
):
    recorded = data_dir / "openmeteo" / BRNO
    out = tmp_path / "readings.ndjson"
    argv = ["openmeteo", "--from-file", str(recorded), "--as-of", AS_OF, "--out", str(out)]
    parse = cli.build_parser().parse_args
    assert _settings(parse(argv)).metrics_port == load_config().monitoring.metrics_port_collectors
    monkeypatch.setenv("AQSTREAM__MONITORING__METRICS_PORT_COLLECTORS", "9499")
    assert _settings(parse(argv)).metrics_port == 9499
    assert _settings(parse([*argv, "--metrics-port", "0"])).metrics_port == 0

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert cli.main([*argv, "--metrics-port", str(port)]) == 0
    assert f"metrics endpoint not started on 127.0.0.1:{port}" in caplog.text
    response = json.loads(recorded.read_text())
    assert len(out.read_text().splitlines()) == _observed_hours(response, cli.parse_utc(AS_OF).timestamp())


def test_every_series_is_in_the_docs():
    """docs/monitoring.md lists each aqstream_collector_* series a run exports."""
    metrics = CollectorMetrics("openaq")
    names = {family.name for family in metrics.registry.collect() if family.name.startswith("aqstream_collector_")}
    docs = (Path(__file__).resolve().parents[2] / "docs" / "monitoring.md").read_text()
    missing = [n for n in sorted(names) if n not in docs]
    assert names and not missing
