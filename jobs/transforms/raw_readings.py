"""Pure transforms of the raw topic: decode, parse with the explicit schema, validate, split.

Input is what Spark's Kafka source yields (key, value, topic, partition, offset, timestamp).
Nothing here does I/O or reads configuration: limits and the clock are arguments.

Every record ends in exactly one of two places: a valid reading, or a quarantine row that keeps
the original bytes, the Kafka coordinates and the first reason it failed, as ``code: detail``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from jobs.transforms.quarantine import first_of, quarantine_rows, reason

CORRUPT_COLUMN = "_corrupt_record"

# Reason codes, in the order they are checked: the first that applies is the one recorded.
EMPTY = "empty_message"
TOO_LARGE = "too_large"
NOT_UTF8 = "not_utf8"
UNPARSEABLE = "unparseable_json"
WRONG_TYPE = "wrong_type"
MISSING_FIELD = "missing_field"
UNKNOWN_SCHEMA_VERSION = "unknown_schema_version"
OUT_OF_RANGE = "out_of_range"
FUTURE_TIMESTAMP = "future_timestamp"
REASON_CODES = (
    EMPTY,
    TOO_LARGE,
    NOT_UTF8,
    UNPARSEABLE,
    WRONG_TYPE,
    MISSING_FIELD,
    UNKNOWN_SCHEMA_VERSION,
    OUT_OF_RANGE,
    FUTURE_TIMESTAMP,
)


_NUMERIC = (DoubleType, FloatType, IntegerType, LongType)


def decode_kafka_value(kafka_rows: DataFrame) -> DataFrame:
    """Add ``value_text``: the value decoded as UTF-8 (invalid bytes become U+FFFD; checked later)."""
    return kafka_rows.withColumn("value_text", F.col("value").cast("string"))


def parse_readings(decoded: DataFrame, reading_schema: StructType) -> DataFrame:
    """Add ``reading``: ``value_text`` parsed with the explicit schema, never inferred.

    PERMISSIVE parsing keeps the fields that do parse and sets ``_corrupt_record`` when any
    does not, so a wrong type in one field is told apart from JSON that does not parse at all.
    """
    schema_with_corrupt = StructType([*reading_schema.fields, StructField(CORRUPT_COLUMN, StringType(), True)])
    return decoded.withColumn(
        "reading",
        F.from_json(
            "value_text", schema_with_corrupt, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT_COLUMN}
        ),
    )


def with_quarantine_reason(
    parsed: DataFrame,
    reading_schema: StructType,
    *,
    required_fields: Iterable[str],
    supported_schema_versions: Iterable[int],
    value_ranges: Mapping[str, tuple[float, float]],
    max_record_bytes: int,
    now: Column,
    future_tolerance: str,
) -> DataFrame:
    """Add ``quarantine_reason`` (null for a valid reading) to the output of :func:`parse_readings`."""
    value, text, reading = F.col("value"), F.col("value_text"), F.col("reading")
    corrupt = reading.getField(CORRUPT_COLUMN)
    looks_like_object = F.ltrim(text).startswith("{")
    json_parses = F.get_json_object(text, "$").isNotNull()

    checks: list[tuple[Column, Column]] = [
        (value.isNull() | (F.length(value) == 0), F.lit(f"{EMPTY}: the message has no value")),
        (
            F.length(value) > max_record_bytes,
            reason(TOO_LARGE, F.format_string(f"%d bytes > {max_record_bytes}", F.length(value))),
        ),
        (F.encode(text, "UTF-8") != value, F.lit(f"{NOT_UTF8}: the value is not valid UTF-8")),
        (~looks_like_object, F.lit(f"{UNPARSEABLE}: not a JSON object")),
        (~json_parses, F.lit(f"{UNPARSEABLE}: malformed or truncated JSON")),
    ]
    # A field present in the JSON but null after parsing had a type the schema does not accept.
    for field in reading_schema.fields:
        present = F.get_json_object(text, f"$.{field.name}").isNotNull()
        checks.append(
            (
                corrupt.isNotNull() & present & reading.getField(field.name).isNull(),
                reason(
                    WRONG_TYPE,
                    F.concat(
                        F.lit(f"{field.name} is not {field.dataType.simpleString()}: "),
                        F.substring(F.get_json_object(text, f"$.{field.name}"), 1, 80),
                    ),
                ),
            )
        )
    for name in required_fields:
        checks.append((reading.getField(name).isNull(), F.lit(f"{MISSING_FIELD}: {name}")))
    versions = list(supported_schema_versions)
    checks.append(
        (
            ~reading.getField("schema_version").isin(versions),
            reason(
                UNKNOWN_SCHEMA_VERSION,
                F.concat(
                    F.lit("schema_version "),
                    reading.getField("schema_version").cast("string"),
                    F.lit(f" not in {versions}"),
                ),
            ),
        )
    )
    for name, (low, high) in value_ranges.items():
        field_value = reading.getField(name)
        checks.append(
            (
                field_value.isNotNull() & (F.isnan(field_value) | (field_value < low) | (field_value > high)),
                reason(
                    OUT_OF_RANGE,
                    F.format_string(f"{name}=%s outside [{low:g}, {high:g}]", field_value.cast("string")),
                ),
            )
        )
    checks.append(
        (
            reading.getField("ts") > now + F.expr(f"INTERVAL {future_tolerance}"),
            reason(FUTURE_TIMESTAMP, F.concat(F.lit("ts "), reading.getField("ts").cast("string"))),
        )
    )
    return parsed.withColumn("quarantine_reason", first_of(checks))


def valid_readings(checked: DataFrame, reading_schema: StructType) -> DataFrame:
    """The readings that passed every check, as flat columns of the reading schema."""
    return valid_readings_with(checked, reading_schema)


def valid_readings_with(checked: DataFrame, reading_schema: StructType, *also: Column) -> DataFrame:
    """:func:`valid_readings` plus the columns ``also`` of the checked rows."""
    return checked.where(F.col("quarantine_reason").isNull()).select(
        *[F.col("reading").getField(f.name).alias(f.name) for f in reading_schema.fields], *also
    )


def quarantine_records(checked: DataFrame, quarantined_at: Column) -> DataFrame:
    """The records that failed a check: original bytes, Kafka coordinates, reason."""
    return quarantine_rows(checked.where(F.col("quarantine_reason").isNotNull()), quarantined_at)


def drop_duplicate_readings(readings: DataFrame) -> DataFrame:
    """One row per event_id within the batch (the sinks upsert by it, so later batches are harmless)."""
    return readings.dropDuplicates(["event_id"])


def to_mongo_documents(readings: DataFrame) -> DataFrame:
    """The MongoDB document: ``_id = event_id``, the canonical reading, the source record under ``raw``."""
    return readings.select(F.col("event_id").alias("_id"), *readings.columns)


BRONZE_COORDINATES = ("kafka_topic", "kafka_partition", "kafka_offset")


def to_bronze_rows(checked: DataFrame, reading_schema: StructType) -> DataFrame:
    """Delta bronze rows: every valid Kafka record (duplicates too: bronze keeps what arrived), as
    the reading plus its UTC ``date`` (filter on it: Delta skips files by it) and its Kafka
    coordinates, which make each row unique."""
    return valid_readings_with(checked, reading_schema, F.col("topic"), F.col("partition"), F.col("offset")).select(
        *[f.name for f in reading_schema.fields],
        F.to_date("ts").alias("date"),
        *[F.col(c).alias(name) for c, name in zip(("topic", "partition", "offset"), BRONZE_COORDINATES, strict=True)],
    )


def bronze_readings(bronze: DataFrame) -> DataFrame:
    """The bronze table as one row per ``event_id``: its last record (the collector keys by station,
    so the records of one reading share a partition and the highest offset is the latest)."""
    latest = Window.partitionBy("event_id").orderBy(F.col("kafka_partition").desc(), F.col("kafka_offset").desc())
    return bronze.withColumn("_n", F.row_number().over(latest)).where(F.col("_n") == 1).drop("_n")


def to_quarantine_kafka_messages(quarantined: DataFrame) -> DataFrame:
    """Kafka messages for the quarantine topic: the original key and bytes, the reason in headers."""
    return quarantined.select(
        F.col("key"),
        F.coalesce(F.col("value"), F.lit(b"").cast("binary")).alias("value"),
        F.array(
            F.struct(F.lit("aq.reason").alias("key"), F.encode(F.col("reason"), "UTF-8").alias("value")),
            F.struct(F.lit("aq.source.topic").alias("key"), F.encode(F.col("topic"), "UTF-8").alias("value")),
            F.struct(
                F.lit("aq.source.partition").alias("key"),
                F.encode(F.col("partition").cast("string"), "UTF-8").alias("value"),
            ),
            F.struct(
                F.lit("aq.source.offset").alias("key"), F.encode(F.col("offset").cast("string"), "UTF-8").alias("value")
            ),
        ).alias("headers"),
    )
