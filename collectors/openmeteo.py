"""Open-Meteo air-quality API → canonical readings.

The response holds parallel arrays per variable (``hourly``) and an optional ``current`` block,
each with its units block. Times are local ISO strings without offset (shifted by
``utc_offset_seconds``) or epoch seconds (``timeformat=unixtime``). The API mixes forecast hours
into ``hourly``: only hours at or before ``as_of`` (the request time; for a recorded response its
``current.time``) are readings; a recorded response without a ``current`` block needs its fetch
time given (``--as-of``, or a ``<file>.fetched_at`` beside it), else it is refused. The ``current``
block adds its instant when ``hourly`` lacks it, and fills the pollutants the hourly row of that
instant lacks. No temperature or humidity here: the air-quality API offers only ``uv_index`` among
our weather fields; everything else numeric goes to ``extra``.

A multi-model request (``models=cams_europe,cams_global``) suffixes every column with its model
(``pm10_cams_europe``). ``--model NAME`` names the model whose columns become the reading; the
other models' columns stay under ``extra`` by their full names. Columns the collector has no rule
for (a suffixed column with no ``--model`` naming it, a variable it does not know) also go to
``extra``, and each is counted (``unmapped_column``) and logged as a warning.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
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
# the API's other variables: known, kept under extra by name (anything else is an unmapped column)
EXTRA_VARIABLES = frozenset(
    {
        "uv_index_clear_sky",
        "is_day",
        "dust",
        "aerosol_optical_depth",
        "ammonia",
        "methane",
        "carbon_dioxide",
        "formaldehyde",
        "glyoxal",
        "nitrogen_monoxide",
        "non_methane_volatile_organic_compounds",
        "peroxyacyl_nitrates",
        "pm10_wildfires",
        "pm2_5_total_organic_matter",
        "residential_elementary_carbon",
        "total_elementary_carbon",
        "sea_salt_aerosol",
        "secondary_inorganic_aerosol",
        *(f"{plant}_pollen" for plant in ("alder", "birch", "grass", "mugwort", "olive", "ragweed")),
        "european_aqi",
        *(f"european_aqi_{v}" for v in ("pm2_5", "pm10", "nitrogen_dioxide", "ozone", "sulphur_dioxide")),
        "us_aqi",
        *(f"us_aqi_{v}" for v in ("pm2_5", "pm10", "nitrogen_dioxide", "ozone", "sulphur_dioxide", "carbon_monoxide")),
    }
)
KNOWN_VARIABLES = frozenset({*POLLUTANT_VARIABLES, *WEATHER_VARIABLES, *EXTRA_VARIABLES})
# longest first, so `european_aqi_pm10_cams_europe` splits as european_aqi_pm10 + cams_europe
_BY_LENGTH = sorted(KNOWN_VARIABLES, key=len, reverse=True)
_NOT_VALUES = {"time", "interval"}
_INDEX_UNITS = {"eaqi", "usaqi"}
# a configured city claims a response whose grid-snapped point lies within this many degrees
CITY_MATCH_DEG = 0.25


def request_params(city_lat: float, city_lon: float, past_days: int, model: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "latitude": city_lat,
        "longitude": city_lon,
        "hourly": ",".join(HOURLY_VARIABLES),
        # times as UTC epoch seconds, and the grid point's own IANA zone in the response's `timezone` (the
        # reading's: its local day bounds the 1 d aggregates)
        "timeformat": "unixtime",
        "timezone": "auto",
        "past_days": past_days,
        "forecast_days": 1,  # the smallest the API allows; its forecast hours are dropped below
    }
    if model:  # one domain asked: its columns come back unsuffixed
        params["domains"] = model
    return params


def parse_time(value: Any, utc_offset_seconds: int) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(int(value), UTC)
    local = datetime.fromisoformat(str(value))
    if local.tzinfo is not None:
        return local.astimezone(UTC)
    return (local - timedelta(seconds=utc_offset_seconds)).replace(tzinfo=UTC)


def current_time(response: dict[str, Any]) -> datetime | None:
    """The response's ``current.time`` (when it was fetched, to the hour), or None without one."""
    current = response.get("current")
    if isinstance(current, dict) and current.get("time") is not None:
        return parse_time(current["time"], int(response.get("utc_offset_seconds") or 0))
    return None


def observed_cutoff(response: dict[str, Any], now: datetime) -> datetime:
    """The last observed instant: ``now``, or the response's ``current.time`` if that is earlier
    (a recorded response replayed later still drops the hours that were forecast when recorded)."""
    fetched = current_time(response)
    return now if fetched is None else min(now, fetched)


def split_model(column: str) -> tuple[str, str | None]:
    """(variable, model suffix): ``pm10_cams_europe`` → (pm10, cams_europe); a known variable → (it, None);
    a column that is neither → (column, None)."""
    if column in KNOWN_VARIABLES:
        return column, None
    for variable in _BY_LENGTH:
        if column.startswith(variable + "_"):
            return variable, column[len(variable) + 1 :]
    return column, None


