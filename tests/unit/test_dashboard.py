"""The dashboard's pure parts: ranges and partitions, the current AQI and its colours, the alerts' merge,
the JSON of a row, a stopped job's last batch from Prometheus' answers, the health cache, its config."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from cassandra.util import Date

from dashboard.categories import EEA_COLOURS, NO_CATEGORY_COLOUR, US_COLOURS, current_aqi, legend
from dashboard.health import Cached, committed_batches
from dashboard.ranges import BadParameter, TimeRange, checked_range, days_newest_first
from dashboard.rows import json_row, json_value, latest_alerts
from jobs.config import ConfigError, load_config
from jobs.transforms.aqi import EAQI_BANDS, US_CATEGORIES

pytestmark = pytest.mark.unit

T0 = datetime(2013, 3, 1, 0, 0)


# --- ranges -----------------------------------------------------------------------------------


def test_a_range_is_kept_in_naive_utc():
    beijing = timezone(timedelta(hours=8))
    span = checked_range(datetime(2013, 3, 1, 8, tzinfo=beijing), datetime(2013, 3, 2, tzinfo=UTC), max_days=31)
    assert span == TimeRange(datetime(2013, 3, 1, 0), datetime(2013, 3, 2, 0))


@pytest.mark.parametrize(
    ("start", "end", "problem"),
    [
        (T0 + timedelta(hours=1), T0, "must be after start"),  # reversed
        (T0, T0, "must be after start"),  # empty
        (T0, T0 + timedelta(days=31, seconds=1), "longer than 31 days"),
    ],
)
def test_a_bad_range_names_end(start, end, problem):
    with pytest.raises(BadParameter, match=problem) as raised:
        checked_range(start, end, max_days=31)
    assert raised.value.parameter == "end"


def test_a_range_of_exactly_the_cap_is_accepted():
    assert checked_range(T0, T0 + timedelta(days=31), max_days=31).end == datetime(2013, 4, 1)


@pytest.mark.parametrize(
    ("start", "end", "days"),
    [
        (T0, T0 + timedelta(hours=5), [date(2013, 3, 1)]),
        # end is exclusive: a range ending at midnight does not read the next day's partition
        (T0 + timedelta(hours=20), T0 + timedelta(days=1), [date(2013, 3, 1)]),
        (
            T0 + timedelta(hours=23),
            T0 + timedelta(days=2, hours=1),
            [date(2013, 3, 3), date(2013, 3, 2), date(2013, 3, 1)],
        ),
    ],
)
def test_the_readings_partitions_of_a_range_are_its_utc_days_newest_first(start, end, days):
    assert days_newest_first(TimeRange(start, end)) == days


# --- current AQI and colours ------------------------------------------------------------------


def test_every_category_of_both_indexes_has_its_colour_in_order():
    assert list(US_COLOURS) == [name for _, name in US_CATEGORIES]
    assert list(EEA_COLOURS) == list(EAQI_BANDS)
    assert [e["category"] for e in legend()["us"]] == list(US_COLOURS)


def test_the_us_figure_is_the_nowcast_aqi_and_its_category():
    # PM2.5 NowCast 20.0 µg/m³: in the EPA row 9.1-35.4 → 51-100: 51 + 49 × (20.0 - 9.1) / 26.3 = 71.3 → 71
    hour = {"aqi_us_nowcast": 71, "pm25_nowcast": 20.0, "pm10_nowcast": 30.0, "aqi_us": 160, "aqi_us_category": "x"}
    hour |= {"eaqi": 4, "eaqi_band": "Poor", "eaqi_dominant": "pm25"}
    figures = current_aqi(hour)
    assert figures["us"] == {
        "value": 71,
        "category": "Moderate",
        "pollutant": "pm25",
        "basis": "nowcast",
        "colour": "#ffff00",
    }
    assert figures["eea"] == {"value": 4, "category": "Poor", "pollutant": "pm25", "basis": "hour", "colour": "#ff5050"}


def test_the_pm10_nowcast_is_named_when_it_drives_the_aqi():
    # PM10 NowCast 200 µg/m³: row 155-254 → 101-150: 101 + 49 × 45 / 99 = 123.3 → 123; PM2.5 5.0 → 28
    hour = {"aqi_us_nowcast": 123, "pm25_nowcast": 5.0, "pm10_nowcast": 200.0}
    assert current_aqi(hour)["us"]["pollutant"] == "pm10"
    assert current_aqi(hour)["us"]["category"] == "Unhealthy for Sensitive Groups"


def test_an_hour_without_a_nowcast_shows_the_hours_own_aqi():
    hour = {"aqi_us_nowcast": None, "aqi_us": 42, "aqi_us_category": "Good", "aqi_us_dominant": "o3"}
    assert current_aqi(hour)["us"] == {
        "value": 42,
        "category": "Good",
        "pollutant": "o3",
        "basis": "hour",
        "colour": "#00e400",
    }


def test_a_station_without_an_hour_has_no_figure_and_a_grey_cell():
    for figure in current_aqi(None).values():
        assert figure == {
            "value": None,
            "category": None,
            "pollutant": None,
            "basis": None,
            "colour": NO_CATEGORY_COLOUR,
        }


# --- rows -------------------------------------------------------------------------------------


def test_a_rows_values_as_json():
    row = {
        "ts": datetime(2013, 3, 1, 5),
        "day": Date(date(2013, 3, 1)),
        "pm25": math.nan,
        "extra": {"wd": 90.0},
        "flags": ["a"],
        "registry": "all",
    }
    assert json_row(row, drop=("registry",)) == {
        "ts": "2013-03-01T05:00:00Z",
        "day": "2013-03-01",
        "pm25": None,
        "extra": {"wd": 90.0},
        "flags": ["a"],
    }
    assert json_value(date(2024, 1, 2)) == "2024-01-02"


def alert(station: str, hour: int, index: str) -> dict:
    return {"station_id": station, "hour": T0 + timedelta(hours=hour), "aqi_index": index}


def test_the_latest_alerts_of_all_stations_newest_first_then_by_station_and_index():
    per_station = [
        [alert("b", 9, "eea"), alert("b", 9, "us"), alert("b", 2, "us")],
        [alert("a", 9, "us"), alert("a", 5, "eea")],
        [],
    ]
    merged = latest_alerts(per_station, limit=4)
    assert [(a["station_id"], a["hour"].hour, a["aqi_index"]) for a in merged] == [
        ("a", 9, "us"),
        ("b", 9, "eea"),
        ("b", 9, "us"),
        ("a", 5, "eea"),
    ]


# --- health -----------------------------------------------------------------------------------


def test_a_stopped_querys_last_batch_from_prometheus_answers():
    series = {
        "last_batch_id": [({"query": "cdc_to_cassandra"}, 7.0), ({"query": "raw_to_mongo"}, 3.0)],
        "last_progress_timestamp_seconds": [({"query": "cdc_to_cassandra"}, 1_700_000_000.5)],
        "watermark_timestamp_seconds": [({"query": "cdc_to_cassandra"}, 1_362_096_000.0)],
        "source_end_offset": [
            ({"query": "cdc_to_cassandra", "topic": "cdc", "partition": "0"}, 40.0),
            ({"query": "cdc_to_cassandra", "topic": "cdc", "partition": "2"}, 12.0),
        ],
    }
    batches = committed_batches(series)
    cdc = batches["cdc_to_cassandra"]
    assert (cdc.batch_id, cdc.committed_at, cdc.end_offsets) == (7, 1_700_000_000.5, {"cdc": {0: 40, 2: 12}})
    assert cdc.watermark == datetime(2013, 3, 1, 0, 0)
    raw = batches["raw_to_mongo"]
    assert (raw.batch_id, raw.committed_at, raw.end_offsets, raw.watermark) == (3, 0.0, None, None)


def test_the_health_is_computed_once_per_ttl():
    now = [0.0]
    calls = []
    cached = Cached(lambda: calls.append(now[0]) or len(calls), ttl_s=15, clock=lambda: now[0])
    assert [cached.get(), cached.get()] == [1, 1]
    now[0] = 14.9
    assert cached.get() == 1
    now[0] = 15.0
    assert cached.get() == 2
    assert calls == [0.0, 15.0]


# --- config -----------------------------------------------------------------------------------


def test_the_dashboard_settings_come_from_the_toml_and_the_environment():
    settings = load_config(environ={"AQSTREAM__DASHBOARD__PORT": "18050"}).dashboard
    assert (settings.host, settings.port, settings.max_range_days) == ("127.0.0.1", 18050, 31)


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("PORT", "0", r"dashboard\.port: "),
        ("MAX_PAGE_SIZE", "0", r"dashboard\.max_page_size: "),
        ("PROMETHEUS_URL", "localhost:9090", r"dashboard\.prometheus_url: "),
        ("PROMETHEUS_LOOKBACK", "a week", r"dashboard\.prometheus_lookback: "),
        ("TREND_HOURS", "745", r"dashboard: .*trend_hours 745 is longer than max_range_days"),
        ("COLOUR", "red", r"dashboard\.colour: Extra inputs"),
    ],
)
def test_a_bad_dashboard_setting_names_its_field(variable, value, problem):
    with pytest.raises(ConfigError, match=problem):
        load_config(environ={f"AQSTREAM__DASHBOARD__{variable}": value})
