"""OpenAQ v3 → canonical readings: one reading per station and measurement time.

**What a row says, by endpoint.** Latest values: ``/locations/{id}/latest`` and
``/parameters/{id}/latest`` rows carry ``datetime``, ``value``, ``coordinates``, ``sensorsId`` and
``locationsId``; ``/locations/{id}/sensors`` rows carry a ``latest`` block (and their parameter).
History (the ``backfill`` command): ``/sensors/{id}/measurements`` (the values as reported),
``/hours`` and ``/days`` rows carry ``value``, ``parameter``, ``period`` (label, interval,
``datetimeFrom``/``datetimeTo``), ``coordinates`` (null unless mobile), ``summary``, ``coverage``
and ``flagInfo``; they name neither their sensor nor its location.

**Where it was measured.** The location that owns the sensor: a ``/locations`` record (its sensors
with parameter and unit) or, failing that, a latest row's own ``locationsId`` and ``coordinates``.
A row's own coordinates win over the location's (mobile monitoring). A row whose sensor no known
location owns is counted ``unknown_location``; a latest row whose parameter nothing names (a
``/parameters/{id}/latest`` row of a sensor no ``/locations`` record lists, read without the
``/parameters/{id}`` record) is counted ``unknown_parameter``.

**When (the reading's ``ts``).** The instant OpenAQ itself files the value under. A raw or hourly
value is stored at its period's end (``datetimeTo``; ``/latest`` serves that same instant as its
``datetime``), so a backfilled hour and the live value of that hour are one reading (one event
id). A daily value is filed under its local date: ``ts`` is the local midnight that starts it
(``datetimeFrom``), and it goes to the location's companion station ``openaq-<id>-days`` so a
daily mean never lands in the hourly series (nor collides with the hour ending at midnight).

Coverage and summary go to ``extra`` (``<parameter>_coverage_pct``, ``_observed_count``,
``_expected_count``, ``_min``, ``_max``; summary values in the source's unit); a value OpenAQ
flagged gets ``<field>:source_flagged``. The same pollutant arrives in different units from
different sensors (CO in ppm or µg/m³): each value is converted with its own unit. ``-9999`` is a
sentinel (null, flagged). The API key comes from the environment and goes only into the
``X-API-Key`` header.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import requests

from collectors.httpclient import HttpClient, HttpError
from collectors.values import CleanValues, to_canonical_number, to_number
from jobs.redact import redact_url
from schemas.reading import POLLUTANT_FIELDS, build_reading
from schemas.units import unit_slug

log = logging.getLogger("collectors.openaq")

SOURCE = "openaq"
API_URL = "https://api.openaq.org/v3"
API_KEY_ENV = "OPENAQ_API_KEY"
PAGE_LIMIT = 1000
BACKFILL_ENDPOINTS = ("measurements", "hours", "days")
DAILY_STATION_SUFFIX = "-days"

# OpenAQ parameter name → canonical weather field, with the unit conversion to °C / %
WEATHER_PARAMETERS = {"temperature": "temperature", "relativehumidity": "humidity"}

# period.label of the rows the backfill reads: filed at their end (raw, hourly) or by their local date
_AT_PERIOD_END = frozenset({"raw", "1hour"})
_DAILY = "1day"

# why a record did not become (part of) a reading; each is counted and logged
DROP_REASONS = {
    "unknown_location": "no known location owns the row's sensor",
    "unknown_parameter": "nothing names the parameter of the row's sensor",
    "outside_requested_range": "the row's time is outside --datetime-from/--datetime-to",
    "unsupported_period": "the row aggregates a period the collector does not read (months, years, ...)",
    "unknown_shape": "the row lacks the fields of its endpoint (time, sensor id, period)",
}

HINTS = {
    401: f"OpenAQ rejected the API key: set {API_KEY_ENV} to a valid key (https://explore.openaq.org/register)",
    403: f"OpenAQ refused the API key for this resource: check {API_KEY_ENV} and the key's permissions",
    404: "OpenAQ has no such location, sensor or parameter: check --location-ids, --sensor, --parameter",
    422: "OpenAQ refused a parameter: check --country (ISO code, e.g. VN), --bbox (minlon,minlat,maxlon,maxlat),"
    " --datetime-from/--datetime-to (from before to)",
}


def parse_utc(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def station_id(location_id: int | str) -> str:
    return f"{SOURCE}-{location_id}"


# --- locations and sensors -------------------------------------------------------------------


@dataclass(frozen=True)
class Location:
    """A location as far as it is known: from a ``/locations`` record, or only id and coordinates."""

    id: int
    record: Mapping[str, Any] = field(default_factory=dict, compare=False)  # the source fields, for ``raw``

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Location:
        keep = ("id", "name", "locality", "timezone", "country", "coordinates")
        return cls(int(record["id"]), {k: record.get(k) for k in keep})

    @classmethod
    def from_latest_row(cls, row: Mapping[str, Any]) -> Location:
        return cls(int(row["locationsId"]), {"id": int(row["locationsId"]), "coordinates": row.get("coordinates")})

    @property
    def coordinates(self) -> Mapping[str, Any]:
        return self.record.get("coordinates") or {}


@dataclass(frozen=True)
class Sensor:
    location: Location
    parameter: Mapping[str, Any]  # {name, units}; empty when only a latest row told us the location


def sensor_index(
    locations: Iterable[Mapping[str, Any]], latest_rows: Iterable[Mapping[str, Any]] = ()
) -> dict[int, Sensor]:
    """Sensor id → the location that owns it: ``/locations`` records first, then latest rows' ``locationsId``."""
    index: dict[int, Sensor] = {}
    for record in locations:
        location = Location.from_record(record)
        for sensor in record.get("sensors") or []:
            index[int(sensor["id"])] = Sensor(location, sensor.get("parameter") or {})
    for row in latest_rows:
        if "sensorsId" in row and "locationsId" in row:
            index.setdefault(int(row["sensorsId"]), Sensor(Location.from_latest_row(row), {}))
    return index


