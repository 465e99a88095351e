"""The 1 h and 1 d window aggregates of the CDC job, as pure Python over a station's reading rows.

A change to a reading touches its 1 h and 1 d windows, and the NowCast of the 11 hours after it
(each 1 h NowCast reads the hourly means of the 12 hours ending there). The job recomputes those
windows from the readings table, from the change's day and the days either side of it, so the
result is exact whatever happened before (re-deliveries, updates, deletes, replays).

Why plain Python and not a Spark plan: this step, as a Spark plan (two window groupings, the
NowCast's 24 range-frame windows, the AQI CASE trees, the comparison with the stored rows), ran
about 15 stages and 11-14 s for a batch of 50 changes on 2 cores, nearly all of it per-stage and
planning cost. The rows it needs are a few station-days (at most 1,440 readings each) per change,
which the driver reads in one keyed join and aggregates in milliseconds; the AQI and NowCast come
from the same pure functions the parity tests hold the Spark columns to.

A 1 h window is a UTC hour. A 1 d window is the station's local calendar day (what the EPA's daily AQI
and anyone reading a daily mean mean by a day): from one local midnight to the next in the station's
IANA zone (:func:`station_zones`: its newest reading's ``timezone``, else the registry's, else UTC), so
a day is 23 or 25 hours long where daylight saving time starts or ends. Its ``window_start`` and
``window_end`` are those midnights as UTC instants; the readings table stays partitioned by UTC day.

Times are naive UTC ``datetime`` values (the jobs read and write them as epoch microseconds, so no
local time zone is involved); a reading is a mapping with ``station_id``, ``ts`` and the pollutants.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from jobs.transforms import ozone
from jobs.transforms.aqi import (
    AQI_OUTPUT_COLUMNS,
    NOWCAST_HOURS,
    aqi_values,
    daily_aqi_values,
    nowcast,
    nowcast_aqi,
)
from jobs.transforms.local_time import local_day, local_instant
from jobs.transforms.stations import station_metadata
from schemas.cassandra import AGGREGATE_STATS, DAILY_COLUMNS, NOWCAST_COLUMNS, WINDOW_SIZES, window_bucket
from schemas.reading import POLLUTANT_FIELDS, known_zone, parse_event_id

UTC_ZONE = ZoneInfo("UTC")
HOUR = timedelta(hours=1)
NOWCAST_POLLUTANTS: tuple[str, ...] = ("pm25", "pm10")

# (station_id, window_size, window_start): a window (the table's key adds its bucket, a function of these)
WindowKey = tuple[str, str, datetime]
# (station_id, window_size, bucket): an aggregates partition, and the buckets table's key
BucketKey = tuple[str, str, str]
# station_id → its zone (a station missing from it: UTC)
Zones = Mapping[str, ZoneInfo]


def zone_named(name: str | None) -> ZoneInfo:
    """The zone ``name`` names; UTC for None, or for a name tzdata does not know (a collector sends no such
    name: schemas.reading.build_reading flags it instead)."""
    return ZoneInfo(name) if name and known_zone(name) else UTC_ZONE


def station_zones(
    stations: Iterable[str], readings: Iterable[Mapping[str, Any]], registry: Mapping[str, Mapping[str, Any]]
) -> dict[str, ZoneInfo]:
    """The zone of each of ``stations``: its newest reading's ``timezone`` among ``readings``, else the registry's
    (a station whose readings of those days were all deleted), else UTC."""
    metadata = station_metadata(readings)
    zones = {}
    for station in stations:
        name = metadata.get(station, {}).get("timezone") or (registry.get(station) or {}).get("timezone")
        zones[station] = zone_named(name)
    return zones


@lru_cache(maxsize=8192)  # a batch asks for the same few station-days for each of its readings
def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The instant (naive UTC) ``day`` begins in ``zone``: its first instant, also where midnight is skipped."""
    return local_instant(day, 0, zone)


def window_start(ts: datetime, size: str, zone: ZoneInfo = UTC_ZONE) -> datetime:
    """The start of the window of ``size`` holding ``ts``: its UTC hour, or the local midnight in ``zone`` that
    begins its local day."""
    if size == "1h":
        return ts.replace(minute=0, second=0, microsecond=0)
    return _day_start(ts, zone)


@lru_cache(maxsize=65536)  # the readings of a batch's stations share their instants
def _day_start(ts: datetime, zone: ZoneInfo) -> datetime:
    return _local_midnight(local_day(ts, zone), zone)


