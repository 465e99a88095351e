"""The edges where the jobs write: MongoDB, Delta, Kafka. Each write is idempotent by key.

A failed write is retried a few times (the stores are idempotent, so a retry cannot double a
row), then the exception propagates: inside ``foreachBatch`` that fails the streaming query
loudly, and a restart resumes from the last committed batch of the checkpoint.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from pyspark.sql import DataFrame, SparkSession

from jobs.config import MongoConfig

log = logging.getLogger("aqstream.sinks")
T = TypeVar("T")


def with_retries(what: str, action: Callable[[], T], attempts: int = 4, first_delay_s: float = 2.0) -> T:
    """Run ``action``; on failure wait 2, 4, 8 s and try again; after ``attempts`` re-raise."""
    delay = first_delay_s
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except Exception as exc:  # the connectors raise Py4J-wrapped JVM exceptions of many types
            if attempt == attempts:
                log.error("%s failed %d times, giving up: %s", what, attempts, _first_line(exc))
                raise
            log.warning(
                "%s failed (attempt %d/%d), retrying in %.0fs: %s", what, attempt, attempts, delay, _first_line(exc)
            )
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def upsert_mongo(documents: DataFrame, mongo: MongoConfig) -> None:
    """Replace-or-insert each document by ``_id`` through the Mongo Spark Connector (never drops)."""
    (
        documents.write.format("mongodb")
        .mode("append")
        .option("connection.uri", mongo.uri)
        .option("database", mongo.database)
        .option("collection", mongo.collection)
        .option("operationType", "replace")
        .option("idFieldList", "_id")
        .option("upsertDocument", "true")
        .option("ordered", str(mongo.ordered).lower())
        .option("maxBatchSize", str(mongo.max_batch_size))
        .save()
    )


def merge_into_delta(rows: DataFrame, path: str, keys: list[str], partition_by: list[str] | None = None) -> None:
    """Insert the rows whose ``keys`` are not in the Delta table yet (creating it on first use).

    A MERGE instead of an append: a replayed batch or a re-sent reading finds its key and is
    skipped, so the table holds each key once.
    """
    from delta.tables import DeltaTable

    spark = rows.sparkSession
    if not DeltaTable.isDeltaTable(spark, path):
        writer = rows.limit(0).write.format("delta").mode("ignore")
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        writer.save(path)
    condition = " AND ".join(f"t.`{k}` = s.`{k}`" for k in keys + (partition_by or []))
    DeltaTable.forPath(spark, path).alias("t").merge(rows.alias("s"), condition).whenNotMatchedInsertAll().execute()


def produce_to_kafka(messages: DataFrame, bootstrap_servers: str, topic: str) -> None:
    """Batch-write ``key``/``value``/``headers`` rows to a Kafka topic (at-least-once)."""
    (
        messages.write.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap_servers)
        .option("kafka.acks", "all")
        .option("topic", topic)
        .save()
    )


def read_delta(spark: SparkSession, path: str) -> DataFrame:
    return spark.read.format("delta").load(path)
