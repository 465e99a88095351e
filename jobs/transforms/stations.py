"""The station registry (the ``stations`` table), as pure Python over reading rows.

Each batch of the CDC job reads the touched stations' readings anyway (to recompute their
windows); their metadata comes from there: per field, the value of the newest reading that has
one. A field the batch's readings leave empty keeps what the registry has (a reading without
coordinates does not erase them). Only rows that are new or differ are written, so a replay
writes nothing. A station whose readings are all deleted stays in the registry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from schemas.cassandra import STATIONS_REGISTRY

STATION_FIELDS: tuple[str, ...] = ("source", "station_name", "city", "country", "lat", "lon", "timezone")


def station_metadata(readings: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per station of ``readings``: each field's value in its newest reading that has one (else None)."""
    metadata: dict[str, dict[str, Any]] = {}
    newest: dict[tuple[str, str], datetime] = {}
    for reading in readings:
        station = reading["station_id"]
        fields = metadata.setdefault(station, dict.fromkeys(STATION_FIELDS))
        for field in STATION_FIELDS:
            value = reading.get(field)
            if value is None:
                continue
            seen = newest.get((station, field))
            if seen is None or reading["ts"] > seen:
                fields[field], newest[(station, field)] = value, reading["ts"]
    return metadata


def registry_rows(
    readings: Iterable[Mapping[str, Any]], stored: Mapping[str, Mapping[str, Any]], updated_at: datetime
) -> list[dict[str, Any]]:
    """The ``stations`` rows to write for the stations of ``readings``: those new to the registry
    (``stored``, by station_id) or whose metadata differs from it, in station order."""
    rows = []
    for station, fields in sorted(station_metadata(readings).items()):
        old = stored.get(station)
        merged = {f: fields[f] if fields[f] is not None or old is None else old.get(f) for f in STATION_FIELDS}
        if old is None or any(merged[f] != old.get(f) for f in STATION_FIELDS):
            rows.append({"registry": STATIONS_REGISTRY, "station_id": station, **merged, "updated_at": updated_at})
    return rows
