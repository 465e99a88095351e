"""Replay of recorded datasets (CSV, NDJSON) as canonical readings, paced like the original.

A mapping file per dataset (``conf/mappings/*.json``, :class:`DatasetMapping`) says which column
is which canonical field and in which unit, where the station and the time come from, and which
strings mean "missing". Datasets without a station or a time (the Kaggle set) get both assigned
from the row's position, so a replay of the same file always yields the same ``event_id``s:

    row i (0-based, data rows in file order) → station  <prefix>{i mod N:02d}
                                              → ts       start + (i div N) × step

``--dataset ndjson`` replays canonical readings (the collectors' own ``--out`` files) as they are.

Pacing: ``speed=None`` sends as fast as possible; ``speed=k`` keeps the gaps between event
times divided by k (1 = real time). Several files are merged in event-time order.
``restamp`` shifts every event of a pass by one offset so the pass's latest event is "now"
(spacing kept, nothing in the future, new ``event_id``s); without it event times are kept.

A station the station column names but the mapping's ``coordinates`` do not list is **kept and
flagged**: its readings carry ``station:unknown`` in ``flags`` and null ``lat``/``lon`` (a reading is
not wrong for lacking a position, and refusing would lose it), and each such station is logged once
per file. Round-robin stations (the Kaggle set) are assigned by the mapping itself, so never unknown.
"""

from __future__ import annotations

import csv
import heapq
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from collectors.values import CleanValues, to_canonical_number, to_number
from schemas.reading import (
    POLLUTANT_FIELDS,
    WEATHER_FIELDS,
    build_reading,
    known_zone,
    make_event_id,
    reading_from_json_dict,
    reading_to_json_dict,
    slugify,
)

log = logging.getLogger("collectors.replay")

UNKNOWN_STATION_FLAG = "station:unknown"  # a named station with no entry in the mapping's coordinates

