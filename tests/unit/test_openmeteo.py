"""Open-Meteo recorded responses → exact canonical readings (values read off the JSON files)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from collectors import openmeteo
from collectors.cli import REPO_ROOT
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
    assert forecast == 0
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
    readings, forecast = _parse(response, cities, now=as_of)
    assert (len(readings), forecast) == (11, 61)
    assert readings[0]["ts"] == "2026-09-30T22:00:00Z" and readings[-1]["ts"] == "2026-10-01T08:00:00Z"
    assert all(datetime.fromisoformat(r["ts"].replace("Z", "+00:00")) <= as_of for r in readings)
    assert readings[0]["station_id"] == "openmeteo-brno" and readings[0]["country"] == "CZ"
    assert (readings[0]["pm25"], readings[0]["pm10"]) == (8.8, 11.9)
    assert (readings[-1]["pm25"], readings[-1]["pm10"], readings[-1]["extra"]["european_aqi"]) == (7.2, 12.3, 24.0)
    assert readings[0]["lat"] == 49.2 and readings[0]["lon"] == 16.600002  # the grid point, not the centre


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
