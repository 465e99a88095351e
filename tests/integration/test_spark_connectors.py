"""Spark gets its connectors from jars/lib/spark (spark.jars) and each one talks to the real service."""

from __future__ import annotations

import time
import uuid

from kafka import KafkaProducer
from pyspark.errors import AnalysisException

from jobs.cassandra_roles import grant_application_roles
from jobs.kafka_auth import spark_kafka_options
from jobs.mongo_auth import with_tls
from stack.services import kafka_pipeline_config
from tests.support.cassandra import cassandra_session, stack_config

SINGLE_PARTITION = "com.mongodb.spark.sql.connector.read.partitioner.SinglePartitionPartitioner"


def test_kafka_source_reads_what_kafka_python_produced(stack, spark):
    topic = f"spark-smoke-{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(**stack.kafka_client("admin"), acks="all")
    for i in range(5):
        producer.send(topic, key=f"k{i}".encode(), value=f'{{"n": {i}}}'.encode())
    producer.flush()
    producer.close()

    rows = (
        spark.read.format("kafka")
        .options(**spark_kafka_options(kafka_pipeline_config(stack.cfg), "admin"))
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .load()
        .selectExpr("CAST(key AS STRING) AS key", "CAST(value AS STRING) AS value")
        .orderBy("key")
        .collect()
    )
    assert [(r.key, r.value) for r in rows] == [(f"k{i}", f'{{"n": {i}}}') for i in range(5)]


def test_mongo_connector_upserts_by_id(stack, spark):
    uri = with_tls(f"mongodb://{stack.cfg.host}:{stack.cfg.mongo_port}/?directConnection=true", stack.mongo_tls)
    collection = f"c{uuid.uuid4().hex[:8]}"
    first = spark.createDataFrame([("a", 1.0), ("b", 2.0)], "_id string, v double")
    second = spark.createDataFrame([("a", 3.0)], "_id string, v double")
    for df in (first, second):
        (
            df.write.format("mongodb")
            .mode("append")
            .option("connection.uri", uri)
            .option("database", "aqstream_smoke")
            .option("collection", collection)
            .option("operationType", "replace")
            .option("upsertDocument", "true")
            .save()
        )
    client = stack.mongo_client()
    try:
        docs = sorted(client.aqstream_smoke[collection].find(), key=lambda d: d["_id"])
    finally:
        client.close()
    assert docs == [{"_id": "a", "v": 3.0}, {"_id": "b", "v": 2.0}]

    read_back = (
        spark.read.format("mongodb")
        .option("connection.uri", uri)
        .option("database", "aqstream_smoke")
        .option("collection", collection)
        .option("partitioner", SINGLE_PARTITION)
        .load()
    )
    assert sorted((r["_id"], r["v"]) for r in read_back.collect()) == [("a", 3.0), ("b", 2.0)]


def test_cassandra_connector_writes_rows(stack, spark):
    table = f"t{uuid.uuid4().hex[:8]}"
    smoke = stack_config(stack, AQSTREAM__CASSANDRA__KEYSPACE="aqstream_smoke")
    cluster, session = cassandra_session(smoke)
    try:
        session.execute(
            "CREATE KEYSPACE IF NOT EXISTS aqstream_smoke "
            "WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"
        )
        grant_application_roles(session, smoke)  # the tests' Spark logs in as the CDC job's role
        session.execute(f"CREATE TABLE aqstream_smoke.{table} (k text PRIMARY KEY, v double)")
        df = spark.createDataFrame([("x", 1.5), ("y", 2.5)], "k string, v double")
        # the connector's long-lived session learns of a keyspace created a moment ago by schema
        # events, asynchronously; the jobs never race like this (the schema is set up beforehand)
        deadline = time.monotonic() + 60
        while True:
            try:
                df.write.format("org.apache.spark.sql.cassandra").mode("append").options(
                    keyspace="aqstream_smoke", table=table
                ).save()
                break
            except AnalysisException as exc:
                if "Couldn't find" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(1)
        rows = sorted((r.k, r.v) for r in session.execute(f"SELECT k, v FROM aqstream_smoke.{table}"))
    finally:
        cluster.shutdown()
    assert rows == [("x", 1.5), ("y", 2.5)]


def test_delta_round_trip(spark, tmp_path):
    path = str(tmp_path / "delta")
    spark.createDataFrame([(1, "a"), (2, "b")], "id int, s string").write.format("delta").save(path)
    assert sorted(tuple(r) for r in spark.read.format("delta").load(path).collect()) == [(1, "a"), (2, "b")]
