"""AQI alerts (jobs/transforms/alerts.py) and the station registry (jobs/transforms/stations.py), on real
UCI Beijing days against the independent pandas oracle of tests/support/cdc_events.py."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from jobs.transforms import aggregates as A
from jobs.transforms import alerts as AL
from jobs.transforms.stations import registry_rows
from tests.support.cdc_events import POLLUTANT_COLUMNS, beijing_readings, oracle_alert_changes, pandas_alerts
from tests.support.pipeline import parse_ts

UPDATED = datetime(2026, 1, 1)
HOUR = timedelta(hours=1)


@pytest.fixture(scope="module")
def readings(data_dir) -> list[dict]:
    """Four real days of two Beijing stations (NA gaps included), the first days of March 2013."""
    return beijing_readings(data_dir, "Aotizhongxin", 96) + beijing_readings(data_dir, "Dongsi", 96, start=24)


def as_stored(readings: list[dict]) -> list[dict]:
    """The readings as the job reads them back from Cassandra (naive UTC ts, pollutants, metadata)."""
    fields = (*POLLUTANT_COLUMNS, "source", "station_name", "city", "country", "lat", "lon", "timezone")
    return [{"station_id": r["station_id"], "ts": parse_ts(r["ts"]), **{f: r[f] for f in fields}} for r in readings]


def job_alerts(readings: list[dict]) -> dict:
    """What the job computes for every hour of ``readings``: the 1 h rows of them all, the alerts of all hours."""
    stored = as_stored(readings)
    zones = A.station_zones({r["station_id"] for r in stored}, stored, {})
    rows = A.window_rows(stored, A.touched_windows(((r["station_id"], r["ts"]) for r in stored), zones), UPDATED, zones)
    return AL.hourly_alerts(rows, {(r["station_id"], r["window_start"]) for r in rows if r["window_size"] == "1h"})


def replaced(readings: list[dict], index: int, **values) -> list[dict]:
    return [{**r, **values} if i == index else r for i, r in enumerate(readings)]


def test_alerts_of_real_days_equal_the_pandas_oracle(readings):
    oracle = pandas_alerts(readings)
    assert job_alerts(readings) == oracle
    # the days cross categories both ways on both indexes, and the oracle sees it
    crossings = {(k[1], a["previous_category"], a["category"]) for k, a in oracle.items()}
    assert ("us", "Moderate", "Unhealthy for Sensitive Groups") in crossings
    assert ("us", "Unhealthy", "Unhealthy for Sensitive Groups") in crossings
    assert ("eea", "Poor", "Very poor") in crossings and ("eea", "Very poor", "Poor") in crossings
    assert {k[0] for k in oracle} == {"aotizhongxin", "dongsi"}
    # e.g. Aotizhongxin's PM NowCast AQI reaches 109 at 17:00 Beijing time on 2 March 2013 (09:00 UTC)
    assert oracle[("aotizhongxin", "us", datetime(2013, 3, 2, 9))]["previous_category"] == "Moderate"


def test_an_hour_without_a_previous_hour_has_no_alert(readings):
    """A missing hour (its reading deleted) leaves nothing to compare its next hour with."""
    before = job_alerts(readings)
    hour = datetime(2013, 3, 2, 9)  # Aotizhongxin's Moderate → USG crossing
    gone = [r for r in readings if not (r["station_id"] == "aotizhongxin" and parse_ts(r["ts"]) == hour - HOUR)]
    after = job_alerts(gone)
    assert ("aotizhongxin", "us", hour) in before
    assert not {k for k in after if k[0] == "aotizhongxin" and k[2] in (hour - HOUR, hour)}
    assert after == pandas_alerts(gone)


def test_a_change_moves_only_the_alerts_of_the_hours_the_job_recomputes(readings):
    """An update far off its neighbours: the alerts that differ from before are all at hours the job
    recomputes (its windows and the hour after each), and the recompute from the days it reads gives
    them exactly, including the hour after the last NowCast follower."""
    index = 16  # Aotizhongxin 2013-03-01 08:00 UTC
    changed = replaced(readings, index, pm25=480.0)
    change = [("aotizhongxin", parse_ts(readings[index]["ts"]))]
    windows = A.windows_to_recompute(change, {})
    hours = AL.alert_hours(windows)
    assert {h for _, h in hours} == {datetime(2013, 3, 1, 8) + k * HOUR for k in range(13)}

    before, after = job_alerts(readings), job_alerts(changed)
    moved = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert moved <= AL.alert_keys(hours)
    # 19:00's NowCast still holds the change (Moderate, no longer Good): 20:00, the hour after the last
    # follower, becomes a crossing back to Good
    assert ("aotizhongxin", "us", datetime(2013, 3, 1, 20)) in moved

    days = A.days_to_read(change)
    partial = [r for r in as_stored(changed) if (r["station_id"], r["ts"].date()) in days]
    rows = A.window_rows(partial, windows | AL.comparison_windows(hours), UPDATED, {})
    recomputed = AL.hourly_alerts(rows, hours)
    assert recomputed == {k: a for k, a in after.items() if k in AL.alert_keys(hours)}


def test_the_diff_raises_corrects_and_retracts_what_the_oracle_says(readings):
    before = job_alerts(readings)
    assert AL.alert_changes(before, before) == []  # a replay: nothing to send or write

    # Aotizhongxin 2013-03-02 09:00 UTC: PM2.5 up (the NowCast of the hours after it moves) and the
    # hour at 12:00 gone (its alerts and those of 13:00 retracted)
    changed = [
        r
        for r in replaced(readings, 41, pm25=260.0)
        if not (r["station_id"] == "aotizhongxin" and parse_ts(r["ts"]) == datetime(2013, 3, 2, 12))
    ]
    after = job_alerts(changed)
    expected = oracle_alert_changes(pandas_alerts(readings), pandas_alerts(changed))
    assert all(expected.values()), expected  # the change exercises every status
    changes = AL.alert_changes(after, before)
    got = {
        status: {(a["station_id"], a["aqi_index"], a["hour"]) for s, a in changes if s == status}
        for status in AL.STATUSES
    }
    assert got == expected
    for status, alert in changes:  # raised and corrected carry the new alert, retracted the stored one
        key = (alert["station_id"], alert["aqi_index"], alert["hour"])
        assert alert == (before[key] if status == AL.RETRACTED else after[key])
    assert AL.alert_changes(after, {**after}) == []  # once stored, the same batch again changes nothing


def test_the_kafka_record_of_an_alert():
    alert = {
        "station_id": "aotizhongxin",
        "hour": datetime(2013, 3, 2, 9),
        "aqi_index": "us",
        "previous_category": "Moderate",
        "category": "Unhealthy for Sensitive Groups",
        "aqi": 109,
        "pollutant": "pm25",
    }
    key, value = AL.alert_record(AL.CORRECTED, alert)
    assert key == "aotizhongxin|us|2013-03-02T09:00:00Z"
    assert json.loads(value) == {
        "station_id": "aotizhongxin",
        "aqi_index": "us",
        "hour": "2013-03-02T09:00:00Z",
        "previous_category": "Moderate",
        "category": "Unhealthy for Sensitive Groups",
        "aqi": 109,
        "pollutant": "pm25",
        "status": "corrected",
    }
    assert AL.alert_record(AL.CORRECTED, dict(alert)) == (key, value)  # the same bytes when sent again
    assert AL.by_day_row(alert)["day"] == datetime(2013, 3, 2).date()


def test_the_registry_writes_new_and_changed_stations_only(readings):
    stored_readings = as_stored(readings)
    first = registry_rows(stored_readings, {}, UPDATED)
    assert [(r["station_id"], r["station_name"], r["city"], r["country"], r["source"]) for r in first] == [
        ("aotizhongxin", "Aotizhongxin", "Beijing", "CN", "uci-beijing"),
        ("dongsi", "Dongsi", "Beijing", "CN", "uci-beijing"),
    ]
    assert {r["registry"] for r in first} == {"all"} and {r["updated_at"] for r in first} == {UPDATED}
    registry = {r["station_id"]: r for r in first}
    assert registry_rows(stored_readings, registry, UPDATED) == []  # a replay writes nothing

    # coordinates arrive with a newer reading; an older reading's name does not override the newest
    newest = max(r["ts"] for r in stored_readings if r["station_id"] == "dongsi")
    moved = [
        {**r, "lat": 39.93, "lon": 116.42} if r["station_id"] == "dongsi" and r["ts"] == newest else r
        for r in stored_readings
    ]
    moved[0] = {**moved[0], "station_name": "Aoti (old name)"}  # Aotizhongxin's oldest reading
    rows = registry_rows(moved, registry, UPDATED)
    assert [(r["station_id"], r["lat"], r["lon"], r["station_name"]) for r in rows] == [
        ("dongsi", 39.93, 116.42, "Dongsi")
    ]
    # a batch whose readings have no coordinates keeps the registry's
    registry["dongsi"] = rows[0]
    assert registry_rows([r for r in stored_readings if r["station_id"] == "dongsi"], registry, UPDATED) == []
