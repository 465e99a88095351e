"""The edges where the jobs write: MongoDB, Delta, Kafka, Cassandra. Each write is idempotent by key.

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

from jobs.config import CassandraConfig, MongoConfig

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


def merge_into_delta(rows: DataFrame, path: str, keys: list[str], prune_by: list[str] | None = None) -> None:
    """Insert the rows whose ``keys`` are not in the Delta table yet (creating it on first use).

    A MERGE instead of an append: a replayed batch or a re-sent reading finds its key and is
    skipped, so the table holds each key once. ``prune_by`` names columns that a key determines
    (``date`` for a reading): the condition then lists the batch's values of each as literals, so
    Delta skips, by the min/max statistics it keeps per file, every file that cannot hold a key of
    the batch. A join condition alone (``t.date = s.date``) skips nothing, and each MERGE would
    read the whole table, slower with every batch.
    """
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    spark = rows.sparkSession
    if not DeltaTable.isDeltaTable(spark, path):
        rows.limit(0).write.format("delta").mode("ignore").save(path)
    condition = F.expr(" AND ".join(f"t.`{k}` = s.`{k}`" for k in keys))
    for column in prune_by or []:
        values = [row[0] for row in rows.select(column).distinct().collect()]
        condition = condition & F.col(f"t.`{column}`").isin(values)
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


CASSANDRA_FORMAT = "org.apache.spark.sql.cassandra"


def write_cassandra(rows: DataFrame, cassandra: CassandraConfig, table: str, ignore_nulls: bool = False) -> None:
    """Upsert rows into a Cassandra table through the Spark Cassandra Connector's DataFrame writer.

    Every Cassandra write is an upsert by primary key, so a replayed batch rewrites the same values.
    ``ignore_nulls``: a null column is left as the table has it (a partial update) instead of being
    written as null. The connector's other settings (consistency, concurrency, batching) come from
    ``conf/spark-defaults.conf``.
    """
    (
        rows.write.format(CASSANDRA_FORMAT)
        .mode("append")
        .option("keyspace", cassandra.keyspace)
        .option("table", table)
        .option("spark.cassandra.output.ignoreNulls", str(ignore_nulls).lower())
        .save()
    )


def delete_from_cassandra(keys: DataFrame, cassandra: CassandraConfig, table: str) -> None:
    """Delete the rows whose full primary key is in ``keys`` (columns named as the table's key).

    The connector's DataFrame writer cannot delete, so this calls its RDD API
    (``RDDFunctions.deleteFromCassandra``) through the JVM: the deletes run on the executors with
    the same connection and write settings as the writer. Deleting a missing row is a no-op.
    """
    spark = keys.sparkSession
    jvm = spark._jvm  # noqa: SLF001 - the connector's delete has no Python API
    conf = spark.sparkContext._jsc.sc().getConf()  # noqa: SLF001
    connector = jvm.com.datastax.spark.connector
    functions = connector.RDDFunctions(keys._jdf.rdd())  # noqa: SLF001
    row_writer = getattr(getattr(jvm, "com.datastax.spark.connector.writer.SqlRowWriter$Factory$"), "MODULE$")
    functions.deleteFromCassandra(
        cassandra.keyspace,
        table,
        getattr(functions, "deleteFromCassandra$default$3")(),  # delete columns: none = the whole row
        getattr(functions, "deleteFromCassandra$default$4")(),  # key columns: the primary key
        connector.writer.WriteConf.fromSparkConf(conf),
        connector.cql.CassandraConnector.apply(conf),
        row_writer,
    )


def read_cassandra(spark: SparkSession, cassandra: CassandraConfig, table: str) -> DataFrame:
    """A Cassandra table as a DataFrame. Joined on its partition key (or full primary key) with a
    small DataFrame, it becomes a *direct join* (``CassandraSparkExtensions``, set in
    ``conf/spark-defaults.conf``): one keyed read per key instead of a table scan."""
    return (
        spark.read.format(CASSANDRA_FORMAT)
        .option("keyspace", cassandra.keyspace)
        .option("table", table)
        .option("directJoinSetting", "on")
        .load()
    )
