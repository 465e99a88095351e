"""The Cassandra rows, derived from the canonical reading, and the CQL that creates their tables.

The CQL lives in ``schemas/cql/*.cql`` (applied in file-name order by the stack and the jobs via
:func:`cql_statements`); ``tests/unit/test_cql.py`` checks its columns against the lists here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from string import Template

from pyspark.sql.types import StructField, StructType

from schemas.reading import CQL_TYPES, POLLUTANT_FIELDS, READING_FIELDS, spark_type

CQL_DIR = Path(__file__).resolve().parent / "cql"

READINGS_TABLE = "readings_by_station_day"
# the windowed aggregates, one partition per (station, window size, bucket): see window_bucket
AGGREGATES_TABLE = "aggregates_by_station_bucket"
# each station's buckets that hold aggregates, newest first: where the newest window is (docs/cassandra.md)
AGGREGATE_BUCKETS_TABLE = "aggregate_buckets_by_station"
# the layout before buckets (002, 003): one partition per station; jobs.migrate_aggregates moves its rows
UNBUCKETED_AGGREGATES_TABLE = "aggregates_by_station"
STATIONS_TABLE = "stations"
ALERTS_BY_STATION_TABLE = "alerts_by_station"
ALERTS_BY_DAY_TABLE = "alerts_by_day"
# the one partition of the stations table (a keyed read lists every station)
STATIONS_REGISTRY = "all"
# the alerts' indexes: the US AQI category (of the 1 h NowCast AQI) and the EEA band (of the 1 h EAQI)
ALERT_INDEXES: tuple[str, ...] = ("us", "eea")
WINDOW_SIZES: tuple[str, ...] = ("1h", "1d")

# (name, kind) with the kinds of schemas.reading; written by the AQI transform of the CDC job.
AQI_COLUMNS: tuple[tuple[str, str], ...] = (
    ("aqi_us", "int"),
    ("aqi_us_category", "string"),
    ("aqi_us_dominant", "string"),
    ("eaqi", "int"),
    ("eaqi_band", "string"),
    ("eaqi_dominant", "string"),
)
# The PM NowCast of a 1 h window (from the 12 hourly means ending with it) and its AQI; null on 1 d rows.
NOWCAST_COLUMNS: tuple[tuple[str, str], ...] = (
    ("pm25_nowcast", "double"),
    ("pm10_nowcast", "double"),
    ("aqi_us_nowcast", "int"),
)
# The day's maximum 8-hour O3 mean (EPA MDA8, jobs/transforms/ozone.py), which its US AQI uses for O3; null on 1 h
# rows, and on a day without a valid one.
DAILY_COLUMNS: tuple[tuple[str, str], ...] = (("o3_8h_max", "double"),)
AGGREGATE_STATS: tuple[tuple[str, str], ...] = (
    ("count", "int"),
    ("mean", "double"),
    ("min", "double"),
    ("max", "double"),
)

STATION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("registry", "string"),
    ("station_id", "string"),
    ("source", "string"),
    ("station_name", "string"),
    ("city", "string"),
    ("country", "string"),
    ("lat", "double"),
    ("lon", "double"),
    ("timezone", "string"),
    ("updated_at", "timestamp"),
)
# what an alert says, after its key columns
ALERT_VALUE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("previous_category", "string"),
    ("category", "string"),
    ("aqi", "int"),
    ("pollutant", "string"),
    ("updated_at", "timestamp"),
)
ALERTS_BY_STATION_COLUMNS = (
    ("station_id", "string"),
    ("hour", "timestamp"),
    ("aqi_index", "string"),
    *ALERT_VALUE_COLUMNS,
)
ALERTS_BY_DAY_COLUMNS = (
    ("day", "date"),
    ("hour", "timestamp"),
    ("station_id", "string"),
    ("aqi_index", "string"),
    *ALERT_VALUE_COLUMNS,
)

READINGS_PRIMARY_KEY = (("station_id", "day"), ("ts",))
AGGREGATES_PRIMARY_KEY = (("station_id", "window_size", "bucket"), ("window_start",))
AGGREGATE_BUCKETS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("station_id", "string"),
    ("window_size", "string"),
    ("bucket", "string"),
)
AGGREGATE_BUCKETS_PRIMARY_KEY = (("station_id",), ("window_size", "bucket"))
STATIONS_PRIMARY_KEY = (("registry",), ("station_id",))
ALERTS_BY_STATION_PRIMARY_KEY = (("station_id",), ("hour", "aqi_index"))
ALERTS_BY_DAY_PRIMARY_KEY = (("day",), ("hour", "station_id", "aqi_index"))


def readings_table_columns() -> list[tuple[str, str]]:
    """(column, kind) of ``readings_by_station_day``: key columns, then every stored reading field, then AQI."""
    columns = [("station_id", "string"), ("day", "date"), ("ts", "timestamp")]
    keys = {name for name, _ in columns}
    columns += [(f.name, f.kind) for f in READING_FIELDS if f.in_cassandra and f.name not in keys]
    return columns + list(AQI_COLUMNS)


def window_bucket(window_size: str, window_start: datetime) -> str:
    """The aggregates partition a window belongs to: the UTC month (``YYYY-MM``) of a 1 h window's start,
    the UTC year (``YYYY``) of a 1 d window's start, so a partition holds at most 744 hourly or 366 daily
    rows. A naive ``window_start`` is UTC."""
    if window_start.tzinfo is not None:
        window_start = window_start.astimezone(UTC)
    if window_size == "1h":
        return f"{window_start.year:04d}-{window_start.month:02d}"
    if window_size == "1d":
        return f"{window_start.year:04d}"
    raise ValueError(f"window_size must be one of {WINDOW_SIZES}, got {window_size!r}")


def buckets_newest_first(window_size: str, start: datetime, end: datetime) -> list[str]:
    """The buckets of every window of ``window_size`` with ``start <= window_start < end``, the newest first."""
    months = {"1h": 1, "1d": 12}[window_size]
    last = end - timedelta(microseconds=1)
    first_month, last_month = start.year * 12 + start.month - 1, last.year * 12 + last.month - 1
    first_month -= first_month % months
    buckets = []
    for month in range(last_month, first_month - 1, -months):
        buckets.append(window_bucket(window_size, datetime(month // 12, month % 12 + 1, 1)))
    return buckets


def aggregates_table_columns() -> list[tuple[str, str]]:
    """(column, kind) of ``aggregates_by_station_bucket``."""
    columns = [
        ("station_id", "string"),
        ("window_size", "string"),
        ("bucket", "string"),
        ("window_start", "timestamp"),
        ("window_end", "timestamp"),
    ]
    columns += [(f"{p}_{stat}", kind) for p in POLLUTANT_FIELDS for stat, kind in AGGREGATE_STATS]
    return columns + list(AQI_COLUMNS) + list(NOWCAST_COLUMNS) + list(DAILY_COLUMNS) + [("updated_at", "timestamp")]


def cql_type(kind: str) -> str:
    return "date" if kind == "date" else CQL_TYPES[kind]


def _spark_schema(columns: list[tuple[str, str]], key: tuple[tuple[str, ...], ...]) -> StructType:
    from pyspark.sql.types import DateType

    key_columns = {c for part in key for c in part}
    return StructType(
        [
            StructField(name, DateType() if kind == "date" else spark_type(kind), nullable=name not in key_columns)
            for name, kind in columns
        ]
    )


def readings_row_spark_schema() -> StructType:
    """The DataFrame shape the CDC job writes to ``readings_by_station_day``."""
    return _spark_schema(readings_table_columns(), READINGS_PRIMARY_KEY)


def aggregates_row_spark_schema() -> StructType:
    """The DataFrame shape the CDC job writes to ``aggregates_by_station_bucket``."""
    return _spark_schema(aggregates_table_columns(), AGGREGATES_PRIMARY_KEY)


def aggregate_buckets_spark_schema() -> StructType:
    """The DataFrame shape the CDC job writes to ``aggregate_buckets_by_station``."""
    return _spark_schema(list(AGGREGATE_BUCKETS_COLUMNS), AGGREGATE_BUCKETS_PRIMARY_KEY)


def stations_row_spark_schema() -> StructType:
    """The DataFrame shape the CDC job writes to ``stations``."""
    return _spark_schema(list(STATION_COLUMNS), STATIONS_PRIMARY_KEY)


def alerts_by_station_spark_schema() -> StructType:
    """The DataFrame shape the CDC job writes to ``alerts_by_station``."""
    return _spark_schema(list(ALERTS_BY_STATION_COLUMNS), ALERTS_BY_STATION_PRIMARY_KEY)


def alerts_by_day_spark_schema() -> StructType:
    """The DataFrame shape the CDC job writes to ``alerts_by_day``."""
    return _spark_schema(list(ALERTS_BY_DAY_COLUMNS), ALERTS_BY_DAY_PRIMARY_KEY)


def primary_key_columns(key: tuple[tuple[str, ...], ...]) -> list[str]:
    """A primary key's columns in order (partition key, then clustering columns)."""
    return [c for part in key for c in part]


