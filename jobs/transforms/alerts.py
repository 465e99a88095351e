"""AQI alerts, as pure Python over the 1 h aggregate rows of the CDC job (``aggregates.window_rows``).

An alert marks an hour whose category differs from the hour before it, per index:

- ``us``: the US EPA category of the hour's NowCast AQI (``aqi_us_nowcast``); its ``aqi`` is that
  NowCast AQI and its ``pollutant`` the PM whose NowCast gives the larger index (PM2.5 on a tie);
- ``eea``: the EEA band of the hour's means (``eaqi_band``); its ``aqi`` is the EAQI level (1-6)
  and its ``pollutant`` the row's ``eaqi_dominant``.

Hour H is compared with hour H-1 only. Without a row for H-1 (no reading in that hour), or without
a category on either side (a NowCast needs 2 of the 3 latest hours; a row may have no pollutant
of the index), there is nothing to compare with and no alert: the alert at H depends on the rows
of H and H-1 and nothing else, so the job knows exactly which alerts a change can move.

An alert's key is (station_id, aqi_index, hour). The job recomputes the alerts of the hours a batch
can have changed and compares them with the stored ones (:func:`alert_changes`): a key new to the
store is *raised*, a stored key whose fields differ is *corrected*, a stored key whose hour no longer
has a change is *retracted*; a key with the same fields is nothing, so a replay emits nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jobs.transforms.aggregates import WindowKey
from jobs.transforms.aqi import us_aqi, us_category
from schemas.cassandra import ALERT_INDEXES

US, EEA = ALERT_INDEXES
RAISED, CORRECTED, RETRACTED = "raised", "corrected", "retracted"
STATUSES: tuple[str, ...] = (RAISED, CORRECTED, RETRACTED)
HOUR = timedelta(hours=1)
# what an alert says besides its key: a stored alert with other values is corrected
COMPARED: tuple[str, ...] = ("previous_category", "category", "aqi", "pollutant")

# (station_id, aqi_index, hour): an alert's key, in Cassandra and (as text) in Kafka
AlertKey = tuple[str, str, datetime]
StationHour = tuple[str, datetime]


@dataclass(frozen=True)
class HourLevel:
    """Where an hour stands on one index."""

    category: str
    aqi: int
    pollutant: str | None


def hour_level(row: Mapping[str, Any], index: str) -> HourLevel | None:
    """The category, AQI and driving pollutant of a 1 h aggregate row on ``index``; None without a category."""
    if index == US:
        aqi = row["aqi_us_nowcast"]
        if aqi is None:
            return None
        pm25, pm10 = (us_aqi(p, row[f"{p}_nowcast"], "24h") for p in ("pm25", "pm10"))
        pollutant = "pm25" if pm25 is not None and (pm10 is None or pm25 >= pm10) else "pm10"
        return HourLevel(us_category(aqi), aqi, pollutant)
    if index == EEA:
        band = row["eaqi_band"]
        return None if band is None else HourLevel(band, row["eaqi"], row["eaqi_dominant"])
    raise ValueError(f"unknown AQI index {index!r} (known: {', '.join(ALERT_INDEXES)})")


def alert_hours(windows: Iterable[WindowKey]) -> set[StationHour]:
    """The hours whose alert a recompute of ``windows`` can change: each recomputed 1 h window (its
    own row) and the hour after it (whose previous hour it is)."""
    return {(station, start + k * HOUR) for station, size, start in windows if size == "1h" for k in (0, 1)}


def comparison_windows(hours: Iterable[StationHour]) -> set[WindowKey]:
    """The 1 h windows the alerts of ``hours`` are computed from: each hour and the hour before it."""
    return {(station, "1h", hour - k * HOUR) for station, hour in hours for k in (0, 1)}


def alert_keys(hours: Iterable[StationHour]) -> set[AlertKey]:
    """Every key an alert of ``hours`` can have (the stored alerts to read)."""
    return {(station, index, hour) for station, hour in hours for index in ALERT_INDEXES}


def hourly_alerts(rows: Iterable[Mapping[str, Any]], hours: Iterable[StationHour]) -> dict[AlertKey, dict[str, Any]]:
    """The alerts of ``hours`` from aggregate rows that hold each hour's 1 h row and its previous hour's."""
    hourly = {(r["station_id"], r["window_start"]): r for r in rows if r["window_size"] == "1h"}
    alerts: dict[AlertKey, dict[str, Any]] = {}
    for station, hour in sorted(set(hours)):
        now, before = hourly.get((station, hour)), hourly.get((station, hour - HOUR))
        if now is None or before is None:
            continue
        for index in ALERT_INDEXES:
            current, previous = hour_level(now, index), hour_level(before, index)
            if current is None or previous is None or current.category == previous.category:
                continue
            alerts[(station, index, hour)] = {
                "station_id": station,
                "hour": hour,
                "aqi_index": index,
                "previous_category": previous.category,
                "category": current.category,
                "aqi": current.aqi,
                "pollutant": current.pollutant,
            }
    return alerts


def alert_changes(
    current: Mapping[AlertKey, Mapping[str, Any]], stored: Mapping[AlertKey, Mapping[str, Any]]
) -> list[tuple[str, dict[str, Any]]]:
    """(status, alert) of every key whose alert differs between ``current`` (recomputed) and ``stored``
    (the table's rows of the same hours), in key order: raised and corrected carry the new alert,
    retracted the stored one. Equal alerts give nothing: a replay changes nothing."""
    changes = []
    for key in sorted(current.keys() | stored.keys()):
        new, old = current.get(key), stored.get(key)
        if old is None:
            changes.append((RAISED, dict(new)))
        elif new is None:
            changes.append((RETRACTED, dict(old)))
        elif any(new[c] != old[c] for c in COMPARED):
            changes.append((CORRECTED, dict(new)))
    return changes


def iso_hour(hour: datetime) -> str:
    """A naive UTC hour as ISO 8601 text with its zone: ``2013-03-02T09:00:00Z``."""
    return hour.strftime("%Y-%m-%dT%H:%M:%SZ")


def record_key(key: AlertKey) -> str:
    """The Kafka key of an alert: ``station_id|aqi_index|hour`` (compaction keeps one record per alert)."""
    station, index, hour = key
    return f"{station}|{index}|{iso_hour(hour)}"


def alert_record(status: str, alert: Mapping[str, Any]) -> tuple[str, bytes]:
    """The Kafka record of an alert change: its key and a JSON value with the alert's fields and
    ``status``. No wall-clock time in it: a record sent again after a crash is the same bytes."""
    value = {
        "station_id": alert["station_id"],
        "aqi_index": alert["aqi_index"],
        "hour": iso_hour(alert["hour"]),
        **{c: alert[c] for c in COMPARED},
        "status": status,
    }
    key = (alert["station_id"], alert["aqi_index"], alert["hour"])
    return record_key(key), json.dumps(value, sort_keys=True, ensure_ascii=False).encode()


def by_day_row(alert: Mapping[str, Any]) -> dict[str, Any]:
    """An alert as its ``alerts_by_day`` row: the UTC day of its hour added."""
    return {**alert, "day": alert["hour"].date()}
