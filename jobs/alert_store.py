"""The CDC job's alerts at their edges: the stored alerts read by key, the changes sent to Kafka, then
written to (or deleted from) both Cassandra tables.

Order, for no loss: Kafka first, Cassandra second. The store is what the next batch compares with,
so a crash between the two leaves the change unstored and the replayed batch sends it again, the
same key and the same bytes (``alerts.alert_record`` holds no wall-clock time): the topic is
at-least-once per key, and compacted, so it keeps the last record of each key. The reverse order
could lose a change: stored, then the crash, then a replay that finds nothing left to send.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql.types import StructType

from jobs.config import PipelineConfig
from jobs.driver_rows import collect_rows, micros, rows_frame, select_with_micros
from jobs.runner import StepTimes
from jobs.sinks import KafkaRecordSender, delete_from_cassandra, read_cassandra, with_retries, write_cassandra
from jobs.transforms import alerts as AL
from schemas.cassandra import (
    ALERTS_BY_DAY_PRIMARY_KEY,
    ALERTS_BY_DAY_TABLE,
    ALERTS_BY_STATION_PRIMARY_KEY,
    ALERTS_BY_STATION_TABLE,
    alerts_by_day_spark_schema,
    alerts_by_station_spark_schema,
    primary_key_columns,
)

KEY = primary_key_columns(ALERTS_BY_STATION_PRIMARY_KEY)  # station_id, hour, aqi_index
DAY_KEY = primary_key_columns(ALERTS_BY_DAY_PRIMARY_KEY)  # day, hour, station_id, aqi_index


def alerts_sender(config: PipelineConfig) -> KafkaRecordSender:
    return KafkaRecordSender(config.kafka.bootstrap_servers, config.kafka.alerts_topic, "kafka.alerts_topic")


def read_stored_alerts(
    spark: SparkSession, config: PipelineConfig, keys: set[AL.AlertKey]
) -> dict[AL.AlertKey, dict[str, Any]]:
    """The ``alerts_by_station`` rows of ``keys``: one keyed read per row (its full primary key)."""
    if not keys:
        return {}
    cas = config.cassandra
    wanted = spark.createDataFrame(
        [(station, micros(hour), index) for station, index, hour in keys],
        "station_id string, hour_us long, aqi_index string",
    ).selectExpr("station_id", "timestamp_micros(hour_us) AS hour", "aqi_index")
    stored = wanted.join(read_cassandra(spark, cas, ALERTS_BY_STATION_TABLE), KEY)
    rows = collect_rows(select_with_micros(stored, [*KEY, *AL.COMPARED], ["hour"]), ["hour"])
    return {(r["station_id"], r["aqi_index"], r["hour"]): r for r in rows}


def apply_alert_changes(
    spark: SparkSession,
    config: PipelineConfig,
    changes: list[tuple[str, dict[str, Any]]],
    sender: KafkaRecordSender,
    updated_at: datetime,
    times: StepTimes,
) -> None:
    """Send every change to Kafka, then upsert the raised and corrected alerts into both tables and
    delete the retracted ones from both."""
    if not changes:
        return
    with times.step("send alerts"):
        records = [AL.alert_record(status, alert) for status, alert in changes]
        with_retries("kafka alerts send", lambda: sender.send(records))
    cas = config.cassandra
    upserts = [{**alert, "updated_at": updated_at} for status, alert in changes if status != AL.RETRACTED]
    retracted = [alert for status, alert in changes if status == AL.RETRACTED]
    with times.step("write alerts"):
        for table, schema, as_row in (
            (ALERTS_BY_STATION_TABLE, alerts_by_station_spark_schema(), dict),
            (ALERTS_BY_DAY_TABLE, alerts_by_day_spark_schema(), AL.by_day_row),
        ):
            if upserts:
                rows = rows_frame(spark, [as_row(a) for a in upserts], schema)
                with_retries(
                    f"cassandra {table} upsert", lambda rows=rows, table=table: write_cassandra(rows, cas, table)
                )
            if retracted:
                key = KEY if table == ALERTS_BY_STATION_TABLE else DAY_KEY
                keys = rows_frame(spark, [as_row(a) for a in retracted], StructType([schema[c] for c in key]))
                with_retries(
                    f"cassandra {table} delete",
                    lambda keys=keys, table=table: delete_from_cassandra(keys, cas, table),
                )


def status_counts(changes: list[tuple[str, Mapping[str, Any]]]) -> dict[str, int]:
    """``alerts_raised``, ``alerts_corrected``, ``alerts_retracted``: a batch's alert changes by status."""
    counts = Counter(status for status, _ in changes)
    return {f"alerts_{status}": counts[status] for status in AL.STATUSES}
