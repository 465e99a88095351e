"""The canonical reading, defined once.

``READING_FIELDS`` is the one definition. From it derive: the Spark ``StructType`` the jobs read
the Kafka JSON with (:func:`reading_spark_schema`), the pydantic model the collectors validate
with (:data:`Reading`), the MongoDB document (:func:`reading_to_mongo_document`) and the
Cassandra row columns (:mod:`schemas.cassandra`). A unit test checks the CQL files against it.

One reading = one station at one measurement time, all its pollutants (wide). Concentrations are
in µg/m³ (see :mod:`schemas.units`); temperature °C, humidity %, UV index unitless. A value a
source got wrong (negative, absurd) travels as reported with a flag in ``flags``; a value that is
not a number at all (null, text, sentinel like -9999) travels as null, flagged when it was not a
plain null. Nothing is ever turned into 0.

``event_id`` = ``"{source}:{station_id}:{YYYYMMDDTHHMMSSZ}"`` (the measurement time in UTC). It
is deterministic, and :func:`parse_event_id` reads the station and the day back from it, which a
Debezium delete needs (it carries only the document key). ``source`` and ``station_id`` are slugs
(``[a-z0-9._-]``), so the ``:`` separator can never occur inside them.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, create_model
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    DataType,
    DoubleType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class FieldSpec:
    """One field of the canonical reading, with everything each store needs to know about it."""

    name: str
    kind: str  # string | double | int | long | timestamp | map_double | array_string
    required: bool = False
    in_cassandra: bool = True  # `raw` stays in Mongo/Delta; Cassandra holds the parsed values
    valid_range: tuple[float, float] | None = None  # outside it a value is flagged, not changed
    doc: str = ""


_SPARK_TYPES: dict[str, DataType] = {
    "string": StringType(),
    "double": DoubleType(),
    "int": IntegerType(),
    "long": LongType(),
    "timestamp": TimestampType(),
    "map_double": MapType(StringType(), DoubleType(), valueContainsNull=True),
    "array_string": ArrayType(StringType(), containsNull=False),
}

CQL_TYPES: dict[str, str] = {
    "string": "text",
    "double": "double",
    "int": "int",
    "long": "bigint",
    "timestamp": "timestamp",
    "map_double": "map<text, double>",
    "array_string": "list<text>",
}

_PY_TYPES: dict[str, Any] = {
    "string": str,
    "double": float,
    "int": int,
    "long": int,
    "timestamp": datetime,
    "map_double": dict[str, float | None],
    "array_string": list[str],
}

POLLUTANT_FIELDS: tuple[str, ...] = ("pm25", "pm10", "no2", "so2", "co", "o3")
WEATHER_FIELDS: tuple[str, ...] = ("temperature", "humidity", "uv_index")

# Plausibility bounds: a value outside is flagged `<field>:out_of_range` (negative: `:negative`).
# Generous on purpose (dust storms, Beijing winter CO): they catch broken sensors, not bad days.
_POLLUTANT_RANGE = {
    "pm25": (0.0, 2000.0),
    "pm10": (0.0, 5000.0),
    "no2": (0.0, 2000.0),
    "so2": (0.0, 2000.0),
    "co": (0.0, 60000.0),
    "o3": (0.0, 1000.0),
}

READING_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("event_id", "string", required=True, doc="{source}:{station_id}:{YYYYMMDDTHHMMSSZ}"),
    FieldSpec("source", "string", required=True, doc="openmeteo | openaq | uci-beijing | kaggle | …"),
    FieldSpec("station_id", "string", required=True, doc="slug, unique across sources; the Kafka key"),
    FieldSpec("station_name", "string"),
    FieldSpec("city", "string"),
    FieldSpec("country", "string", doc="ISO 3166-1 alpha-2 where known"),
    FieldSpec("lat", "double", valid_range=(-90.0, 90.0)),
    FieldSpec("lon", "double", valid_range=(-180.0, 180.0)),
    FieldSpec("timezone", "string", doc="IANA zone of the station (its local day: the 1 d aggregates); null: UTC"),
    FieldSpec("ts", "timestamp", required=True, doc="measurement time, UTC"),
    FieldSpec("ingested_at", "timestamp", required=True, doc="when the collector built the reading, UTC"),
    FieldSpec("sent_at", "long", doc="epoch ms when the collector handed it to Kafka (latency)"),
    *(FieldSpec(p, "double", valid_range=_POLLUTANT_RANGE[p], doc="µg/m³") for p in POLLUTANT_FIELDS),
    FieldSpec("temperature", "double", valid_range=(-90.0, 60.0), doc="°C"),
    FieldSpec("humidity", "double", valid_range=(0.0, 100.0), doc="% relative humidity"),
    FieldSpec("uv_index", "double", valid_range=(0.0, 25.0)),
    FieldSpec("extra", "map_double", doc="other numeric parameters: key `<name>[_<unit slug>]`, source units"),
    FieldSpec("flags", "array_string", doc="`<field>:<reason>` for values the source got wrong"),
    FieldSpec("raw", "string", in_cassandra=False, doc="the source record as received, JSON"),
    FieldSpec("schema_version", "int", required=True),
)

FIELDS_BY_NAME: dict[str, FieldSpec] = {f.name: f for f in READING_FIELDS}
READING_FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in READING_FIELDS)
TIMESTAMP_FIELDS: tuple[str, ...] = tuple(f.name for f in READING_FIELDS if f.kind == "timestamp")


def spark_type(kind: str) -> DataType:
    return _SPARK_TYPES[kind]


def reading_spark_schema() -> StructType:
    """The explicit schema of the Kafka JSON (and the bronze table). Timestamps are ISO-8601 UTC."""
    return StructType([StructField(f.name, spark_type(f.kind), nullable=not f.required) for f in READING_FIELDS])


class _ReadingBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _pydantic_fields() -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for spec in READING_FIELDS:
        py_type = _PY_TYPES[spec.kind]
        fields[spec.name] = (py_type, ...) if spec.required else (py_type | None, None)
    return fields


# The collectors' model of the reading, generated from READING_FIELDS so it cannot drift.
Reading: type[BaseModel] = create_model("Reading", __base__=_ReadingBase, **_pydantic_fields())


# --- ids -------------------------------------------------------------------------------------

_EVENT_TS_FORMAT = "%Y%m%dT%H%M%SZ"
_SLUG_OK = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def slugify(text: str) -> str:
    """`"US Diplomatic Post: Hanoi"` → `"us-diplomatic-post-hanoi"`; accents folded, never empty."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9.]+", "-", folded).strip("-.")
    if not slug:
        raise ValueError(f"{text!r} has no character usable in an id")
    return slug


