"""Open-Meteo recorded responses → exact canonical readings (values read off the JSON files)."""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime

import pytest

from collectors import cli, openmeteo
from collectors.cli import REPO_ROOT
from collectors.metrics import CollectorMetrics
from collectors.stations import load_cities

pytestmark = pytest.mark.unit

INGESTED = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def cities():
    return load_cities(REPO_ROOT / "conf" / "cities.json")


def _load(data_dir, name):
    return json.loads((data_dir / "openmeteo" / name).read_text())


def _parse(response, cities, now):
    station = openmeteo.station_for(response, cities)
    return openmeteo.readings_from_response(response, station, now=now, ingested_at=INGESTED)


def test_cities_config_has_the_seed_cities(cities):
    ids = {c.id for c in cities.cities}
    assert {"nairobi", "mombasa"} <= ids and len(ids) >= 5


def test_amsterdam_hourly_and_current(data_dir, cities):
    response = _load(data_dir, "frenck_air_quality_current_hourly_amsterdam.json")
    readings, forecast = _parse(response, cities, now=datetime(2026, 11, 1, tzinfo=UTC))
    # local 2026-10-03T00:00..02:00 at UTC+2, plus current 12:00 local
    assert [r["ts"] for r in readings] == [
        "2026-10-02T22:00:00Z",
        "2026-10-02T23:00:00Z",
        "2026-10-03T00:00:00Z",
        "2026-10-03T10:00:00Z",
    ]
    assert forecast == {"forecast": 0, "unmapped_column": 0}
    first, current = readings[0], readings[-1]
    # 52.300003/6.8999996 is a grid cell ~140 km east of Amsterdam: no configured city claims it
    assert first["station_id"] == "openmeteo-grid-52.30n-6.90e"
    assert first["event_id"] == "openmeteo:openmeteo-grid-52.30n-6.90e:20261002T220000Z"
    assert (first["pm10"], first["pm25"], first["co"], first["no2"], first["so2"], first["o3"]) == (
        25.1,
        20.5,
        263.0,
        20.7,
        1.3,
        33.0,
    )
    assert first["uv_index"] == 0.0 and first["temperature"] is None
    assert first["extra"]["carbon_dioxide_ppm"] == 492.0
    assert first["extra"]["dust_ugm3"] == 0.0
    assert (current["pm25"], current["pm10"], current["co"], current["uv_index"]) == (22.1, 28.2, 229.0, 2.1)
    assert current["extra"]["european_aqi"] == 44.0 and current["extra"]["us_aqi"] == 65.0
    assert json.loads(current["raw"])["block"] == "current"
    assert all(r["flags"] == [] and r["schema_version"] == 1 for r in readings)


def test_no_forecast_hour_is_a_reading(data_dir, cities):
    # recorded 2026-10-01 with 72 hourly steps from 2026-09-30T22:00Z; at 08:30Z only 11 had happened
    response = _load(data_dir, "reflbo_air_brno_unixtime_2026-10-01.json")
    as_of = datetime(2026, 10, 1, 8, 30, tzinfo=UTC)
    readings, dropped = _parse(response, cities, now=as_of)
    assert (len(readings), dropped["forecast"]) == (11, 61)
    assert readings[0]["ts"] == "2026-09-30T22:00:00Z" and readings[-1]["ts"] == "2026-10-01T08:00:00Z"
    assert all(datetime.fromisoformat(r["ts"].replace("Z", "+00:00")) <= as_of for r in readings)
    assert readings[0]["station_id"] == "openmeteo-brno" and readings[0]["country"] == "CZ"
    assert (readings[0]["pm25"], readings[0]["pm10"]) == (8.8, 11.9)
    assert (readings[-1]["pm25"], readings[-1]["pm10"], readings[-1]["extra"]["european_aqi"]) == (7.2, 12.3, 24.0)
    assert readings[0]["lat"] == 49.2 and readings[0]["lon"] == 16.600002  # the grid point, not the centre
    assert {r["timezone"] for r in readings} == {response["timezone"]}  # the zone the response says


def test_current_time_bounds_a_recorded_response(data_dir, cities):
    response = _load(data_dir, "frenck_air_quality_current_hourly_amsterdam.json")
    readings, _ = _parse(response, cities, now=datetime(2026, 10, 2, 23, 30, tzinfo=UTC))
    assert [r["ts"] for r in readings] == ["2026-10-02T22:00:00Z", "2026-10-02T23:00:00Z"]