# --- records not read ------------------------------------------------------------------------


@dataclass
class Drops:
    """Records not read: counted by reason, and logged (a warning per response and reason with the
    count and a few examples; every record at debug level)."""

    counts: Counter[str] = field(default_factory=Counter)
    _examples: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list), init=False)

    def add(self, reason: str, origin: str, detail: str) -> None:
        assert reason in DROP_REASONS, reason
        self.counts[reason] += 1
        self._examples[(origin, reason)].append(detail)
        log.debug("openaq %s: not read (%s): %s", origin, reason, detail)

    def log_warnings(self) -> None:
        for (origin, reason), details in self._examples.items():
            shown = "; ".join(details[:3]) + (f"; ... {len(details) - 3} more" if len(details) > 3 else "")
            log.warning(
                "openaq %s: %d record(s) not read, %s (%s): %s",
                origin, len(details), reason, DROP_REASONS[reason], shown,
            )  # fmt: skip
        self._examples.clear()


# --- rows → observations ---------------------------------------------------------------------


@dataclass(frozen=True)
class Observation:
    """One sensor's value at one time, placed: what a reading is built from."""

    station_id: str
    daily: bool
    location: Location
    sensor_id: int
    parameter: Mapping[str, Any]
    ts: datetime
    value: Any
    row: Mapping[str, Any]  # as received, for ``raw``
    coordinates: Mapping[str, Any]  # the row's own (mobile), else the location's
    extra: Mapping[str, float] = field(default_factory=dict)
    source_flagged: bool = False
    origin: str = ""


def _coordinates(row: Mapping[str, Any], location: Location) -> Mapping[str, Any]:
    own = row.get("coordinates") or {}
    return own if own.get("latitude") is not None and own.get("longitude") is not None else location.coordinates


