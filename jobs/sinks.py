"""The edges where the jobs write: MongoDB, Delta, Kafka, Cassandra. Each write is idempotent by key.

The jobs retry a failed write a few times (jobs/retries.py: the stores are idempotent, so a retry
cannot double a row), then the exception propagates: inside ``foreachBatch`` that fails the streaming
query loudly, and a restart resumes from the last committed batch of the checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from jobs.config import CassandraConfig, MongoConfig

# attempts of each Cassandra step of the CDC job (the store's statements, its session, the readings
# writes): a write fails within a second or two while Cassandra is down (connection refused). 7 attempts wait
# 2 + 4 + ... + 64 = 126 s: a node restart is ridden through (the fault suite stops Cassandra for 30 s,
# and it takes about as long again to start), a longer outage fails the batch loudly, naming the step
CASSANDRA_ATTEMPTS = 7


def upsert_mongo(documents: DataFrame, mongo: MongoConfig, uri: str) -> None:
    """Replace-or-insert each document by ``_id`` through the Mongo Spark Connector (never drops). ``uri``: the
    job's connection string, with its login when ``mongo.authentication`` is on (jobs/mongo_auth.py)."""
    (
        documents.write.format("mongodb")
        .mode("append")
        .option("connection.uri", uri)
        .option("database", mongo.database)
        .option("collection", mongo.collection)
        .option("operationType", "replace")
        .option("idFieldList", "_id")
        .option("upsertDocument", "true")
        .option("ordered", str(mongo.ordered).lower())
        .option("maxBatchSize", str(mongo.max_batch_size))
        .save()
    )


@dataclass(frozen=True)
class DeltaTxn:
    """Delta's idempotent-write key: a table records the highest ``version`` written per ``app_id``
    and skips any write with a version not above it (a replayed micro-batch)."""

    app_id: str
    version: int


def append_to_delta(rows: DataFrame, path: str, txn: DeltaTxn) -> None:
    """Append ``rows`` to the Delta table at ``path`` (created on first use) once per ``txn``.

    Delta's own idempotent write (``txnAppId``/``txnVersion``): a batch that is replayed after a
    crash finds its version already recorded in the table's log and writes nothing, without reading
    a data file; an append never rewrites old files, so its cost does not grow with the table.
    https://docs.delta.io/latest/delta-streaming.html#idempotent-table-writes-in-foreachbatch
    A column the rows have and the table has not yet (a field added to the reading) is added to the
    table (``mergeSchema``); older rows read it as null.
    """
    (
        rows.write.format("delta")
        .mode("append")
        .option("mergeSchema", "true")
        .option("txnAppId", txn.app_id)
        .option("txnVersion", txn.version)
        .save(path)
    )


def produce_to_kafka(messages: DataFrame, connection: Mapping[str, str], topic: str) -> None:
    """Batch-write ``key``/``value``/``headers`` rows to a Kafka topic (at-least-once), connected with
    ``connection`` (the principal's options: jobs.kafka_auth.spark_kafka_options)."""
    (messages.write.format("kafka").options(**connection).option("kafka.acks", "all").option("topic", topic).save())


def read_delta(spark: SparkSession, path: str) -> DataFrame:
    return spark.read.format("delta").load(path)


CASSANDRA_FORMAT = "org.apache.spark.sql.cassandra"


def write_cassandra(rows: DataFrame, cassandra: CassandraConfig, table: str, ignore_nulls: bool = False) -> None:
    """Upsert rows into a Cassandra table through the Spark Cassandra Connector's DataFrame writer.

    Every Cassandra write is an upsert by primary key, so a replayed batch rewrites the same values.
    ``ignore_nulls``: a null column is left as the table has it (a partial update) instead of being
    written as null. The connector's consistency levels come from ``[cassandra]`` (jobs/session.py), its
    concurrency and batching from ``conf/spark-defaults.conf``.
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


class KafkaRecordSender:
    """Keyed records to one Kafka topic from the driver, through a kafka-python producer kept between
    batches: for the few records a batch computes on the driver (the CDC job's alerts), where a
    Spark write would cost a job per batch. :meth:`send` returns once Kafka has acknowledged every
    record (``acks=all``), or raises; the idempotent producer keeps its own retries from
    duplicating a record, a retry of the whole send may (at-least-once).

    The topic must exist (``python -m jobs.setup topics`` creates it, with its settings): the
    producer may not auto-create it, and the first send checks it with an admin client.
    """

    def __init__(self, client: Mapping[str, Any], topic: str, setting: str):
        self.client = client  # kafka-python settings: the principal's (jobs.kafka_auth.kafka_python_settings)
        self.topic = topic
        self.setting = setting  # the config field naming the topic, for the error when it is missing
        self._producer = None

    def _connect(self):
        from kafka import KafkaAdminClient, KafkaProducer

        if self._producer is None:
            admin = KafkaAdminClient(**self.client, client_id="aqstream-topic-check")
            try:
                if self.topic not in admin.list_topics():
                    raise RuntimeError(
                        f"Kafka topic {self.topic!r} ({self.setting}) does not exist: "
                        "`python -m jobs.setup topics` creates it"
                    )
            finally:
                admin.close()
            self._producer = KafkaProducer(
                **self.client,
                acks="all",
                enable_idempotence=True,
                # kafka-python guarantees idempotence only with one request in flight per connection
                max_in_flight_requests_per_connection=1,
                allow_auto_create_topics=False,
                linger_ms=5,
            )
        return self._producer

    def send(self, records: list[tuple[str, bytes]]) -> None:
        if not records:
            return
        producer = self._connect()
        try:
            futures = [producer.send(self.topic, key=key.encode(), value=value) for key, value in records]
            producer.flush()
            for future in futures:
                future.get(timeout=0)  # done after flush: raises the record's delivery error, if any
        except Exception:
            self.close()  # a retry starts on a fresh producer
            raise

    def close(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            producer.close(timeout=5)