def test_new_york_null_pollen_stays_out(data_dir, cities):
    response = _load(data_dir, "reflbo_air_new_york_unixtime_2026-10-01.json")
    readings, _ = _parse(response, cities, now=datetime(2026, 10, 5, tzinfo=UTC))
    assert len(readings) == 72
    first = readings[0]
    assert first["ts"] == "2026-10-01T04:00:00Z" and first["station_id"] == "openmeteo-new-york"
    assert (first["pm25"], first["pm10"], first["extra"]["european_aqi"]) == (20.0, 20.7, 65.0)
    assert not any(key.endswith("pollen_grains_m3") for key in first["extra"])
    assert first["flags"] == []


def test_trimmed_amsterdam(data_dir, cities):
    response = _load(data_dir, "tempi_air_quality_trimmed_amsterdam.json")
    readings, _ = _parse(response, cities, now=datetime(2026, 8, 1, tzinfo=UTC))
    assert len(readings) == 1
    reading = readings[0]
    assert reading["event_id"] == "openmeteo:openmeteo-amsterdam:20260710T220000Z"
    assert reading["pm25"] == 5.8 and reading["pm10"] is None and reading["extra"] == {"european_aqi": 22.0}


def test_request_asks_for_utc_epoch_times():
    params = openmeteo.request_params(-1.2864, 36.8172, past_days=3)
    assert params["timeformat"] == "unixtime" and params["past_days"] == 3
    assert "pm2_5" in params["hourly"].split(",")


# --- issue 15: every column mapped or counted, the `current` block, a replay's fetch time -----------


def _as_utc(value, offset):
    """A recorded time value as UTC, read independently of the parser (ISO local + offset, or epoch s)."""
    if isinstance(value, int):
        return datetime.fromtimestamp(value, UTC)
    return datetime.fromtimestamp(datetime.fromisoformat(value).replace(tzinfo=UTC).timestamp() - offset, UTC)


def test_every_column_of_a_full_response_is_mapped(data_dir, cities, caplog):
    """The Amsterdam recording carries 44 variables: none is unmapped, none warned about."""
    response = _load(data_dir, "frenck_air_quality_current_hourly_amsterdam.json")
    with caplog.at_level(logging.WARNING, logger="collectors.openmeteo"):
        readings, dropped = _parse(response, cities, now=datetime(2026, 11, 1, tzinfo=UTC))
    assert dropped["unmapped_column"] == 0 and "not mapped" not in caplog.text
    assert len(response["hourly"]) - 1 == 44  # `time` and 44 variables, every one with a rule
    first = readings[0]
    assert first["pm10"] == response["hourly"]["pm10"][0] and first["pm25"] == response["hourly"]["pm2_5"][0]
    assert first["extra"]["us_aqi_pm2_5"] == response["hourly"]["us_aqi_pm2_5"][0]


def test_multi_model_column_names_map_to_the_named_model():
    """No public recording of a multi-model (``models=a,b``) air-quality response was found; these are the
    key names issue 15 reports from one (names only, no values): the naming rule, tested on its own."""
    columns = ["pm10_cams_europe", "pm10_cams_global", "european_aqi_cams_global", "european_aqi_pm10"]
    names, unmapped = openmeteo.column_names(columns, "cams_europe")
    assert names["pm10_cams_europe"] == "pm10"  # the reading's model: its variable's name
    assert names["pm10_cams_global"] == "pm10_cams_global"  # another model: extra, full name
    assert names["european_aqi_pm10"] == "european_aqi_pm10"  # a known variable, not a model suffix
    assert unmapped == []
    names, unmapped = openmeteo.column_names(columns, None)  # no --model: no model's column is the reading
    assert unmapped == ["pm10_cams_europe", "pm10_cams_global", "european_aqi_cams_global"]
    assert "pm10" not in names.values()
    _, unmapped = openmeteo.column_names(columns, "cams_eu")  # a model the response does not hold: the same
    assert len(unmapped) == 3
    assert openmeteo.split_model("european_aqi_pm10_cams_global") == ("european_aqi_pm10", "cams_global")
    assert openmeteo.request_params(52.5, 13.4, 0, model="cams_europe")["domains"] == "cams_europe"