def cql_files() -> list[Path]:
    return sorted(CQL_DIR.glob("*.cql"))


SINGLE_NODE_REPLICATION: Mapping[str, str | int] = {"class": "SimpleStrategy", "replication_factor": 1}


def replication_cql(replication: Mapping[str, str | int]) -> str:
    """A replication map as CQL: ``{'class': 'SimpleStrategy', 'replication_factor': 3}``."""
    entries = (
        f"'{key}': {value}" if isinstance(value, int) else f"'{key}': '{value}'" for key, value in replication.items()
    )
    return "{" + ", ".join(entries) + "}"


def cql_statements(
    keyspace: str = "airquality",
    replication: Mapping[str, str | int] = SINGLE_NODE_REPLICATION,
    files: Iterable[Path] | None = None,
) -> list[str]:
    """Every statement of ``schemas/cql/*.cql`` in order (or of ``files``: the migration test builds an
    older schema), with the keyspace and its replication substituted
    (:meth:`jobs.config.CassandraConfig.replication`).

    Comments (``--`` lines) are dropped; statements are split on ``;``. All are idempotent
    (``IF NOT EXISTS``, ``ADD IF NOT EXISTS``), so applying them on every start is safe.
    """
    statements: list[str] = []
    for path in cql_files() if files is None else files:
        text = Template(path.read_text()).substitute(keyspace=keyspace, replication=replication_cql(replication))
        body = "\n".join(line for line in text.splitlines() if not line.strip().startswith("--"))
        statements += [s.strip() for s in body.split(";") if s.strip()]
    return statements