def check_slug(value: str, what: str) -> str:
    if not _SLUG_OK.match(value):
        raise ValueError(f"{what} {value!r} must match [a-z0-9][a-z0-9._-]* (use slugify)")
    return value


def to_utc(ts: datetime) -> datetime:
    if ts.tzinfo is None:
        raise ValueError(f"naive datetime {ts!r}: measurement times must carry a zone")
    return ts.astimezone(UTC)


def known_zone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone this Python knows (its tzdata)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def make_event_id(source: str, station_id: str, ts: datetime) -> str:
    check_slug(source, "source")
    check_slug(station_id, "station_id")
    return f"{source}:{station_id}:{to_utc(ts).strftime(_EVENT_TS_FORMAT)}"


@dataclass(frozen=True)
class EventIdParts:
    source: str
    station_id: str
    ts: datetime
    day: date


def parse_event_id(event_id: str) -> EventIdParts:
    """The station and the day from an id alone (what a Debezium delete gives us)."""
    parts = event_id.split(":")
    if len(parts) != 3:
        raise ValueError(f"{event_id!r} is not an event id {{source}}:{{station_id}}:{{YYYYMMDDTHHMMSSZ}}")
    source, station_id, stamp = parts
    ts = datetime.strptime(stamp, _EVENT_TS_FORMAT).replace(tzinfo=UTC)
    return EventIdParts(check_slug(source, "source"), check_slug(station_id, "station_id"), ts, ts.date())


def event_id_station_col(event_id: Column) -> Column:
    """Spark twin of ``parse_event_id(...).station_id``."""
    return F.split(event_id, ":").getItem(1)