def test_current_fills_only_what_the_hourly_row_lacks(data_dir, cities):
    """The Amsterdam recording's `current` instant (12:00 local) is not among its hourly rows: it becomes
    its own reading and the hourly rows keep their own values (none filled from `current`).
    No public recording was found whose hourly row at `current.time` lacks a pollutant `current` carries."""
    response = _load(data_dir, "frenck_air_quality_current_hourly_amsterdam.json")
    offset = response["utc_offset_seconds"]
    readings, _ = _parse(response, cities, now=datetime(2026, 11, 1, tzinfo=UTC))
    hourly_instants = {_as_utc(t, offset) for t in response["hourly"]["time"]}
    assert _as_utc(response["current"]["time"], offset) not in hourly_instants
    by_block = {json.loads(r["raw"])["block"]: r for r in readings}
    assert by_block["current"]["pm10"] == response["current"]["pm10"]
    assert all("from_current" not in json.loads(r["raw"]) for r in readings)
    for i, reading in enumerate(r for r in readings if json.loads(r["raw"])["block"] == "hourly"):
        assert reading["pm10"] == response["hourly"]["pm10"][i]


def _collect(argv, metrics=None):
    metrics = metrics or CollectorMetrics("openmeteo")
    args = cli.build_parser().parse_args(argv)
    settings = cli.settings_from_args(args, cli.load_config())
    return cli.run(args, settings, threading.Event(), metrics), metrics


def test_a_replay_without_current_or_fetch_time_is_refused(data_dir, tmp_path, caplog):
    for name in ("reflbo_air_brno_unixtime_2026-10-01.json", "tempi_air_quality_trimmed_amsterdam.json"):
        recorded = data_dir / "openmeteo" / name
        assert "current" not in json.loads(recorded.read_text())
        out = tmp_path / f"{name}.ndjson"
        assert cli.main(["openmeteo", "--from-file", str(recorded), "--out", str(out), "--metrics-port", "0"]) == 2
        assert f"{recorded} has no `current` block" in caplog.text
        assert "--as-of" in caplog.text and f"{recorded}.fetched_at" in caplog.text
        assert not out.exists() or out.read_text() == ""  # nothing sent
        caplog.clear()


def test_a_replay_is_dated_by_the_time_recorded_beside_it(data_dir, tmp_path):
    """``<file>.fetched_at`` dates the replay like --as-of: hours after it are counted as forecast."""
    response = _load(data_dir, "reflbo_air_brno_unixtime_2026-10-01.json")
    recorded = tmp_path / "brno.json"
    recorded.write_text(json.dumps(response))
    fetched_at = "2026-10-01T08:30:00Z"
    (tmp_path / "brno.json.fetched_at").write_text(fetched_at + "\n")
    until = cli.parse_utc(fetched_at).timestamp()
    observed = [i for i, t in enumerate(response["hourly"]["time"]) if t <= until]
    out = tmp_path / "readings.ndjson"
    code, metrics = _collect(["openmeteo", "--from-file", str(recorded), "--out", str(out)])
    assert code == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["pm25"] for r in lines] == [response["hourly"]["pm2_5"][i] for i in observed]
    forecast = len(response["hourly"]["time"]) - len(observed)
    assert forecast > 0
    dropped = {
        s.labels["reason"]: s.value
        for family in metrics.registry.collect()
        if family.name == "aqstream_collector_readings_dropped"
        for s in family.samples
        if s.name.endswith("_total")
    }
    assert dropped == {"forecast": forecast, "unmapped_column": 0, "already_sent": 0}

    (tmp_path / "brno.json.fetched_at").write_text("yesterday")
    assert cli.main(["openmeteo", "--from-file", str(recorded), "--out", str(out), "--metrics-port", "0"]) == 2


def test_a_replay_with_current_is_dated_by_it(data_dir, tmp_path):
    """No --as-of: the Amsterdam recording's `current.time` is its fetch time; the run is accepted."""
    recorded = data_dir / "openmeteo" / "frenck_air_quality_current_hourly_amsterdam.json"
    response = json.loads(recorded.read_text())
    out = tmp_path / "readings.ndjson"
    code, _ = _collect(["openmeteo", "--from-file", str(recorded), "--out", str(out)])
    assert code == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == len(response["hourly"]["time"]) + 1  # every hour is before `current`, plus `current`
    assert lines[-1]["pm10"] == response["current"]["pm10"]
