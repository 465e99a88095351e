"""One micro-batch of classified CDC changes routed to Cassandra: the winning change per reading,
and the readings table's upsert, patch and delete rows.

Input is :func:`jobs.transforms.cdc_changes.decode_changes`'s output; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from jobs.driver_rows import micros
from jobs.transforms.cdc_changes import PATCH, ROUTED_KINDS
from schemas.cassandra import AQI_COLUMNS, readings_table_columns
from schemas.reading import READING_FIELDS, spark_type

# --- routing within a micro-batch ------------------------------------------------------------------


def last_changes(changes: DataFrame) -> DataFrame:
    """Per reading, the change that wins within the batch: the last upsert/delete by Kafka order,
    plus ``patch`` = the patches after it merged (last non-null value per field).

    Debezium keys by ``_id``, so the changes of one document are in one partition, in offset order.
    Returns at most two rows per ``event_id``: the winning upsert|delete, then the merged patch to
    write over it. One pass of window functions (no self-join, which Catalyst plans badly here).
    """
    pos = F.struct(F.col("partition"), F.col("offset"))
    by_id = Window.partitionBy("event_id")
    ordered = by_id.orderBy(pos).rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
    is_full = F.col("change_kind") != PATCH
    last_full = F.max(F.when(is_full, pos)).over(by_id)
    applies = ~is_full & (F.col("_last_full").isNull() | (pos > F.col("_last_full")))
    merged = F.struct(
        *[
            F.last(F.when(F.col("_applies"), F.col("document").getField(f)), ignorenulls=True).over(ordered).alias(f)
            for f in ["_id", *[s.name for s in READING_FIELDS]]
        ]
    )
    return (
        changes.where(F.col("change_kind").isin(*ROUTED_KINDS))
        .withColumn("_last_full", last_full)
        .withColumn("_applies", applies)
        .withColumn("_last_patch", F.max(F.when(F.col("_applies"), pos)).over(by_id))
        .withColumn("_merged", merged)
        .where((is_full & (pos == F.col("_last_full"))) | (F.col("_applies") & (pos == F.col("_last_patch"))))
        .withColumn("document", F.when(is_full, F.col("document")).otherwise(F.col("_merged")))
        .drop("_last_full", "_applies", "_last_patch", "_merged")
    )


def to_reading_rows(upserts: DataFrame, with_aqi: Callable[[DataFrame], DataFrame] | None = None) -> DataFrame:
    """``readings_by_station_day`` rows (key from ``event_id``; day = UTC date of ts)."""
    key = {"station_id": F.col("station_id"), "day": F.col("day"), "ts": F.col("event_time")}
    aqi_names = {name for name, _ in AQI_COLUMNS}
    reading_cols = [
        key[name] if name in key else F.col("document").getField(name)
        for name, _ in readings_table_columns()
        if name not in aqi_names
    ]
    names = [name for name, _ in readings_table_columns() if name not in aqi_names]
    rows = upserts.select(*[c.alias(n) for c, n in zip(reading_cols, names, strict=True)])
    return _add_aqi(rows, with_aqi).select(*[name for name, _ in readings_table_columns()])


def to_patch_rows(patches: DataFrame) -> DataFrame:
    """The key plus the fields a patch names (the rest null: written with ``ignoreNulls``, untouched).

    AQI columns are not recomputed from a partial document: they stay as the last full write left
    them (an update through the real connector in ``change_streams_update_full`` mode is a full
    document, i.e. an upsert, and does recompute them).
    """
    names = [name for name, _ in readings_table_columns() if name not in {n for n, _ in AQI_COLUMNS}]
    key = {"station_id": F.col("station_id"), "day": F.col("day"), "ts": F.col("event_time")}
    return patches.select(*[(key[n] if n in key else F.col("document").getField(n)).alias(n) for n in names])


def delete_keys(deletes: DataFrame) -> DataFrame:
    """The primary key of each deleted reading, read back from its ``_id`` (= ``event_id``)."""
    return deletes.select(F.col("station_id"), F.col("day"), F.col("event_time").alias("ts"))


def is_late(watermark: datetime) -> Column:
    """True for a change whose event time is older than the query's event-time watermark (naive UTC).

    Compared as zero-padded epoch-microsecond strings, because Spark inlines a timestamp literal in
    the generated code: a watermark that moves every batch made every batch compile new classes
    that the JIT never warmed, while a string literal is passed by reference and the code stays the
    same (docs/streaming.md). An event time before 1970 sorts first ('-' < '0'): late, as it should be.
    """
    return F.lpad(F.unix_micros("event_time").cast("string"), 20, "0") < F.lit(f"{micros(watermark):020d}")


# --- AQI -------------------------------------------------------------------------------------------------


def _null_columns(df: DataFrame, columns: Iterable[tuple[str, str]]) -> DataFrame:
    return df.select("*", *[F.lit(None).cast(spark_type(kind)).alias(name) for name, kind in columns])


def _add_aqi(rows: DataFrame, with_aqi: Callable[[DataFrame], DataFrame] | None) -> DataFrame:
    return with_aqi(rows) if with_aqi is not None else _null_columns(rows, AQI_COLUMNS)