COMPASS_DEGREES = {
    point: i * 22.5
    for i, point in enumerate(
        ["N", "NNE", "NE", "ENE", "E", "ESE", "SE", "SSE", "S", "SSW", "SW", "WSW", "W", "WNW", "NW", "NNW"]
    )
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnRule(_Strict):
    field: str | None = None  # a canonical pollutant or weather field
    extra: str | None = None  # or a key of `extra`
    unit: str | None = None  # pollutant unit; converted to µg/m³
    compass: bool = False  # compass point (N, NNE, …) → degrees

    @model_validator(mode="after")
    def _one_target(self) -> ColumnRule:
        if (self.field is None) == (self.extra is None):
            raise ValueError("a column maps to exactly one of `field` or `extra`")
        if self.field is not None and self.field not in (*POLLUTANT_FIELDS, *WEATHER_FIELDS):
            raise ValueError(f"{self.field!r} is not a canonical value field")
        if self.field in POLLUTANT_FIELDS and not self.unit:
            raise ValueError(f"pollutant {self.field!r} needs its `unit`")
        return self


class StationRule(_Strict):
    prefix: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    column: str | None = None  # the column naming the station
    round_robin: int | None = Field(default=None, ge=1)  # no station column: N assigned stations
    name_template: str = "{name}"
    coordinates: dict[str, tuple[float, float]] = {}  # station name → (lat, lon)

    @model_validator(mode="after")
    def _one_way(self) -> StationRule:
        if (self.column is None) == (self.round_robin is None):
            raise ValueError("station: give exactly one of `column` or `round_robin`")
        return self


class TimeRule(_Strict):
    parts: dict[str, str] | None = None  # year/month/day/hour[/minute] → column
    timezone: str = "UTC"  # zone of `parts`
    start: datetime | None = None  # no time column: the first row's time
    step_seconds: int = Field(default=3600, ge=1)

    @model_validator(mode="after")
    def _one_way(self) -> TimeRule:
        if (self.parts is None) == (self.start is None):
            raise ValueError("time: give exactly one of `parts` or `start`")
        if self.start is not None and self.start.tzinfo is None:
            raise ValueError("time.start needs a zone, e.g. 2024-01-01T00:00:00Z")
        return self


class DatasetMapping(_Strict):
    dataset: str
    source: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    format: Literal["csv"] = "csv"
    doc: str = ""
    city: str | None = None
    country: str | None = None
    # the stations' IANA zone: their local day bounds the 1 d aggregates (none: UTC days)
    timezone: str | None = None
    na_values: list[str] = ["NA", ""]
    station: StationRule
    time: TimeRule
    columns: dict[str, ColumnRule]

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None and not known_zone(value):
            raise ValueError(f"{value!r} is no IANA time zone this Python knows (e.g. 'Asia/Shanghai')")
        return value


def load_mapping(path: Path) -> DatasetMapping:
    return DatasetMapping.model_validate(json.loads(Path(path).read_text()))


# --- rows → readings ---------------------------------------------------------------------


def read_csv_rows(path: Path) -> Iterator[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        yield from csv.DictReader(handle)


def row_time(mapping: DatasetMapping, row: dict[str, str], index: int) -> datetime:
    rule = mapping.time
    if rule.start is not None:
        n = mapping.station.round_robin or 1
        return (rule.start + timedelta(seconds=rule.step_seconds * (index // n))).astimezone(UTC)
    parts = {name: int(row[column]) for name, column in (rule.parts or {}).items()}
    local = datetime(parts["year"], parts["month"], parts["day"], parts.get("hour", 0), parts.get("minute", 0))
    return local.replace(tzinfo=ZoneInfo(rule.timezone)).astimezone(UTC)


def row_station(
    mapping: DatasetMapping, row: dict[str, str], index: int
) -> tuple[str, str, tuple[float, float] | None]:
    """(station_id, station name, coordinates or None)."""
    rule = mapping.station
    if rule.round_robin is not None:
        n = index % rule.round_robin
        name = rule.name_template.format(name=f"{n:02d}", n=n)
        return f"{rule.prefix}{n:02d}", name, rule.coordinates.get(name)
    name = row[rule.column or ""].strip()
    return f"{rule.prefix}{slugify(name)}", rule.name_template.format(name=name), rule.coordinates.get(name)


def reading_from_row(
    mapping: DatasetMapping, row: dict[str, str], index: int, *, ingested_at: datetime, ts: datetime | None = None
) -> dict[str, Any]:
    na = frozenset(v.strip().lower() for v in mapping.na_values)
    clean = CleanValues()
    for column, rule in mapping.columns.items():
        value = row.get(column)
        if rule.compass:
            text = (value or "").strip()
            number = COMPASS_DEGREES.get(text.upper())
            if number is None and text.lower() not in na:
                clean.flag(rule.extra or rule.field or column, "non_numeric")
        elif rule.field in POLLUTANT_FIELDS:
            number = None if (value or "").strip().lower() in na else value
            number = to_canonical_number(rule.field, number, rule.unit or "", clean)
        else:
            number = to_number(value, rule.field or rule.extra or column, clean, na)
        if rule.field:
            clean.values[rule.field] = number
        elif number is not None:
            clean.extra[rule.extra or column] = number
    station_id, station_name, coordinates = row_station(mapping, row, index)
    lat, lon = coordinates if coordinates else (None, None)
    if mapping.station.column is not None and coordinates is None:
        clean.flags.append(UNKNOWN_STATION_FLAG)
    return build_reading(
        source=mapping.source,
        station_id=station_id,
        station_name=station_name,
        city=mapping.city,
        country=mapping.country,
        lat=lat,
        lon=lon,
        timezone=mapping.timezone,
        ts=ts or row_time(mapping, row, index),
        ingested_at=ingested_at,
        values=clean.values,
        extra=clean.extra,
        flags=clean.flags,
        raw={"_row": index, **row},
    )


# --- event streams -----------------------------------------------------------------------

# (event time, tie-breaker, build(ts) → reading)
Event = tuple[datetime, tuple[int, int], Callable[[datetime], dict[str, Any]]]


def _csv_events(mapping: DatasetMapping, path: Path, file_no: int, now: Callable[[], datetime]) -> Iterator[Event]:
    for index, row in enumerate(read_csv_rows(path)):
        yield (
            row_time(mapping, row, index),
            (file_no, index),
            lambda ts, row=row, index=index: reading_from_row(mapping, row, index, ingested_at=now(), ts=ts),
        )


def _ndjson_events(path: Path, file_no: int, now: Callable[[], datetime]) -> Iterator[Event]:
    with open(path, encoding="utf-8") as handle:
        for index, line in enumerate(handle):
            if not line.strip():
                continue
            message = json.loads(line)
            original = reading_from_json_dict(message)

            def build(ts: datetime, message=message, original=original) -> dict[str, Any]:
                out = dict(message, ts=ts, ingested_at=now(), sent_at=None)
                out["event_id"] = make_event_id(original["source"], original["station_id"], ts)
                return reading_to_json_dict(out)

            yield original["ts"], (file_no, index), build


def events(files: list[Path], mapping: DatasetMapping | None, now: Callable[[], datetime]) -> Iterator[Event]:
    """All files' events merged in event-time order (each file is in time order)."""
    streams: list[Iterable[Event]] = []
    for file_no, path in enumerate(files):
        if mapping is None:
            streams.append(_ndjson_events(path, file_no, now))
        else:
            streams.append(_csv_events(mapping, path, file_no, now))
    return heapq.merge(*streams, key=lambda e: (e[0], e[1]))


class Pacer:
    """Waits so that event-time gaps become wall-clock gaps divided by ``speed`` (None = no wait)."""

    def __init__(self, speed: float | None, stop: threading.Event, clock: Callable[[], float] = time.monotonic):
        self.speed, self.stop, self.clock = speed, stop, clock
        self._origin: tuple[float, datetime] | None = None

    def wait_for(self, ts: datetime) -> None:
        if self.speed is None:
            return
        if self._origin is None:
            self._origin = (self.clock(), ts)
            return
        wall0, ts0 = self._origin
        due = wall0 + (ts - ts0).total_seconds() / self.speed
        delay = due - self.clock()
        if delay > 0:
            self.stop.wait(delay)


def replay(
    files: list[Path],
    mapping: DatasetMapping | None,
    emit: Callable[[dict[str, Any]], None],
    *,
    speed: float | None = None,
    limit: int | None = None,
    loop: bool = False,
    restamp: bool = False,
    stop: threading.Event | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """Emit the readings of ``files`` (one pass, or passes until ``stop`` with ``loop``); returns the count."""
    stop = stop or threading.Event()
    sent = 0
    warned: set[tuple[int, str]] = set()  # (file, station) already logged as unknown
    for _pass in itertools.count():
        offset = timedelta(0)
        if restamp:
            times = [ts for ts, *_ in itertools.islice(events(files, mapping, now), limit)]
            if not times:
                return sent
            offset = now().replace(microsecond=0) - max(times)
        pacer = Pacer(speed, stop)
        for ts, (file_no, _), build in itertools.islice(events(files, mapping, now), limit):
            if stop.is_set():
                return sent
            pacer.wait_for(ts)
            if stop.is_set():
                return sent
            reading = build(ts + offset)
            unknown = mapping is not None and UNKNOWN_STATION_FLAG in reading["flags"]  # NDJSON: flagged earlier
            if unknown and (file_no, reading["station_id"]) not in warned:
                warned.add((file_no, reading["station_id"]))
                log.warning(
                    "replay %s: station %r is not in the mapping's coordinates: its readings are sent with null"
                    " lat/lon, flagged %s",
                    files[file_no],
                    reading["station_name"],
                    UNKNOWN_STATION_FLAG,
                )
            emit(reading)
            sent += 1
        if not loop or stop.is_set():
            return sent
    return sent