def window_end(start: datetime, size: str, zone: ZoneInfo = UTC_ZONE) -> datetime:
    """The end of the window that starts at ``start``: an hour later, or the next local midnight in ``zone``
    (23, 24 or 25 hours later)."""
    if size == "1h":
        return start + HOUR
    return _local_midnight(local_day(start, zone) + timedelta(days=1), zone)


def changed_readings(doc_ids: Iterable[str | None]) -> list[tuple[str, datetime]]:
    """(station_id, ts) of every reading the changed document ids name, once each, in order. An id
    that is no event id is passed over (the readings query quarantines its event); a change that
    did not apply only costs a recompute."""
    changed = set()
    for doc_id in doc_ids:
        try:
            parts = parse_event_id(doc_id or "")
        except ValueError:
            continue
        changed.add((parts.station_id, parts.ts.replace(tzinfo=None)))
    return sorted(changed)


def touched_windows(changes: Iterable[tuple[str, datetime]], zones: Zones) -> set[WindowKey]:
    """The 1 h and 1 d window of every changed reading ``(station_id, ts)``, and the day before when the change
    is early enough in its day to count in that day's maximum 8-hour ozone mean (until 07:00 local)."""
    windows = set()
    for station, ts in changes:
        zone = zones.get(station, UTC_ZONE)
        day = window_start(ts, "1d", zone)
        windows |= {(station, "1h", window_start(ts, "1h")), (station, "1d", day)}
        before = window_start(day - timedelta(microseconds=1), "1d", zone)
        if ts < ozone.reach_end(local_day(before, zone), zone):
            windows.add((station, "1d", before))
    return windows


def nowcast_followers(changes: Iterable[tuple[str, datetime]]) -> set[WindowKey]:
    """The 1 h windows of the 11 hours after each change's hour: their NowCast includes its hour."""
    return {
        (station, "1h", window_start(ts, "1h") + k * HOUR) for station, ts in changes for k in range(1, NOWCAST_HOURS)
    }


def windows_to_recompute(changes: Iterable[tuple[str, datetime]], zones: Zones) -> set[WindowKey]:
    changes = list(changes)
    return touched_windows(changes, zones) | nowcast_followers(changes)


def days_to_read(changes: Iterable[tuple[str, datetime]]) -> set[tuple[str, date]]:
    """(station_id, UTC day) partitions to read: each changed reading's UTC day and two either side. A NowCast
    reaches 11 hours back and a change the NowCast of 11 hours ahead; a 1 d window is a local day of up to 26
    hours, and its maximum 8-hour ozone mean reads until 07:00 local the next morning; a change before 07:00
    local also touches the day before (:func:`touched_windows`). Two UTC days either side hold all of it in
    any zone (tests/unit/test_local_days.py walks the hours of 2024 in the zones with the widest offsets and
    the odd shifts: Kiritimati, Pago Pago, Troll, Lord Howe, Santiago, London, Shanghai)."""
    one = timedelta(days=1)
    return {(station, ts.date() + k * one) for station, ts in changes for k in (-2, -1, 0, 1, 2)}