def column_names(columns: list[str], model: str | None) -> tuple[dict[str, str], list[str]]:
    """How each column is read: (column → the name it takes in the row, the unmapped columns).

    The ``model``'s suffixed columns take their variable's name (they are the reading); another
    model's keep their full name (extra). Unmapped, kept under extra by their full name too: a
    variable the collector does not know, and a suffixed column when ``model`` names none of the
    response's models (without that setting no model's columns can be the reading).
    """
    split = {c: split_model(c) for c in columns}
    models = {m for _, m in split.values() if m is not None}
    names: dict[str, str] = {}
    unmapped: list[str] = []
    for column, (variable, suffix) in split.items():
        if suffix is None:
            names[column] = column
            if variable not in KNOWN_VARIABLES:
                unmapped.append(column)
        elif model in models:
            names[column] = variable if suffix == model else column
        else:
            names[column] = column
            unmapped.append(column)
    return names, unmapped


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


@dataclass
class _Row:
    """One instant's values as the reading will carry them (names after ``column_names``)."""

    block: str
    time_value: Any
    values: dict[str, Any]
    units: dict[str, str]
    from_current: list[str] = field(default_factory=list)  # variables `current` filled in


def _reading(
    response: dict[str, Any], station: Station, ts: datetime, row: _Row, model: str | None, ingested_at: datetime
) -> dict[str, Any]:
    clean = CleanValues()
    for variable, value in row.values.items():
        unit = row.units.get(variable, "")
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
        "block": row.block,
        "time": row.time_value,
        "values": row.values,
        "units": {k: row.units.get(k) for k in row.values},
    }
    if model:
        raw["model"] = model
    if row.from_current:
        raw["from_current"] = row.from_current
    return build_reading(
        source=SOURCE,
        station_id=station.station_id,
        station_name=station.name,
        city=station.city,
        country=station.country,
        lat=station.lat,
        lon=station.lon,
        timezone=response.get("timezone"),
        ts=ts,
        ingested_at=ingested_at,
        values=clean.values,
        extra=clean.extra,
        flags=clean.flags,
        raw=raw,
    )


def _renamed(block: dict[str, Any], units: dict[str, str], model: str | None) -> tuple[dict, dict, list[str]]:
    """A block's value columns and units under the names ``column_names`` gives, and its unmapped columns."""
    names, unmapped = column_names([c for c in block if c not in _NOT_VALUES], model)
    return (
        {names[c]: block[c] for c in names},
        {names[c]: units[c] for c in names if c in units},
        unmapped,
    )


def readings_from_response(
    response: dict[str, Any], station: Station, *, now: datetime, ingested_at: datetime, model: str | None = None
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """(readings for the observed hours, oldest first; what was not read, counted by reason).

    Reasons: ``forecast`` (hours after the cut: not observations), ``unmapped_column`` (columns the
    collector has no rule for, once per column and block; their values are kept under ``extra``).
    """
    offset = int(response.get("utc_offset_seconds") or 0)
    cutoff = observed_cutoff(response, now)
    rows: dict[datetime, _Row] = {}
    forecast = 0
    hourly, units, unmapped = _renamed(response.get("hourly") or {}, response.get("hourly_units") or {}, model)
    for i, time_value in enumerate((response.get("hourly") or {}).get("time") or []):
        ts = parse_time(time_value, offset)
        if ts > cutoff:
            forecast += 1
            continue
        values = {v: series[i] if i < len(series) else None for v, series in hourly.items()}
        rows[ts] = _Row("hourly", time_value, values, dict(units))
    current = response.get("current")
    ts = current_time(response)
    if ts is not None and ts <= cutoff:
        values, current_units, current_unmapped = _renamed(current, response.get("current_units") or {}, model)
        unmapped += current_unmapped
        row = rows.get(ts)
        if row is None:  # the hourly array is the series; `current` adds the latest instant when it lacks it
            rows[ts] = _Row("current", current["time"], values, current_units)
        else:  # ... and fills what the series' row for that instant lacks
            for variable, value in values.items():
                if row.values.get(variable) is None and value is not None:
                    row.values[variable] = value
                    row.units[variable] = current_units.get(variable, "")
                    row.from_current.append(variable)
    if unmapped:
        log.warning(
            "openmeteo: %d column(s) not mapped, kept under extra: %s%s",
            len(unmapped),
            ", ".join(unmapped),
            "" if model else " (a multi-model response? name the reading's model with --model)",
        )
    readings = [_reading(response, station, ts, rows[ts], model, ingested_at) for ts in sorted(rows)]
    return readings, {"forecast": forecast, "unmapped_column": len(unmapped)}


def fetch(
    client: HttpClient, cities: CitiesConfig, past_days: int, now: datetime, model: str | None = None
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """One request per configured city: (readings of the observed hours, what was not read by reason)."""
    out: list[dict[str, Any]] = []
    dropped: Counter[str] = Counter()
    for city in cities.cities:
        response = client.get_json(API_URL, request_params(city.lat, city.lon, past_days, model))
        station = city.station(SOURCE).model_copy(update={"lat": response["latitude"], "lon": response["longitude"]})
        readings, counts = readings_from_response(
            response, station, now=now, ingested_at=datetime.now(UTC), model=model
        )
        log.info("openmeteo %s: %d observed hours, not read: %s", city.id, len(readings), counts)
        if not readings:
            log.warning("openmeteo %s: %s gave no reading", city.id, API_URL)
        out += readings
        dropped.update(counts)
    return out, dict(dropped)
