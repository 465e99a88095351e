"""Cassandra rows as the API's JSON, and the latest alerts across stations merged from per-station reads. Pure."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from cassandra.util import Date, OrderedMapSerializedKey


def json_value(value: Any) -> Any:
    """A column's value as JSON: timestamps as ISO UTC with ``Z``, dates as ISO days, NaN as null."""
    if isinstance(value, datetime):
        return value.isoformat() + "Z"
    if isinstance(value, Date):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, OrderedMapSerializedKey | dict):
        return {k: json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return value


def json_row(row: Mapping[str, Any], drop: Iterable[str] = ()) -> dict[str, Any]:
    dropped = set(drop)
    return {column: json_value(value) for column, value in row.items() if column not in dropped}


def latest_alerts(per_station: Iterable[Iterable[Mapping[str, Any]]], limit: int) -> list[Mapping[str, Any]]:
    """The ``limit`` newest alerts of all stations, newest hour first, then by station and index (the
    order of ``alerts_by_day``), from each station's ``limit`` newest (each station's partition is read
    with LIMIT ``limit``, so no alert that belongs in the answer is left unread)."""
    merged = sorted(
        (alert for alerts in per_station for alert in alerts), key=lambda a: (a["station_id"], a["aqi_index"])
    )
    merged.sort(key=lambda a: a["hour"], reverse=True)  # stable: ties keep the station, index order
    return merged[:limit]