def observations_from_latest(
    rows: Iterable[Mapping[str, Any]],
    sensors: Mapping[int, Sensor],
    drops: Drops,
    *,
    parameter: Mapping[str, Any] | None = None,
    origin: str = "latest",
) -> list[Observation]:
    """Observations from latest rows (``sensorsId`` rows, or ``/sensors`` rows with a ``latest`` block).

    ``parameter`` (a ``/parameters/{id}`` record) names what ``/parameters/{id}/latest`` rows measure.
    """
    out = []
    for row in rows:
        if "sensorsId" in row:
            sensor_id, measurement, own_parameter = int(row["sensorsId"]), row, None
        elif isinstance(row.get("latest"), dict) and "id" in row:
            sensor_id, measurement, own_parameter = int(row["id"]), row["latest"], row.get("parameter")
        else:
            drops.add("unknown_shape", origin, f"no sensorsId nor latest block in {sorted(row)[:6]}")
            continue
        when = (measurement.get("datetime") or {}).get("utc")
        if not when:
            drops.add("unknown_shape", origin, f"sensor {sensor_id}: no datetime.utc")
            continue
        sensor = sensors.get(sensor_id)
        location = sensor.location if sensor else Location.from_latest_row(row) if "locationsId" in row else None
        if location is None:
            drops.add("unknown_location", origin, f"sensor {sensor_id} at {when}")
            continue
        named = (sensor.parameter if sensor else None) or own_parameter or parameter
        if not named:
            drops.add("unknown_parameter", origin, f"sensor {sensor_id} at {when} (give --parameter ID)")
            continue
        out.append(
            Observation(
                station_id=station_id(location.id),
                daily=False,
                location=location,
                sensor_id=sensor_id,
                parameter=named,
                ts=parse_utc(when),
                value=measurement.get("value"),
                row=measurement,
                coordinates=_coordinates(measurement, location),
                origin=origin,
            )
        )
    return out


@dataclass(frozen=True)
class Window:
    """The requested time range, as the API applies it: ``datetime_from < period end <= datetime_to``
    for raw and hourly rows; for daily rows ``date_from <= local date <= date_to`` (the UTC dates)."""

    start: datetime
    end: datetime

    def holds(self, ts: datetime, daily: bool, local_date: date | None) -> bool:
        if daily:
            return local_date is not None and self.start.date() <= local_date <= self.end.date()
        return self.start < ts <= self.end


