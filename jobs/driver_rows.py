"""Rows held on the driver as dicts ↔ small DataFrames for the Cassandra connector.

Times travel as epoch microseconds (``timestamp_micros`` / ``unix_micros``), so no local time zone
touches them: the driver's rows hold naive UTC ``datetime`` values, the tables UTC timestamps.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StructField, StructType, TimestampType

EPOCH = datetime(1970, 1, 1)


def micros(ts: datetime) -> int:
    return (ts - EPOCH) // timedelta(microseconds=1)


def from_micros(value: int | None) -> datetime | None:
    return None if value is None else EPOCH + timedelta(microseconds=value)


def timestamp_columns(schema: StructType) -> list[str]:
    return [f.name for f in schema.fields if isinstance(f.dataType, TimestampType)]


def rows_frame(spark: SparkSession, rows: list[Mapping[str, Any]], schema: StructType) -> DataFrame:
    """``rows`` (dicts with every field of ``schema``) as a DataFrame of ``schema``."""
    names = schema.fieldNames()
    times = set(timestamp_columns(schema))
    as_longs = StructType(
        [StructField(f.name, LongType() if f.name in times else f.dataType, f.nullable) for f in schema]
    )
    frame = spark.createDataFrame(
        [tuple((None if row[n] is None else micros(row[n])) if n in times else row[n] for n in names) for row in rows],
        as_longs,
    )
    return frame.select(*[F.expr(f"timestamp_micros({n})").alias(n) if n in times else F.col(n) for n in names])


def select_with_micros(frame: DataFrame, columns: list[str], times: list[str]) -> DataFrame:
    """``frame``'s ``columns``, the ``times`` among them as epoch microseconds (for :func:`collect_rows`)."""
    return frame.select(*[F.unix_micros(c).alias(c) if c in times else F.col(c) for c in columns])


def collect_rows(frame: DataFrame, times: list[str]) -> list[dict[str, Any]]:
    """A frame of :func:`select_with_micros` as dicts on the driver, the ``times`` back as datetimes."""
    rows = []
    for row in frame.collect():
        values = row.asDict()
        for c in times:
            values[c] = from_micros(values[c])
        rows.append(values)
    return rows
