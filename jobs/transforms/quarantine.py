"""The quarantine both jobs share: the first failing check as ``code: detail``, and the row kept.

A quarantine row holds what is needed to understand and replay the record: the original key and
bytes, the Kafka coordinates, the reason code and the full reason.
"""

from __future__ import annotations

from collections.abc import Iterable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import BinaryType, IntegerType, LongType, StringType, StructField, StructType, TimestampType

QUARANTINE_SCHEMA = StructType(
    [
        StructField("topic", StringType(), False),
        StructField("partition", IntegerType(), False),
        StructField("offset", LongType(), False),
        StructField("kafka_timestamp", TimestampType(), True),
        StructField("key", BinaryType(), True),
        StructField("value", BinaryType(), True),
        StructField("reason_code", StringType(), False),
        StructField("reason", StringType(), False),
        StructField("quarantined_at", TimestampType(), False),
    ]
)


def first_of(checks: Iterable[tuple[Column, Column]]) -> Column:
    """CASE WHEN c1 THEN v1 WHEN c2 THEN v2 … END: the value of the first check that holds, else null."""
    expr = None
    for condition, value in checks:
        expr = F.when(condition, value) if expr is None else expr.when(condition, value)
    return expr if expr is not None else F.lit(None).cast("string")


def reason(code: str, detail: Column | str) -> Column:
    """``code: detail`` (the code alone is what reports group by)."""
    detail_col = F.lit(detail) if isinstance(detail, str) else detail
    return F.concat(F.lit(f"{code}: "), detail_col)


def quarantine_rows(rejected: DataFrame, quarantined_at: Column) -> DataFrame:
    """Kafka rows carrying a ``quarantine_reason`` → rows of :data:`QUARANTINE_SCHEMA`."""
    why = F.col("quarantine_reason")
    return rejected.select(
        F.col("topic"),
        F.col("partition"),
        F.col("offset"),
        F.col("timestamp").alias("kafka_timestamp"),
        F.col("key"),
        F.col("value"),
        F.substring_index(why, ":", 1).alias("reason_code"),
        why.alias("reason"),
        quarantined_at.alias("quarantined_at"),
    )