def _period_extra(name: str, row: Mapping[str, Any]) -> dict[str, float]:
    coverage = row.get("coverage") or {}
    summary = row.get("summary") or {}
    picked = {
        "coverage_pct": coverage.get("percentComplete"),
        "observed_count": coverage.get("observedCount"),
        "expected_count": coverage.get("expectedCount"),
        "min": summary.get("min"),
        "max": summary.get("max"),
    }
    return {
        f"{name}_{key}": float(value)
        for key, value in picked.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def observations_from_periods(
    rows: Iterable[Mapping[str, Any]],
    sensor_id: int,
    sensors: Mapping[int, Sensor],
    drops: Drops,
    *,
    window: Window | None = None,
    origin: str = "",
) -> list[Observation]:
    """Observations from ``/sensors/{sensor_id}/measurements|hours|days`` rows (see the module doc)."""
    out = []
    sensor = sensors.get(sensor_id)
    for row in rows:
        period = row.get("period") if isinstance(row.get("period"), dict) else {}
        start = (period.get("datetimeFrom") or {}).get("utc")
        end = (period.get("datetimeTo") or {}).get("utc")
        if not (start and end):
            drops.add("unknown_shape", origin, f"sensor {sensor_id}: a row without period.datetimeFrom/To")
            continue
        if sensor is None:
            drops.add("unknown_location", origin, f"sensor {sensor_id}, period ending {end}")
            continue
        label = period.get("label")
        if label not in _AT_PERIOD_END and label != _DAILY:
            drops.add("unsupported_period", origin, f"sensor {sensor_id}: period {label!r} ending {end}")
            continue
        daily = label == _DAILY
        ts = parse_utc(start if daily else end)
        local_start = (period.get("datetimeFrom") or {}).get("local")
        local_date = datetime.fromisoformat(local_start).date() if local_start else None
        if window is not None and not window.holds(ts, daily, local_date):
            drops.add("outside_requested_range", origin, f"sensor {sensor_id}, period {start} to {end}")
            continue
        parameter = row.get("parameter") or sensor.parameter
        name = str(parameter.get("name") or "").lower()
        location = sensor.location
        out.append(
            Observation(
                station_id=station_id(location.id) + (DAILY_STATION_SUFFIX if daily else ""),
                daily=daily,
                location=location,
                sensor_id=sensor_id,
                parameter=parameter,
                ts=ts,
                value=row.get("value"),
                row=row,
                coordinates=_coordinates(row, location),
                extra=_period_extra(_field_name(name), row),
                source_flagged=bool((row.get("flagInfo") or {}).get("hasFlags")),
                origin=origin,
            )
        )
    return out


# --- observations → readings -----------------------------------------------------------------


def _temperature_c(value: float | None, unit: str) -> float | None:
    if value is None:
        return None
    return (value - 32.0) * 5.0 / 9.0 if unit.strip().lower() in ("f", "°f") else value


def _field_name(parameter_name: str) -> str:
    return WEATHER_PARAMETERS.get(parameter_name, parameter_name)


def _put_value(clean: CleanValues, parameter: Mapping[str, Any], value: Any) -> None:
    """One sensor's value into the reading: a pollutant in µg/m³, a weather field, or ``extra``."""
    name = str(parameter.get("name") or "").lower()
    unit = str(parameter.get("units") or "")
    if name in POLLUTANT_FIELDS:
        if clean.values.get(name) is not None:
            clean.flag(name, "duplicate_sensor")  # first sensor wins; the other is in raw
            return
        clean.values[name] = to_canonical_number(name, value, unit, clean)
    elif name in WEATHER_PARAMETERS:
        weather = WEATHER_PARAMETERS[name]
        number = to_number(value, weather, clean)
        clean.values[weather] = _temperature_c(number, unit) if weather == "temperature" else number
    else:
        key = f"{name}_{unit_slug(unit)}" if unit_slug(unit) else name
        number = to_number(value, key, clean)
        if number is not None:
            clean.extra[key] = number


def readings_from_observations(observations: Iterable[Observation], *, ingested_at: datetime) -> list[dict[str, Any]]:
    """One reading per station and time (all its sensors' values), ordered by location, station, time."""
    groups: dict[tuple[str, datetime], list[Observation]] = defaultdict(list)
    for observation in observations:
        groups[(observation.station_id, observation.ts)].append(observation)
    readings = []
    for (station, ts), items in sorted(groups.items(), key=lambda kv: (kv[1][0].location.id, kv[0])):
        first = items[0]
        location = first.location.record
        clean = CleanValues()
        for item in items:
            _put_value(clean, item.parameter, item.value)
            clean.extra.update(item.extra)
            if item.source_flagged:
                clean.flag(_field_name(str(item.parameter.get("name") or "").lower()), "source_flagged")
        name = location.get("name")
        raw = {
            "location": dict(location),
            "measurements": [{"sensorsId": i.sensor_id, "parameter": dict(i.parameter), **i.row} for i in items],
        }
        readings.append(
            build_reading(
                source=SOURCE,
                station_id=station,
                station_name=f"{name} (daily means)" if name and first.daily else name,
                city=location.get("locality"),
                country=(location.get("country") or {}).get("code"),
                lat=first.coordinates.get("latitude"),
                lon=first.coordinates.get("longitude"),
                timezone=location.get("timezone"),
                ts=ts,
                ingested_at=ingested_at,
                values=clean.values,
                extra=clean.extra,
                flags=clean.flags,
                raw=raw,
            )
        )
    return readings


def readings_from_latest(
    locations: list[dict[str, Any]],
    latest_rows: list[dict[str, Any]],
    *,
    ingested_at: datetime,
    parameter: Mapping[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """(readings from location records and latest rows; the rows not read, counted by reason)."""
    drops = Drops()
    observations = observations_from_latest(
        latest_rows, sensor_index(locations), drops, parameter=parameter, origin="latest"
    )
    drops.log_warnings()
    return readings_from_observations(observations, ingested_at=ingested_at), dict(drops.counts)


# --- recorded responses (replay) ---------------------------------------------------------------


@dataclass
class RecordedRows:
    """The rows of recorded responses, sorted by what they are."""

    locations: list[dict[str, Any]] = field(default_factory=list)  # /locations
    latest: list[dict[str, Any]] = field(default_factory=list)  # /locations|parameters/{id}/latest, /sensors
    parameters: list[dict[str, Any]] = field(default_factory=list)  # /parameters
    periods: list[dict[str, Any]] = field(default_factory=list)  # /sensors/{id}/measurements|hours|days
    other: list[dict[str, Any]] = field(default_factory=list)


def split_rows(rows: Iterable[dict[str, Any]]) -> RecordedRows:
    out = RecordedRows()
    for row in rows:
        if "sensors" in row:
            out.locations.append(row)
        elif "sensorsId" in row or isinstance(row.get("latest"), dict):
            out.latest.append(row)
        elif isinstance(row.get("period"), dict):
            out.periods.append(row)
        elif {"id", "name", "units"} <= set(row):
            out.parameters.append(row)
        else:
            out.other.append(row)
    return out


def find_parameter(responses: Mapping[str, RecordedRows], parameter_id: int) -> dict[str, Any] | None:
    return next((p for rows in responses.values() for p in rows.parameters if int(p["id"]) == parameter_id), None)


def _not_read_rows(rows: RecordedRows, origin: str, drops: Drops, *, periods_hint: str | None) -> None:
    for row in rows.other:
        drops.add("unknown_shape", origin, f"a row with {sorted(row)[:6]}")
    if periods_hint:
        for _ in rows.periods:
            drops.add("unknown_shape", origin, periods_hint)


def latest_from_recorded(
    responses: Mapping[str, RecordedRows], *, ingested_at: datetime, parameter: Mapping[str, Any] | None = None
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Readings from recorded /locations and latest responses (by file): each latest response that
    yields nothing is a warning naming it."""
    sensors = sensor_index([row for rows in responses.values() for row in rows.locations])
    drops = Drops()
    observations: list[Observation] = []
    for origin, rows in responses.items():
        hint = "a /sensors/{id}/measurements|hours|days row: read it with `openaq backfill --sensor ID`"
        _not_read_rows(rows, origin, drops, periods_hint=hint)
        placed = observations_from_latest(rows.latest, sensors, drops, parameter=parameter, origin=origin)
        if (rows.latest or rows.other or rows.periods) and not placed:
            log.warning("openaq %s gave no reading", origin)
        observations += placed
    drops.log_warnings()
    return readings_from_observations(observations, ingested_at=ingested_at), dict(drops.counts)


def backfill_from_recorded(
    responses: Mapping[str, RecordedRows], sensor_id: int, *, window: Window, ingested_at: datetime
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Readings from recorded pages of one sensor's /measurements, /hours or /days (the pages do not
    name their sensor), placed by the recorded /locations and latest responses beside them."""
    sensors = sensor_index(
        [row for rows in responses.values() for row in rows.locations],
        [row for rows in responses.values() for row in rows.latest],
    )
    drops = Drops()
    observations: list[Observation] = []
    for origin, rows in responses.items():
        _not_read_rows(rows, origin, drops, periods_hint=None)
        placed = observations_from_periods(rows.periods, sensor_id, sensors, drops, window=window, origin=origin)
        if (rows.periods or rows.other) and not placed:
            log.warning("openaq %s gave no reading", origin)
        observations += placed
    drops.log_warnings()
    return readings_from_observations(observations, ingested_at=ingested_at), dict(drops.counts)


# --- the API -----------------------------------------------------------------------------------


def _found(meta: dict[str, Any]) -> int | None:
    """``meta.found`` is an int, or a string like ``">100"`` (then unknown)."""
    found = meta.get("found")
    return found if isinstance(found, int) else None


def request_url(url: str, params: Mapping[str, Any]) -> str:
    """The URL a request goes to, secrets redacted: what a log line names."""
    return redact_url(requests.Request("GET", url, params=dict(params)).prepare().url or url)


def pages(
    client: HttpClient, url: str, params: Mapping[str, Any] | None = None, *, page_limit: int | None = None
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Each page as (its URL, its rows): ``page`` 1, 2, ... of ``limit`` rows until a page is short
    (or empty) or ``meta.found`` rows have come (a ``">N"`` found is unknown: read on)."""
    limit = page_limit or PAGE_LIMIT
    seen = 0
    page = 1
    while True:
        query = {**(params or {}), "limit": limit, "page": page}
        body = client.get_json(url, query)
        batch = body.get("results") or []
        seen += len(batch)
        yield request_url(url, query), batch
        found = _found(body.get("meta") or {})
        if len(batch) < limit or (found is not None and seen >= found):
            return
        page += 1


def paginate(client: HttpClient, url: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return [row for _, batch in pages(client, url, params) for row in batch]


def fetch_locations(
    client: HttpClient, *, country: str | None, bbox: str | None, location_ids: list[int] | None
) -> list[dict[str, Any]]:
    if location_ids:
        locations = []
        for location_id in location_ids:
            locations += client.get_json(f"{API_URL}/locations/{int(location_id)}").get("results") or []
        return locations
    params: dict[str, Any] = {}
    if country:
        params["iso"] = country.upper()
    if bbox:
        params["bbox"] = bbox
    return paginate(client, f"{API_URL}/locations", params)


def fetch(
    client: HttpClient, *, country: str | None, bbox: str | None, location_ids: list[int] | None
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The latest values of the chosen locations: (readings, the rows not read by reason)."""
    locations = fetch_locations(client, country=country, bbox=bbox, location_ids=location_ids)
    sensors = sensor_index(locations)
    drops = Drops()
    observations: list[Observation] = []
    silent: list[int] = []  # locations whose /latest is empty
    for location in locations:
        rows_seen = 0
        for where, rows in pages(client, f"{API_URL}/locations/{int(location['id'])}/latest"):
            placed = observations_from_latest(rows, sensors, drops, origin=where)
            if rows and not placed:
                log.warning("openaq %s gave no reading", where)
            rows_seen += len(rows)
            observations += placed
        if not rows_seen:
            silent.append(int(location["id"]))
    if silent:
        log.warning("openaq: %d location(s) gave no latest value: %s", len(silent), ", ".join(map(str, silent)))
    drops.log_warnings()
    readings = readings_from_observations(observations, ingested_at=datetime.now(UTC))
    log.info("openaq: %d locations, %d latest values, %d readings", len(locations), len(observations), len(readings))
    return readings, dict(drops.counts)


def fetch_parameter(client: HttpClient, parameter_id: int) -> dict[str, Any]:
    """The ``/parameters/{id}`` record (name, units) that ``/parameters/{id}/latest`` rows do not carry."""
    results = client.get_json(f"{API_URL}/parameters/{int(parameter_id)}").get("results") or []
    if not results:
        raise HttpError(f"OpenAQ has no parameter {parameter_id}: check --parameter", status=404)
    return results[0]


def fetch_parameter_latest(client: HttpClient, parameter_id: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Every sensor's latest value of one parameter, placed by the rows' own ``locationsId``."""
    parameter = fetch_parameter(client, parameter_id)
    drops = Drops()
    observations: list[Observation] = []
    for where, rows in pages(client, f"{API_URL}/parameters/{int(parameter_id)}/latest"):
        placed = observations_from_latest(rows, {}, drops, parameter=parameter, origin=where)
        if not placed:
            log.warning("openaq %s gave no reading", where)
        observations += placed
    drops.log_warnings()
    readings = readings_from_observations(observations, ingested_at=datetime.now(UTC))
    return readings, dict(drops.counts)


def backfill_params(endpoint: str, window: Window) -> dict[str, str]:
    """``/measurements`` and ``/hours`` filter on ``datetime_from``/``datetime_to``; ``/days`` on
    ``date_from``/``date_to`` (it ignores the others)."""
    prefix = "date" if endpoint == "days" else "datetime"
    iso = {"from": window.start, "to": window.end}
    return {f"{prefix}_{k}": v.astimezone(UTC).isoformat().replace("+00:00", "Z") for k, v in iso.items()}


def backfill(
    client: HttpClient,
    sensor_ids: list[int],
    sensors: Mapping[int, Sensor],
    *,
    endpoint: str,
    window: Window,
    page_limit: int | None = None,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Every page of ``/sensors/{id}/{endpoint}`` in the window, for each sensor: (readings, not read)."""
    if endpoint not in BACKFILL_ENDPOINTS:
        raise ValueError(f"endpoint {endpoint!r}: one of {', '.join(BACKFILL_ENDPOINTS)}")
    drops = Drops()
    observations: list[Observation] = []
    for sensor_id in sensor_ids:
        url = f"{API_URL}/sensors/{int(sensor_id)}/{endpoint}"
        for number, (where, rows) in enumerate(
            pages(client, url, backfill_params(endpoint, window), page_limit=page_limit)
        ):
            placed = observations_from_periods(rows, int(sensor_id), sensors, drops, window=window, origin=where)
            if not placed and (rows or number == 0):  # an empty last page just ends the paging
                log.warning("openaq %s gave no reading", where)
            observations += placed
    drops.log_warnings()
    return readings_from_observations(observations, ingested_at=datetime.now(UTC)), dict(drops.counts)
