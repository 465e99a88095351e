"""OpenAQ v3 → canonical readings: one reading per location and measurement time.

``/locations`` (by country, bounding box or ids, paginated) gives each location's sensors with
their parameter and unit; ``/locations/{id}/latest`` gives the latest value per sensor (only a
``sensorsId``). Joining the two by sensor id and grouping by (location, ``datetime.utc``) gives
the wide reading. ``/locations/{id}/sensors`` rows (a ``latest`` block per sensor) are accepted
too, so either recorded response shape works with ``--from-file``.

The same pollutant arrives in different units from different sensors (CO in ppm or µg/m³, NO2 in
ppm): each value is converted with its own sensor's unit. ``-9999`` is a sentinel (null, flagged).
The API key comes from the environment and goes only into the ``X-API-Key`` header.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from collectors.httpclient import HttpClient
from collectors.values import CleanValues, to_canonical_number, to_number
from schemas.reading import POLLUTANT_FIELDS, build_reading
from schemas.units import unit_slug

log = logging.getLogger("collectors.openaq")

SOURCE = "openaq"
API_URL = "https://api.openaq.org/v3"
API_KEY_ENV = "OPENAQ_API_KEY"
PAGE_LIMIT = 1000

# OpenAQ parameter name → canonical weather field, with the unit conversion to °C / %
WEATHER_PARAMETERS = {"temperature": "temperature", "relativehumidity": "humidity"}

HINTS = {
    401: f"OpenAQ rejected the API key: set {API_KEY_ENV} to a valid key (https://explore.openaq.org/register)",
    403: f"OpenAQ refused the API key for this resource: check {API_KEY_ENV} and the key's permissions",
    404: "OpenAQ has no such location: check --location-ids",
    422: "OpenAQ refused a parameter: check --country (ISO code, e.g. VN), --bbox (minlon,minlat,maxlon,maxlat)",
}


def parse_utc(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def station_id(location_id: int | str) -> str:
    return f"{SOURCE}-{location_id}"


def _sensor_index(locations: Iterable[dict[str, Any]]) -> dict[int, tuple[dict[str, Any], dict[str, Any]]]:
    """sensor id → (location, parameter)."""
    index = {}
    for location in locations:
        for sensor in location.get("sensors") or []:
            index[int(sensor["id"])] = (location, sensor.get("parameter") or {})
    return index


def _measurements(rows: Iterable[dict[str, Any]]) -> Iterable[tuple[int, dict[str, Any]]]:
    """(sensor id, {datetime, value, coordinates}) from /latest rows or /sensors rows."""
    for row in rows:
        if "sensorsId" in row:
            yield int(row["sensorsId"]), row
        elif isinstance(row.get("latest"), dict):
            yield int(row["id"]), row["latest"]


def _temperature_c(value: float | None, unit: str) -> float | None:
    if value is None:
        return None
    return (value - 32.0) * 5.0 / 9.0 if unit.strip().lower() in ("f", "°f") else value


def readings_from_latest(
    locations: list[dict[str, Any]], latest_rows: list[dict[str, Any]], *, ingested_at: datetime
) -> list[dict[str, Any]]:
    """Readings from location records and their latest values, ordered by station then time."""
    sensors = _sensor_index(locations)
    groups: dict[tuple[int, str], list[tuple[dict[str, Any], dict[str, Any], int]]] = defaultdict(list)
    for sensor_id, measurement in _measurements(latest_rows):
        if sensor_id not in sensors:
            log.warning("openaq: sensor %s is in no requested location; skipped", sensor_id)
            continue
        location, parameter = sensors[sensor_id]
        when = (measurement.get("datetime") or {}).get("utc")
        if not when:
            continue
        ts = parse_utc(when)
        groups[(int(location["id"]), ts.isoformat())].append((parameter, measurement, sensor_id))

    readings = []
    for (location_id, _), items in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        location = sensors[items[0][2]][0]
        ts = parse_utc(items[0][1]["datetime"]["utc"])
        clean = CleanValues()
        for parameter, measurement, _sensor_id in items:
            name = str(parameter.get("name") or "").lower()
            unit = str(parameter.get("units") or "")
            value = measurement.get("value")
            if name in POLLUTANT_FIELDS:
                if clean.values.get(name) is not None:
                    clean.flag(name, "duplicate_sensor")  # first sensor wins; the other is in raw
                    continue
                clean.values[name] = to_canonical_number(name, value, unit, clean)
            elif name in WEATHER_PARAMETERS:
                field = WEATHER_PARAMETERS[name]
                number = to_number(value, field, clean)
                clean.values[field] = _temperature_c(number, unit) if field == "temperature" else number
            else:
                key = f"{name}_{unit_slug(unit)}" if unit_slug(unit) else name
                number = to_number(value, key, clean)
                if number is not None:
                    clean.extra[key] = number
        coordinates = location.get("coordinates") or items[0][1].get("coordinates") or {}
        country = location.get("country") or {}
        raw = {
            "location": {k: location.get(k) for k in ("id", "name", "locality", "timezone", "country", "coordinates")},
            "measurements": [
                {"sensorsId": sensor_id, "parameter": parameter, **measurement}
                for parameter, measurement, sensor_id in items
            ],
        }
        readings.append(
            build_reading(
                source=SOURCE,
                station_id=station_id(location_id),
                station_name=location.get("name"),
                city=location.get("locality"),
                country=country.get("code"),
                lat=coordinates.get("latitude"),
                lon=coordinates.get("longitude"),
                ts=ts,
                ingested_at=ingested_at,
                values=clean.values,
                extra=clean.extra,
                flags=clean.flags,
                raw=raw,
            )
        )
    return readings


def _found(meta: dict[str, Any]) -> int | None:
    """``meta.found`` is an int, or a string like ``">100"`` (then unknown)."""
    found = meta.get("found")
    return found if isinstance(found, int) else None


def paginate(client: HttpClient, url: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    page = 1
    while True:
        body = client.get_json(url, {**(params or {}), "limit": PAGE_LIMIT, "page": page})
        batch = body.get("results") or []
        results += batch
        found = _found(body.get("meta") or {})
        if not batch or len(batch) < PAGE_LIMIT or (found is not None and len(results) >= found):
            return results
        page += 1


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
) -> list[dict[str, Any]]:
    locations = fetch_locations(client, country=country, bbox=bbox, location_ids=location_ids)
    latest: list[dict[str, Any]] = []
    for location in locations:
        latest += paginate(client, f"{API_URL}/locations/{int(location['id'])}/latest")
    readings = readings_from_latest(locations, latest, ingested_at=datetime.now(UTC))
    log.info("openaq: %d locations, %d latest values, %d readings", len(locations), len(latest), len(readings))
    return readings
