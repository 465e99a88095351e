"""The 1 d aggregates are the station's local calendar day (issue 15): its zone, 23- and 25-hour days."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from jobs.transforms import aggregates as A
from jobs.transforms import ozone

pytestmark = pytest.mark.unit

UPDATED = datetime(2026, 1, 1)
BERLIN = ZoneInfo("Europe/Berlin")


def hourly(station: str, first: datetime, hours: int, timezone: str | None) -> list[dict]:
    """One reading per UTC hour from ``first`` (naive UTC), pm25 = its index."""
    return [
        {"station_id": station, "ts": first + timedelta(hours=k), "pm25": float(k), "timezone": timezone}
        for k in range(hours)
    ]


def daily_rows(readings: list[dict], zones: dict) -> list[dict]:
    windows = A.touched_windows(((r["station_id"], r["ts"]) for r in readings), zones)
    return [r for r in A.window_rows(readings, windows, UPDATED, zones) if r["window_size"] == "1d"]


def test_a_beijing_day_runs_from_local_midnight_16_00_utc_the_day_before():
    shanghai = ZoneInfo("Asia/Shanghai")  # UTC+8 all year
    assert A.window_start(datetime(2013, 3, 1, 16, 0), "1d", shanghai) == datetime(2013, 3, 1, 16, 0)
    assert A.window_start(datetime(2013, 3, 1, 15, 59), "1d", shanghai) == datetime(2013, 2, 28, 16, 0)
    assert A.window_end(datetime(2013, 3, 1, 16, 0), "1d", shanghai) == datetime(2013, 3, 2, 16, 0)
    # the 1 h windows stay UTC hours
    assert A.window_start(datetime(2013, 3, 1, 15, 59), "1h", shanghai) == datetime(2013, 3, 1, 15, 0)


def test_the_days_daylight_saving_time_starts_and_ends_are_23_and_25_hours_long():
    # Berlin: 2024-03-31 02:00 CET became 03:00 CEST; 2024-10-27 03:00 CEST became 02:00 CET
    spring = hourly("berlin-x", datetime(2024, 3, 29, 23), 24 + 23 + 24, "Europe/Berlin")  # local 30 Mar .. 1 Apr
    autumn = hourly("berlin-x", datetime(2024, 10, 25, 22), 24 + 25 + 24, "Europe/Berlin")  # local 26 .. 28 Oct
    zones = A.station_zones({"berlin-x"}, spring + autumn, {})
    assert zones == {"berlin-x": BERLIN}
    rows = {r["window_start"]: r for r in daily_rows(spring + autumn, zones)}
    # local midnights in UTC: CET is UTC+1, CEST UTC+2
    assert sorted(rows) == [
        datetime(2024, 3, 29, 23),
        datetime(2024, 3, 30, 23),  # 31 March: 23 hours
        datetime(2024, 3, 31, 22),
        datetime(2024, 10, 25, 22),
        datetime(2024, 10, 26, 22),  # 27 October: 25 hours
        datetime(2024, 10, 27, 23),
    ]
    lengths = {start.date(): rows[start]["window_end"] - start for start in rows}
    assert lengths[date(2024, 3, 30)] == timedelta(hours=23)
    assert lengths[date(2024, 10, 26)] == timedelta(hours=25)
    assert rows[datetime(2024, 3, 30, 23)]["pm25_count"] == 23
    assert rows[datetime(2024, 10, 26, 22)]["pm25_count"] == 25
    assert rows[datetime(2024, 3, 29, 23)]["pm25_count"] == 24
    # every reading in exactly one day
    assert sum(r["pm25_count"] for r in rows.values()) == len(spring) + len(autumn)


def test_a_stations_zone_is_its_newest_readings_else_the_registrys_else_utc():
    readings = [
        {"station_id": "a", "ts": datetime(2024, 1, 1, 0), "timezone": "Europe/Berlin"},
        {"station_id": "a", "ts": datetime(2024, 1, 1, 1), "timezone": "Asia/Shanghai"},
        {"station_id": "a", "ts": datetime(2024, 1, 1, 2), "timezone": None},
    ]
    registry = {"b": {"timezone": "America/Santiago"}, "a": {"timezone": "Europe/Paris"}}
    zones = A.station_zones({"a", "b", "c"}, readings, registry)
    assert zones == {"a": ZoneInfo("Asia/Shanghai"), "b": ZoneInfo("America/Santiago"), "c": A.UTC_ZONE}
    # a zone this Python does not know (not from a collector, which flags it) counts as UTC
    assert A.station_zones({"d"}, [{"station_id": "d", "ts": UPDATED, "timezone": "Mars/Olympus"}], {}) == {
        "d": A.UTC_ZONE
    }


@pytest.mark.parametrize(
    "zone",
    [
        "Asia/Shanghai",
        "Europe/London",
        "Pacific/Kiritimati",  # UTC+14
        "Pacific/Pago_Pago",  # UTC-11
        "America/Santiago",  # its clocks skip midnight
        "Antarctica/Troll",  # a two-hour shift: 22- and 26-hour days
        "Australia/Lord_Howe",  # a half-hour shift
    ],
)
def test_the_days_read_hold_every_utc_day_of_the_changed_readings_local_day(zone):
    """For every hour of a year with both daylight-saving changes: the local day of a change, found by stepping
    through the hours (not by the job's midnight arithmetic), lies in the UTC days the recompute reads, and
    the job's window of that hour is that day."""
    tz = ZoneInfo(zone)
    hours = [datetime(2024, 1, 1) + timedelta(hours=k) for k in range(366 * 24)]
    # every hour of the months daylight saving time changes in (either hemisphere), every fifth of the others
    changes = [i for i, h in enumerate(hours) if 30 <= i < len(hours) - 30 and (h.month in (3, 4, 9, 10) or i % 5 == 0)]
    day_of = {h: h.replace(tzinfo=ZoneInfo("UTC")).astimezone(tz).date() for h in hours}
    utc_days_of_local_day: dict[date, set[date]] = {}
    for h in hours:
        utc_days_of_local_day.setdefault(day_of[h], set()).add(h.date())
    for i in changes:
        h = hours[i]
        read = {day for _, day in A.days_to_read([("s", h)])}
        assert utc_days_of_local_day[day_of[h]] <= read, h
        # each day whose row the change touches, and the hours its maximum 8-hour ozone mean reads the next morning
        for _, size, first in A.touched_windows([("s", h)], {"s": tz}):
            if size == "1d":
                last = ozone.reach_end(A.local_day(first, tz), tz) - timedelta(hours=1)
                assert {x.date() for x in (first, last)} <= read, (h, first)
        start = A.window_start(h, "1d", tz)
        end = A.window_end(start, "1d", tz)
        near = hours[i - 30 : i + 30]  # a day is at most 26 hours long
        assert [x for x in near if start <= x < end] == [x for x in near if day_of[x] == day_of[h]], h