def _usable(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


class _Stats:
    """count / sum / min / max of each pollutant over one window's readings (nulls left out)."""

    __slots__ = ("count", "total", "low", "high")

    def __init__(self) -> None:
        self.count = dict.fromkeys(POLLUTANT_FIELDS, 0)
        self.total = dict.fromkeys(POLLUTANT_FIELDS, 0.0)
        self.low: dict[str, float] = {}
        self.high: dict[str, float] = {}

    def add(self, reading: Mapping[str, Any]) -> None:
        for p in POLLUTANT_FIELDS:
            value = reading.get(p)
            if not _usable(value):
                continue
            self.count[p] += 1
            self.total[p] += value
            self.low[p] = value if p not in self.low else min(self.low[p], value)
            self.high[p] = value if p not in self.high else max(self.high[p], value)

    def mean(self, p: str) -> float | None:
        return self.total[p] / self.count[p] if self.count[p] else None

    def columns(self) -> dict[str, Any]:
        values = {"count": self.count.get, "mean": self.mean, "min": self.low.get, "max": self.high.get}
        return {f"{p}_{stat}": values[stat](p) for p in POLLUTANT_FIELDS for stat, _ in AGGREGATE_STATS}


def window_rows(
    readings: Iterable[Mapping[str, Any]], windows: set[WindowKey], updated_at: datetime, zones: Zones
) -> list[dict[str, Any]]:
    """The aggregates-table rows of ``windows`` from ``readings`` (which must hold every reading of
    those windows and, for a 1 h window, of the 11 hours before it), each station's days in its zone
    of ``zones``. A window without a reading has no row: the caller deletes what the table still holds
    of it."""
    stats: dict[WindowKey, _Stats] = defaultdict(_Stats)
    for reading in readings:
        station = reading["station_id"]
        for size in WINDOW_SIZES:
            stats[(station, size, window_start(reading["ts"], size, zones.get(station, UTC_ZONE)))].add(reading)
    rows = []
    for key in sorted(windows & stats.keys()):
        station, size, start = key
        window = stats[key]
        row: dict[str, Any] = {
            "station_id": station,
            "window_size": size,
            "bucket": window_bucket(size, start),
            "window_start": start,
            "window_end": window_end(start, size, zones.get(station, UTC_ZONE)),
            **window.columns(),
        }
        means = {p: window.mean(p) for p in POLLUTANT_FIELDS}
        if size == "1d":
            zone = zones.get(station, UTC_ZONE)
            o3_8h_max = ozone.daily_max_8h(
                local_day(start, zone), zone, lambda hour, station=station: _o3_mean(stats, station, hour)
            )
            row.update(zip(AQI_OUTPUT_COLUMNS, daily_aqi_values(means, o3_8h_max), strict=True))
            row["o3_8h_max"] = o3_8h_max
        else:
            row.update(zip(AQI_OUTPUT_COLUMNS, aqi_values(means), strict=True))
            row.update(dict.fromkeys(name for name, _ in DAILY_COLUMNS))
        if size == "1h":
            nowcasts = {}
            for p in NOWCAST_POLLUTANTS:
                history = [stats.get((station, "1h", start - k * HOUR)) for k in range(NOWCAST_HOURS)]
                nowcasts[p] = nowcast([s.mean(p) if s is not None else None for s in history])
            row.update(
                pm25_nowcast=nowcasts["pm25"],
                pm10_nowcast=nowcasts["pm10"],
                aqi_us_nowcast=nowcast_aqi(nowcasts["pm25"], nowcasts["pm10"]),
            )
        else:
            row.update(dict.fromkeys(name for name, _ in NOWCAST_COLUMNS))
        row["updated_at"] = updated_at
        rows.append(row)
    return rows


def _o3_mean(stats: Mapping[WindowKey, _Stats], station: str, hour: datetime) -> float | None:
    window = stats.get((station, "1h", hour))
    return window.mean("o3") if window is not None else None


def buckets_of(windows: Iterable[WindowKey]) -> set[BucketKey]:
    """The aggregates partitions (and buckets-table rows) of ``windows``."""
    return {(station, size, window_bucket(size, start)) for station, size, start in windows}


def compared_columns() -> list[str]:
    """The columns whose change makes a recomputed row worth writing (all but the key and updated_at)."""
    stats = [f"{p}_{stat}" for p in POLLUTANT_FIELDS for stat, _ in AGGREGATE_STATS]
    return ["window_end", *stats, *AQI_OUTPUT_COLUMNS, *[name for name, _ in (*NOWCAST_COLUMNS, *DAILY_COLUMNS)]]


def _same(column: str, new: Any, old: Any, rel_tol: float) -> bool:
    if column.endswith(("_mean", "_nowcast", "_8h_max")) and new is not None and old is not None:
        # doubles from sums whose order can differ between runs
        return abs(new - old) <= rel_tol * max(1.0, abs(new))
    return new == old


def changed_rows(
    recomputed: list[dict[str, Any]], stored: Mapping[WindowKey, Mapping[str, Any]], rel_tol: float = 1e-9
) -> list[dict[str, Any]]:
    """The recomputed rows that are new or differ from the stored row of their key (means and
    NowCasts within ``rel_tol``). Writing only these makes a replay a no-op: rows and their
    ``updated_at`` stay as they are."""
    columns = compared_columns()
    changed = []
    for row in recomputed:
        old = stored.get((row["station_id"], row["window_size"], row["window_start"]))
        if old is None or not all(_same(c, row[c], old.get(c), rel_tol) for c in columns):
            changed.append(row)
    return changed


def emptied_windows(
    windows: set[WindowKey], recomputed: list[dict[str, Any]], stored: Mapping[WindowKey, Any]
) -> set[WindowKey]:
    """Stored windows of the recompute set that have no reading left (all deleted): to delete."""
    present = {(r["station_id"], r["window_size"], r["window_start"]) for r in recomputed}
    return {key for key in windows if key in stored and key not in present}