def event_id_ts_col(event_id: Column) -> Column:
    """Spark twin of ``parse_event_id(...).ts`` (session time zone must be UTC)."""
    return F.to_timestamp(F.split(event_id, ":").getItem(2), "yyyyMMdd'T'HHmmss'Z'")


def event_id_day_col(event_id: Column) -> Column:
    """Spark twin of ``parse_event_id(...).day``: the date part of the stamp, no zone arithmetic."""
    return F.to_date(F.substring(F.split(event_id, ":").getItem(2), 1, 8), "yyyyMMdd")


# --- values ----------------------------------------------------------------------------------


def format_ts(ts: datetime) -> str:
    """ISO-8601 UTC with a Z, what Spark's default timestampFormat and every consumer read."""
    return to_utc(ts).isoformat().replace("+00:00", "Z")


def range_flag(field: str, value: float | None) -> str | None:
    """`<field>:negative` or `<field>:out_of_range` for an implausible value, else None."""
    spec = FIELDS_BY_NAME[field]
    if value is None or spec.valid_range is None:
        return None
    low, high = spec.valid_range
    if value < 0 <= low:
        return f"{field}:negative"
    if not low <= value <= high:
        return f"{field}:out_of_range"
    return None


def build_reading(
    *,
    source: str,
    station_id: str,
    ts: datetime,
    ingested_at: datetime,
    values: dict[str, float | None],
    raw: Any,
    station_name: str | None = None,
    city: str | None = None,
    country: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    timezone: str | None = None,
    extra: dict[str, float | None] | None = None,
    flags: list[str] | None = None,
) -> dict[str, Any]:
    """The canonical reading as a JSON-ready dict (what goes to Kafka), validated by ``Reading``.

    ``timezone`` is the station's IANA zone (its local calendar day bounds the 1 d aggregates). A name
    this Python's tzdata does not know travels in ``raw`` only: the reading gets no zone (its days are
    UTC days) and the flag ``timezone:unknown_zone``.

    ``values`` holds the named fields (pollutants in µg/m³, weather); range flags are added here
    so every source flags the same way. ``raw`` is the source record; kept as a JSON string.
    """
    unknown = set(values) - set(POLLUTANT_FIELDS) - set(WEATHER_FIELDS)
    if unknown:
        raise ValueError(f"not canonical value fields: {sorted(unknown)} (put them in extra)")
    all_flags = list(flags or [])
    if timezone is not None and not known_zone(timezone):
        timezone = None
        all_flags.append("timezone:unknown_zone")
    for name, value in {"lat": lat, "lon": lon, **values}.items():
        flag = range_flag(name, value)
        if flag and flag not in all_flags:
            all_flags.append(flag)
    record: dict[str, Any] = {
        "event_id": make_event_id(source, station_id, ts),
        "source": source,
        "station_id": station_id,
        "station_name": station_name,
        "city": city,
        "country": country,
        "lat": lat,
        "lon": lon,
        "timezone": timezone,
        "ts": to_utc(ts),
        "ingested_at": to_utc(ingested_at),
        "sent_at": None,
        **{name: values.get(name) for name in (*POLLUTANT_FIELDS, *WEATHER_FIELDS)},
        "extra": dict(extra or {}),
        "flags": all_flags,
        "raw": raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False, sort_keys=True),
        "schema_version": SCHEMA_VERSION,
    }
    Reading.model_validate(record)
    return reading_to_json_dict(record)


def reading_to_json_dict(record: dict[str, Any]) -> dict[str, Any]:
    """Timestamps as ISO strings, everything else as is: the Kafka message body."""
    return {k: format_ts(v) if isinstance(v, datetime) else v for k, v in record.items()}


def reading_from_json_dict(message: dict[str, Any]) -> dict[str, Any]:
    """Back from the Kafka JSON: timestamps parsed to aware datetimes (validated)."""
    parsed = {
        k: datetime.fromisoformat(v.replace("Z", "+00:00")) if k in TIMESTAMP_FIELDS and v is not None else v
        for k, v in message.items()
    }
    return Reading.model_validate(parsed).model_dump()


def reading_to_mongo_document(message: dict[str, Any]) -> dict[str, Any]:
    """The MongoDB document: the reading with ``_id = event_id`` and BSON dates for timestamps."""
    document = reading_from_json_dict(message)
    return {"_id": document["event_id"], **document}
