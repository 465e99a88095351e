"""OpenAQ v3 recorded responses → readings (values read off the JSON), and what is not read, counted.

Latest values (``/locations/{id}/latest``, ``/parameters/{id}/latest``, ``/sensors``) and history
(``/sensors/{id}/measurements|hours|days``, issue 15 case 4). Expected values are computed here
from the recorded rows, never taken from the collector.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest

from collectors import openaq
from tests.support.recordings import recording

pytestmark = pytest.mark.unit

INGESTED = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
MEASUREMENTS_3 = "openaqr_v3_sensors_3_measurements_2023-03-07.json"  # 48 raw 30-min rows of sensor 3
LIMIT5_3 = "openaqr_v3_sensors_3_measurements_limit5_page1.json"  # sensor 3's first 5 raw rows
HOURS_DEL_NORTE = "openaqpy_v3_measurements.json"  # 2 hourly rows; the file names no sensor (see PROVENANCE)
PARAMETER_2_LATEST = "openaqr_v3_parameters_2_latest.json"


def _results(data_dir, name):
    return json.loads(recording(data_dir, name).read_text())["results"]


def _recorded(data_dir, *names):
    return {name: openaq.split_rows(_results(data_dir, name)) for name in names}


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _stamp(text: str) -> str:
    return _utc(text).strftime("%Y%m%dT%H%M%SZ")


# --- latest values ---------------------------------------------------------------------------


def test_del_norte_sensors_grouped_by_time_and_converted(data_dir):
    locations = _results(data_dir, "openaqpy_v3_locations.json")
    sensors = _results(data_dir, "openaqpy_v3_sensors.json")
    readings, dropped = openaq.readings_from_latest(locations, sensors, ingested_at=INGESTED)
    assert dropped == {}
    assert [r["event_id"] for r in readings] == [
        "openaq:openaq-2178:20240826T200000Z",
        "openaq:openaq-2178:20240826T210000Z",
    ]
    pm, gases = readings
    assert (pm["station_name"], pm["city"], pm["country"]) == ("Del Norte", "Albuquerque", "US")
    assert (pm["lat"], pm["lon"]) == (35.1353, -106.584702)
    assert {pm["timezone"], gases["timezone"]} == {locations[0]["timezone"]}  # the location's own zone
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
    [reading], dropped = openaq.readings_from_latest(locations, latest, ingested_at=INGESTED)
    assert dropped == {}
    assert reading["event_id"] == "openaq:openaq-1:20250709T013000Z"
    assert (reading["pm25"], reading["country"], reading["station_name"]) == (8.15, "PF", "testing site 1")
    assert (reading["lat"], reading["lon"]) == (-16.51516, -151.76306)


def test_empty_latest_gives_nothing(data_dir):
    locations = _results(data_dir, "openaqr_v3_locations_1.json")
    latest = _results(data_dir, "openaqr_v3_locations_1_latest_datetime_min_empty.json")
    assert openaq.readings_from_latest(locations, latest, ingested_at=INGESTED) == ([], {})


def test_vietnam_locations_index_every_sensor(data_dir):
    locations = _results(data_dir, "stevetran77_v3_locations_vietnam.json")
    index = openaq.sensor_index(locations)
    assert len(locations) == 53
    assert len(index) == sum(len(loc["sensors"]) for loc in locations)


def test_found_as_string_means_unknown():
    assert openaq._found({"found": ">100"}) is None
    assert openaq._found({"found": 53}) == 53


def test_parameter_latest_rows_are_placed_by_their_own_location_and_coordinates(data_dir):
    """Issue 15: /parameters/2/latest rows gave 0 readings without a locations file listing the sensor.
    With the /parameters/2 record (what they measure) every row is a reading at its own locationsId."""
    rows = _results(data_dir, PARAMETER_2_LATEST)
    [pm25] = _results(data_dir, "openaqr_v3_parameters_page1.json")
    assert (pm25["id"], pm25["name"]) == (2, "pm25")
    readings, dropped = openaq.readings_from_latest([], rows, ingested_at=INGESTED, parameter=pm25)
    assert dropped == {}
    by_id = {r["event_id"]: r for r in readings}
    expected = {f"openaq:openaq-{row['locationsId']}:{_stamp(row['datetime']['utc'])}": row for row in rows}
    assert set(by_id) == set(expected) and len(readings) == len(rows) == 7
    for event_id, row in expected.items():
        reading = by_id[event_id]
        assert reading["station_id"] == f"openaq-{row['locationsId']}"
        assert reading["pm25"] == row["value"]  # µg/m³ already
        assert (reading["lat"], reading["lon"]) == (row["coordinates"]["latitude"], row["coordinates"]["longitude"])
        off_the_globe = not -180 <= row["coordinates"]["longitude"] <= 180
        assert ("lon:out_of_range" in reading["flags"]) == off_the_globe
        assert json.loads(reading["raw"])["measurements"][0]["sensorsId"] == row["sensorsId"]
    assert sum("lon:out_of_range" in r["flags"] for r in readings) == 1  # location 5's 185.199922
    # the same value through /locations/1/latest is the same reading (one event id)
    [location_1] = _results(data_dir, "openaqr_v3_locations_1_latest.json")
    assert f"openaq:openaq-1:{_stamp(location_1['datetime']['utc'])}" in by_id


def test_parameter_latest_rows_without_their_parameter_are_counted(data_dir, caplog):
    rows = _results(data_dir, PARAMETER_2_LATEST)
    with caplog.at_level(logging.WARNING, logger="collectors.openaq"):
        readings, dropped = openaq.readings_from_latest([], rows, ingested_at=INGESTED)
    assert (readings, dropped) == ([], {"unknown_parameter": len(rows)})
    assert "unknown_parameter" in caplog.text and "--parameter" in caplog.text
    # a locations file names the parameter of the sensors it lists; sensor 5's location is not in it
    locations = _results(data_dir, "openaqr_v3_locations_page1.json")
    listed = {s["id"] for loc in locations for s in loc["sensors"]}
    readings, dropped = openaq.readings_from_latest(locations, rows, ingested_at=INGESTED)
    assert len(readings) == sum(row["sensorsId"] in listed for row in rows) == 6
    assert dropped == {"unknown_parameter": 1}
    names = {loc["id"]: loc["name"] for loc in locations}
    assert {r["station_name"] for r in readings} == {names[r["locationsId"]] for r in rows if r["sensorsId"] in listed}


def test_recorded_files_not_understood_are_counted_and_warned(data_dir, caplog):
    responses = _recorded(data_dir, "openaqr_v3_locations_page1.json", "openaqr_v3_countries_page1.json")
    countries = len(_results(data_dir, "openaqr_v3_countries_page1.json"))
    with caplog.at_level(logging.WARNING, logger="collectors.openaq"):
        readings, dropped = openaq.latest_from_recorded(responses, ingested_at=INGESTED)
    assert (readings, dropped) == ([], {"unknown_shape": countries})
    assert "openaqr_v3_countries_page1.json gave no reading" in caplog.text


# --- history: /sensors/{id}/measurements | hours | days ----------------------------------------


def test_raw_measurements_are_filed_at_their_period_end_at_the_owning_location(data_dir):
    rows = _results(data_dir, MEASUREMENTS_3)
    [location_3] = [loc for loc in _results(data_dir, "openaqr_v3_locations_page1.json") if loc["id"] == 3]
    responses = _recorded(data_dir, "openaqr_v3_locations_page1.json", MEASUREMENTS_3)
    # the recorded request's own range: 2023-03-07T00:00-05:00 to 2023-03-08T00:00-05:00
    window = openaq.Window(_utc("2023-03-07T05:00:00Z"), _utc("2023-03-08T05:00:00Z"))
    readings, dropped = openaq.backfill_from_recorded(responses, 3, window=window, ingested_at=INGESTED)
    assert dropped == {}  # the API applied this range: every row it sent is inside
    assert [r["event_id"] for r in readings] == [
        f"openaq:openaq-3:{_stamp(row['period']['datetimeTo']['utc'])}" for row in rows
    ]
    assert [r["pm25"] for r in readings] == [row["value"] for row in rows]
    coords = location_3["coordinates"]
    assert {(r["station_name"], r["lat"], r["lon"]) for r in readings} == {
        (location_3["name"], coords["latitude"], coords["longitude"])
    }
    assert [r["extra"]["pm25_coverage_pct"] for r in readings] == [row["coverage"]["percentComplete"] for row in rows]


def test_the_period_end_is_the_instant_openaq_files_a_value_under(data_dir):
    """Sensor 3's first value (the limit=5 page) ends at its datetimeFirst, and its latest value on
    /parameters/2/latest is stamped like a period end: backfill and latest agree on ts."""
    [sensor_3] = _results(data_dir, "openaqr_v3_locations_3_sensors.json")
    first_page = _results(data_dir, LIMIT5_3)
    responses = _recorded(data_dir, "openaqr_v3_locations_page1.json", LIMIT5_3)
    window = openaq.Window(_utc("2023-03-01T00:00:00Z"), _utc("2023-04-01T05:00:00Z"))
    readings, dropped = openaq.backfill_from_recorded(responses, 3, window=window, ingested_at=INGESTED)
    assert dropped == {} and len(readings) == len(first_page) == 5
    assert readings[0]["ts"] == sensor_3["datetimeFirst"]["utc"] == first_page[0]["period"]["datetimeTo"]["utc"]
    assert readings[0]["ts"] != first_page[0]["period"]["datetimeFrom"]["utc"]


def test_rows_outside_the_requested_range_are_counted(data_dir):
    rows = _results(data_dir, MEASUREMENTS_3)
    responses = _recorded(data_dir, "openaqr_v3_locations_page1.json", MEASUREMENTS_3)
    start, end = _utc("2023-03-07T05:00:00Z"), _utc("2023-03-07T17:00:00Z")
    inside = [row for row in rows if start < _utc(row["period"]["datetimeTo"]["utc"]) <= end]
    assert 0 < len(inside) < len(rows)
    readings, dropped = openaq.backfill_from_recorded(
        responses, 3, window=openaq.Window(start, end), ingested_at=INGESTED
    )
    assert [r["pm25"] for r in readings] == [row["value"] for row in inside]
    assert dropped == {"outside_requested_range": len(rows) - len(inside)}


def test_a_sensor_no_known_location_owns_is_counted_per_row_and_warned(data_dir, caplog):
    rows = _results(data_dir, MEASUREMENTS_3)
    window = openaq.Window(_utc("2023-03-07T05:00:00Z"), _utc("2023-03-08T05:00:00Z"))
    with caplog.at_level(logging.WARNING, logger="collectors.openaq"):
        readings, dropped = openaq.backfill_from_recorded(
            _recorded(data_dir, MEASUREMENTS_3), 3, window=window, ingested_at=INGESTED
        )
    assert (readings, dropped) == ([], {"unknown_location": len(rows)})
    assert f"{MEASUREMENTS_3} gave no reading" in caplog.text
    assert f"{len(rows)} record(s) not read, unknown_location" in caplog.text


def test_hourly_means_with_their_summary(data_dir):
    """The hourly rows of openaq-python's fixture, replayed as Del Norte's pm25 sensor 3920 (the
    file names no sensor; its −06:00 offset and µg/m³ fit that one)."""
    rows = _results(data_dir, HOURS_DEL_NORTE)
    [del_norte] = _results(data_dir, "openaqpy_v3_locations.json")
    assert 3920 in {s["id"] for s in del_norte["sensors"]}
    assert {row["period"]["label"] for row in rows} == {"1hour"}
    responses = _recorded(data_dir, "openaqpy_v3_locations.json", HOURS_DEL_NORTE)
    window = openaq.Window(_utc("2023-10-16T00:00:00Z"), _utc("2023-10-17T00:00:00Z"))
    readings, dropped = openaq.backfill_from_recorded(responses, 3920, window=window, ingested_at=INGESTED)
    assert dropped == {}
    assert [(r["station_id"], r["ts"], r["pm25"]) for r in readings] == [
        ("openaq-2178", _utc(row["period"]["datetimeTo"]["utc"]).strftime("%Y-%m-%dT%H:%M:%SZ"), row["value"])
        for row in rows
    ]
    for reading, row in zip(readings, rows, strict=True):
        assert reading["extra"]["pm25_min"] == row["summary"]["min"]
        assert reading["extra"]["pm25_max"] == row["summary"]["max"]
        assert reading["extra"]["pm25_observed_count"] == row["coverage"]["observedCount"]
        assert (reading["lat"], reading["lon"]) == (
            del_norte["coordinates"]["latitude"],
            del_norte["coordinates"]["longitude"],
        )


def test_backfill_params_per_endpoint():
    window = openaq.Window(_utc("2023-03-07T05:00:00Z"), _utc("2023-03-08T05:00:00Z"))
    expected = {"from": "2023-03-07T05:00:00Z", "to": "2023-03-08T05:00:00Z"}
    assert openaq.backfill_params("hours", window) == {f"datetime_{k}": v for k, v in expected.items()}
    assert openaq.backfill_params("days", window) == {f"date_{k}": v for k, v in expected.items()}
