"""Open-Meteo air-quality API → canonical readings.

The response holds parallel arrays per variable (``hourly``) and an optional ``current`` block,
each with its units block. Times are local ISO strings without offset (shifted by
``utc_offset_seconds``) or epoch seconds (``timeformat=unixtime``). The API mixes forecast hours
into ``hourly``: only hours at or before ``as_of`` (the request time; for a recorded response its
``current.time``) are readings. No temperature or humidity here: the air-quality API offers only
``uv_index`` among our weather fields; everything else numeric goes to ``extra``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from collectors.httpclient import HttpClient
from collectors.stations import CitiesConfig, Station, grid_station
from collectors.values import CleanValues, to_canonical_number, to_number
from schemas.reading import build_reading
from schemas.units import unit_slug

log = logging.getLogger("collectors.openmeteo")

SOURCE = "openmeteo"
API_URL = "https://air-quality-api.open-meteo.com/v1/air-quality"

# Open-Meteo variable → canonical pollutant (converted with the response's unit)
POLLUTANT_VARIABLES = {
    "pm2_5": "pm25",
    "pm10": "pm10",
    "nitrogen_dioxide": "no2",
    "sulphur_dioxide": "so2",
    "carbon_monoxide": "co",
    "ozone": "o3",
}
WEATHER_VARIABLES = {"uv_index": "uv_index"}
HOURLY_VARIABLES: tuple[str, ...] = (
    *POLLUTANT_VARIABLES,
    "uv_index",
    "dust",
    "aerosol_optical_depth",
    "ammonia",
    "european_aqi",
    "us_aqi",
)
_NOT_VALUES = {"time", "interval"}
_INDEX_UNITS = {"eaqi", "usaqi"}
# a configured city claims a response whose grid-snapped point lies within this many degrees
CITY_MATCH_DEG = 0.25


def request_params(city_lat: float, city_lon: float, past_days: int) -> dict[str, Any]:
    return {
        "latitude": city_lat,
        "longitude": city_lon,
        "hourly": ",".join(HOURLY_VARIABLES),
        "timeformat": "unixtime",
        "timezone": "GMT",
        "past_days": past_days,
        "forecast_days": 1,  # the smallest the API allows; its forecast hours are dropped below
    }


def parse_time(value: Any, utc_offset_seconds: int) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(int(value), UTC)
    local = datetime.fromisoformat(str(value))
    if local.tzinfo is not None:
        return local.astimezone(UTC)
    return (local - timedelta(seconds=utc_offset_seconds)).replace(tzinfo=UTC)


def observed_cutoff(response: dict[str, Any], now: datetime) -> datetime:
    """The last observed instant: ``now``, or the response's ``current.time`` if that is earlier
    (a recorded response replayed later still drops the hours that were forecast when recorded)."""
    current = response.get("current")
    if isinstance(current, dict) and current.get("time") is not None:
        return min(now, parse_time(current["time"], int(response.get("utc_offset_seconds") or 0)))
    return now


def station_for(response: dict[str, Any], cities: CitiesConfig | None) -> Station:
    lat, lon = float(response["latitude"]), float(response["longitude"])
    city = cities.nearest(lat, lon, CITY_MATCH_DEG) if cities else None
    if city is None:
        return grid_station(SOURCE, lat, lon)
    station = city.station(SOURCE)
    # the reading is for the model grid point, not the city centre
    return station.model_copy(update={"lat": lat, "lon": lon})


def _extra_key(variable: str, unit: str | None) -> str:
    slug = unit_slug(unit)
    return variable if not slug or slug in _INDEX_UNITS else f"{variable}_{slug}"


def _reading(
    response: dict[str, Any],
    station: Station,
    ts: datetime,
    block: str,
    time_value: Any,
    row: dict[str, Any],
    units: dict[str, str],
    ingested_at: datetime,
) -> dict[str, Any]:
    clean = CleanValues()
    for variable, value in row.items():
        unit = units.get(variable, "")
        if variable in POLLUTANT_VARIABLES:
            name = POLLUTANT_VARIABLES[variable]
            clean.values[name] = to_canonical_number(name, value, unit, clean)
        elif variable in WEATHER_VARIABLES:
            name = WEATHER_VARIABLES[variable]
            clean.values[name] = to_number(value, name, clean)
        else:
            key = _extra_key(variable, unit)
            number = to_number(value, key, clean)
            if number is not None:
                clean.extra[key] = number
    raw = {
        "latitude": response.get("latitude"),
        "longitude": response.get("longitude"),
        "utc_offset_seconds": response.get("utc_offset_seconds"),
        "timezone": response.get("timezone"),
        "block": block,
        "time": time_value,
        "values": row,
        "units": {k: units.get(k) for k in row},
    }
    return build_reading(
        source=SOURCE,
        station_id=station.station_id,
        station_name=station.name,
        city=station.city,
        country=station.country,
        lat=station.lat,
        lon=station.lon,
        ts=ts,
        ingested_at=ingested_at,
        values=clean.values,
        extra=clean.extra,
        flags=clean.flags,
        raw=raw,
    )


def readings_from_response(
    response: dict[str, Any], station: Station, *, now: datetime, ingested_at: datetime
) -> tuple[list[dict[str, Any]], int]:
    """(readings for the observed hours, oldest first; count of forecast hours dropped)."""
    offset = int(response.get("utc_offset_seconds") or 0)
    cutoff = observed_cutoff(response, now)
    readings: dict[datetime, dict[str, Any]] = {}
    forecast = 0
    hourly = response.get("hourly") or {}
    units = response.get("hourly_units") or {}
    variables = [v for v in hourly if v not in _NOT_VALUES]
    for i, time_value in enumerate(hourly.get("time") or []):
        ts = parse_time(time_value, offset)
        if ts > cutoff:
            forecast += 1
            continue
        row = {v: hourly[v][i] if i < len(hourly[v]) else None for v in variables}
        readings[ts] = _reading(response, station, ts, "hourly", time_value, row, units, ingested_at)
    current = response.get("current")
    if isinstance(current, dict) and current.get("time") is not None:
        ts = parse_time(current["time"], offset)
        # the hourly array is the series; `current` adds the latest instant when the series lacks it
        if ts <= cutoff and ts not in readings:
            row = {v: current[v] for v in current if v not in _NOT_VALUES}
            readings[ts] = _reading(
                response, station, ts, "current", current["time"], row, response.get("current_units") or {}, ingested_at
            )
    return [readings[ts] for ts in sorted(readings)], forecast


def fetch(client: HttpClient, cities: CitiesConfig, past_days: int, now: datetime) -> tuple[list[dict[str, Any]], int]:
    """One request per configured city: (readings of the observed hours, count of forecast hours dropped)."""
    out: list[dict[str, Any]] = []
    dropped = 0
    for city in cities.cities:
        response = client.get_json(API_URL, request_params(city.lat, city.lon, past_days))
        station = city.station(SOURCE).model_copy(update={"lat": response["latitude"], "lon": response["longitude"]})
        readings, forecast = readings_from_response(response, station, now=now, ingested_at=datetime.now(UTC))
        log.info("openmeteo %s: %d observed hours, %d forecast hours dropped", city.id, len(readings), forecast)
        out += readings
        dropped += forecast
    return out, dropped
