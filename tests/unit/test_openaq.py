"""OpenAQ v3 recorded responses → one reading per location and time (values read off the JSON)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from collectors import openaq

pytestmark = pytest.mark.unit

INGESTED = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _results(data_dir, name):
    return json.loads((data_dir / "openaq" / name).read_text())["results"]


def test_del_norte_sensors_grouped_by_time_and_converted(data_dir):
    locations = _results(data_dir, "openaqpy_v3_locations.json")
    sensors = _results(data_dir, "openaqpy_v3_sensors.json")
    readings = openaq.readings_from_latest(locations, sensors, ingested_at=INGESTED)
    assert [r["event_id"] for r in readings] == [
        "openaq:openaq-2178:20240826T200000Z",
        "openaq:openaq-2178:20240826T210000Z",
    ]
    pm, gases = readings
    assert (pm["station_name"], pm["city"], pm["country"]) == ("Del Norte", "Albuquerque", "US")
    assert (pm["lat"], pm["lon"]) == (35.1353, -106.584702)
    assert (pm["pm25"], pm["pm10"], pm["no2"]) == (4.1, 15.0, None)
    # ppm → µg/m³ at 25 °C: ppm × 1000 × MW / 24.45, worked by hand
    assert gases["no2"] == pytest.approx(0.7 * 46.0055 / 24.45)  # 1.3171
    assert gases["so2"] == pytest.approx(0.3 * 64.066 / 24.45)  # 0.7861
    assert gases["co"] == pytest.approx(100 * 28.010 / 24.45)  # 114.56
    assert gases["o3"] == pytest.approx(59 * 47.997 / 24.45)  # 115.82
    assert gases["extra"] == {"nox_ppm": 0.001, "no_ppm": 0.0}
    assert gases["pm25"] is None
    raw = json.loads(gases["raw"])
    assert {m["sensorsId"] for m in raw["measurements"]} == {3916, 3918, 3917, 25227, 4272103, 4272226}


def test_location_latest_endpoint(data_dir):
    locations = _results(data_dir, "openaqr_v3_locations_1.json")
    latest = _results(data_dir, "openaqr_v3_locations_1_latest.json")
    [reading] = openaq.readings_from_latest(locations, latest, ingested_at=INGESTED)
    assert reading["event_id"] == "openaq:openaq-1:20250709T013000Z"
    assert (reading["pm25"], reading["country"], reading["station_name"]) == (8.15, "PF", "testing site 1")
    assert (reading["lat"], reading["lon"]) == (-16.51516, -151.76306)


def test_empty_latest_gives_nothing(data_dir):
    locations = _results(data_dir, "openaqr_v3_locations_1.json")
    latest = _results(data_dir, "openaqr_v3_locations_1_latest_datetime_min_empty.json")
    assert openaq.readings_from_latest(locations, latest, ingested_at=INGESTED) == []


def test_vietnam_locations_index_every_sensor(data_dir):
    locations = _results(data_dir, "stevetran77_v3_locations_vietnam.json")
    index = openaq._sensor_index(locations)
    assert len(locations) == 53
    assert len(index) == sum(len(loc["sensors"]) for loc in locations)


def test_found_as_string_means_unknown():
    assert openaq._found({"found": ">100"}) is None
    assert openaq._found({"found": 53}) == 53
