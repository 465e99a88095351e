"""``python -m collectors openaq backfill``: paging a sensor's history from a loopback server that serves
recorded OpenAQ rows as the API pages them, the rate-limit headers, and the replay of recorded pages.
Every expected count is read off the recorded rows."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

import pytest

from collectors import cli, openaq
from collectors.httpclient import HttpClient, HttpSettings
from collectors.metrics import CollectorMetrics
from jobs.config import load_config
from tests.support.loopback import LoopbackServerObject
from tests.support.recordings import recording

pytestmark = pytest.mark.unit

KEY = "sk-test-not-a-real-key"
MEASUREMENTS_3 = "openaqr_v3_sensors_3_measurements_2023-03-07.json"  # found 48, 48 rows
LOCATIONS = "openaqr_v3_locations_page1.json"  # locations 1-4, 6, 7 and their sensors
FROM, TO = "2023-03-07T05:00:00Z", "2023-03-08T05:00:00Z"  # the recorded request's own range


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


class PagingServer(LoopbackServerObject):
    """Serves recorded responses by path; a list of rows is paged as the API pages (``page``, ``limit``,
    ``meta.found`` from the recording). Records every query; ``headers`` go out with page 1."""

    def __init__(self):
        self.responses: dict[str, dict] = {}
        self.queries: list[tuple[str, dict[str, str], str | None]] = []
        self.first_page_headers: dict[str, str] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802 - http.server's name
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                server.queries.append((parts.path, query, self.headers.get("X-API-Key")))
                recorded = server.responses.get(parts.path)
                if recorded is None:
                    body, status, headers = b'{"detail":"no such path"}', 404, {}
                else:
                    page, limit = int(query.get("page", 1)), int(query.get("limit", 100))
                    rows = recorded["results"][(page - 1) * limit : page * limit]
                    meta = {**recorded["meta"], "page": page, "limit": limit}
                    body, status = json.dumps({"meta": meta, "results": rows}).encode(), 200
                    headers = server.first_page_headers if page == 1 else {}
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.handler = Handler


@pytest.fixture
def server():
    with PagingServer() as paging:
        yield paging


@pytest.fixture
def recorded(data_dir):
    return lambda name: json.loads(recording(data_dir, name).read_text())


def _client(sleeps: list[float]) -> HttpClient:
    settings = HttpSettings(read_timeout_s=2, max_retries=0)
    return HttpClient(settings, headers={"X-API-Key": KEY}, sleep=sleeps.append)


def test_backfill_pages_until_found_with_the_range_and_honours_a_spent_quota(server, recorded, monkeypatch):
    measurements = recorded(MEASUREMENTS_3)
    rows, found = measurements["results"], measurements["meta"]["found"]
    assert found == len(rows) == 48
    monkeypatch.setattr(openaq, "API_URL", f"{server.url}/v3")
    server.responses["/v3/sensors/3/measurements"] = measurements
    server.first_page_headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "3"}
    sensors = openaq.sensor_index(recorded(LOCATIONS)["results"])
    sleeps: list[float] = []
    readings, dropped = openaq.backfill(
        _client(sleeps),
        [3],
        sensors,
        endpoint="measurements",
        window=openaq.Window(_utc(FROM), _utc(TO)),
        page_limit=10,
    )
    pages = -(-found // 10)  # 5: four full pages, then 8 rows, and found is reached
    assert [q[1]["page"] for q in server.queries] == [str(n) for n in range(1, pages + 1)]
    assert {(q[0], q[1]["limit"], q[1]["datetime_from"], q[1]["datetime_to"], q[2]) for q in server.queries} == {
        ("/v3/sensors/3/measurements", "10", FROM, TO, KEY)
    }
    assert sleeps == [3.0]  # the quota the first page said was spent: waited before page 2, once
    assert dropped == {}
    assert [(r["ts"], r["pm25"]) for r in readings] == [
        (row["period"]["datetimeTo"]["utc"], row["value"]) for row in rows
    ]


def test_found_as_a_string_reads_on_until_an_empty_page(server, recorded, monkeypatch, caplog):
    """The limit=5 page says found ">5": page 2 is asked for; the recording has nothing more, so page 2
    comes back empty and ends the paging without a warning."""
    page_1 = recorded("openaqr_v3_sensors_3_measurements_limit5_page1.json")
    assert page_1["meta"]["found"] == ">5" and len(page_1["results"]) == 5
    monkeypatch.setattr(openaq, "API_URL", f"{server.url}/v3")
    server.responses["/v3/sensors/3/measurements"] = page_1
    sensors = openaq.sensor_index(recorded(LOCATIONS)["results"])
    window = openaq.Window(_utc("2023-03-01T00:00:00Z"), _utc("2023-03-02T00:00:00Z"))
    with caplog.at_level(logging.WARNING, logger="collectors.openaq"):
        readings, dropped = openaq.backfill(
            _client([]), [3], sensors, endpoint="measurements", window=window, page_limit=5
        )
    assert [q[1]["page"] for q in server.queries] == ["1", "2"]
    assert len(readings) == 5 and dropped == {}
    assert "gave no reading" not in caplog.text


def test_a_page_of_a_sensor_no_location_owns_is_counted_and_named(server, recorded, monkeypatch, caplog):
    measurements = recorded(MEASUREMENTS_3)
    monkeypatch.setattr(openaq, "API_URL", f"{server.url}/v3")
    server.responses["/v3/sensors/3/measurements"] = measurements
    with caplog.at_level(logging.WARNING, logger="collectors.openaq"):
        readings, dropped = openaq.backfill(
            _client([]), [3], {}, endpoint="measurements", window=openaq.Window(_utc(FROM), _utc(TO))
        )
    assert (readings, dropped) == ([], {"unknown_location": len(measurements["results"])})
    assert f"{server.url}/v3/sensors/3/measurements?" in caplog.text and "gave no reading" in caplog.text


def test_parameter_latest_live_pages_and_places_every_row(server, recorded, monkeypatch):
    latest = recorded("openaqr_v3_parameters_2_latest.json")
    monkeypatch.setattr(openaq, "API_URL", f"{server.url}/v3")
    # /parameters/2 answers like the recorded /parameters page, whose one record is parameter 2
    server.responses["/v3/parameters/2"] = recorded("openaqr_v3_parameters_page1.json")
    server.responses["/v3/parameters/2/latest"] = latest
    monkeypatch.setattr(openaq, "PAGE_LIMIT", 3)
    readings, dropped = openaq.fetch_parameter_latest(_client([]), 2)
    rows = latest["results"]
    assert [q[1].get("page") for q in server.queries if q[0].endswith("/latest")] == ["1", "2", "3"]
    assert dropped == {}
    assert sorted((r["station_id"], r["pm25"], r["lat"]) for r in readings) == sorted(
        (f"openaq-{row['locationsId']}", row["value"], row["coordinates"]["latitude"]) for row in rows
    )


# --- the command -------------------------------------------------------------------------------


def _run(argv: list[str], metrics: CollectorMetrics) -> int:
    args = cli.build_parser().parse_args(argv)
    return cli.run(args, cli.settings_from_args(args, load_config()), threading.Event(), metrics)


def _dropped(metrics: CollectorMetrics, reason: str) -> float | None:
    labels = {"source": "openaq", "reason": reason}
    return metrics.registry.get_sample_value("aqstream_collector_readings_dropped_total", labels)


def test_backfill_command_live_sends_every_reading_and_summarises(server, recorded, monkeypatch, tmp_path, caplog):
    locations = recorded(LOCATIONS)
    [location_3] = [loc for loc in locations["results"] if loc["id"] == 3]
    measurements = recorded(MEASUREMENTS_3)
    monkeypatch.setattr(openaq, "API_URL", f"{server.url}/v3")
    monkeypatch.setenv(openaq.API_KEY_ENV, KEY)
    # /locations/3 as the API answers one location: the recorded record of location 3
    server.responses["/v3/locations/3"] = {"meta": {**locations["meta"], "found": 1}, "results": [location_3]}
    server.responses["/v3/sensors/3/measurements"] = measurements
    until = "2023-03-07T17:00:00Z"
    inside = [r for r in measurements["results"] if _utc(FROM) < _utc(r["period"]["datetimeTo"]["utc"]) <= _utc(until)]
    out = tmp_path / "readings.ndjson"
    metrics = CollectorMetrics("openaq")
    argv = ["openaq", "backfill", "--sensor", "3", "--location-ids", "3", "--datetime-from", FROM]
    argv += ["--datetime-to", until, "--retries", "0", "--out", str(out)]
    with caplog.at_level(logging.INFO):
        assert _run(argv, metrics) == 0
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["station_id"], r["ts"], r["pm25"]) for r in written] == [
        ("openaq-3", r["period"]["datetimeTo"]["utc"], r["value"]) for r in inside
    ]
    # the loopback server serves the whole recording whatever the range: the rest is counted
    outside = len(measurements["results"]) - len(inside)
    assert _dropped(metrics, "outside_requested_range") == outside
    assert f"openaq: {len(inside)} readings" in caplog.text and f"outside_requested_range {outside}" in caplog.text
    assert {q[1].get("datetime_to") for q in server.queries if q[0].endswith("/measurements")} == {until}


def test_backfill_command_from_recorded_pages(data_dir, tmp_path):
    files = [recording(data_dir, name) for name in (LOCATIONS, MEASUREMENTS_3)]
    out = tmp_path / "readings.ndjson"
    argv = ["openaq", "backfill", "--sensor", "3", "--datetime-from", FROM, "--datetime-to", TO, "--out", str(out)]
    for path in files:
        argv += ["--from-file", str(path)]
    assert _run(argv, CollectorMetrics("openaq")) == 0
    rows = json.loads(files[1].read_text())["results"]
    assert [json.loads(line)["pm25"] for line in out.read_text().splitlines()] == [r["value"] for r in rows]


def test_parameter_latest_command_from_recorded_files(data_dir, tmp_path):
    names = ("openaqr_v3_parameters_2_latest.json", "openaqr_v3_parameters_page1.json")
    out = tmp_path / "readings.ndjson"
    argv = ["openaq", "--parameter", "2", "--out", str(out)]
    for name in names:
        argv += ["--from-file", str(recording(data_dir, name))]
    assert _run(argv, CollectorMetrics("openaq")) == 0
    rows = json.loads(recording(data_dir, names[0]).read_text())["results"]
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted((r["station_id"], r["pm25"]) for r in written) == sorted(
        (f"openaq-{row['locationsId']}", row["value"]) for row in rows
    )


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["openaq", "backfill", "--datetime-from", FROM, "--datetime-to", TO], "--sensor"),
        (["openaq", "backfill", "--sensor", "3", "--datetime-from", TO, "--datetime-to", FROM], "earlier"),
        (["openaq", "backfill", "--sensor", "3", "--datetime-from", FROM, "--datetime-to", TO], "--location-ids"),
        (["openaq", "--country", "KE", "--sensor", "3"], "belong to backfill"),
        (
            ["openaq", "backfill", "--sensor", "3", "--sensor", "5", "--datetime-from", FROM, "--datetime-to", TO]
            + ["--from-file", "{data}/openaq/" + MEASUREMENTS_3],
            "one --sensor",
        ),
        (
            ["openaq", "--parameter", "7", "--from-file", "{data}/openaq/openaqr_v3_parameters_page1.json"],
            "/parameters/7",
        ),
    ],
)
def test_usage_mistakes_name_the_option(argv, says, data_dir, monkeypatch, caplog):
    monkeypatch.setenv(openaq.API_KEY_ENV, KEY)
    argv = [a.replace("{data}", str(data_dir)) for a in argv] + ["--dry-run", "--metrics-port", "0"]
    started = time.monotonic()
    assert cli.main(argv) == 2
    assert says in caplog.text and time.monotonic() - started < 5  # refused before any request
