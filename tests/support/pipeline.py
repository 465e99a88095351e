"""Helpers shared by the integration and e2e tiers: isolated pipeline configs, producing, reading stores."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from pyspark.sql.types import BinaryType, IntegerType, LongType, StringType, StructField, StructType, TimestampType

from jobs.config import PipelineConfig, load_config
from jobs.kafka_acls import apply_acls
from jobs.kafka_auth import kafka_python_settings
from jobs.setup import alerts_topic, apply_cql
from tests.support.cassandra import cassandra_session, stack_client_env

REPO_ROOT = Path(__file__).resolve().parents[2]

# The rows Spark's Kafka source yields: what both jobs' batch functions receive.
KAFKA_SOURCE_SCHEMA = StructType(
    [
        StructField("key", BinaryType(), True),
        StructField("value", BinaryType(), True),
        StructField("topic", StringType(), False),
        StructField("partition", IntegerType(), False),
        StructField("offset", LongType(), False),
        StructField("timestamp", TimestampType(), True),
    ]
)


def isolated_config(stack, tmp_path: Path, partitions: int = 3, **overrides: str) -> tuple[PipelineConfig, dict]:
    """A pipeline config whose topics, database, keyspace and paths belong to one test alone.

    Returns the config and the AQSTREAM__* environment that produces it (for subprocess jobs).
    """
    tag = uuid.uuid4().hex[:8]
    env = {
        "AQSTREAM__KAFKA__BOOTSTRAP_SERVERS": stack.kafka_bootstrap,
        "AQSTREAM__KAFKA__RAW_TOPIC": f"t{tag}.raw",
        "AQSTREAM__KAFKA__QUARANTINE_TOPIC": f"t{tag}.quarantine",
        "AQSTREAM__KAFKA__CDC_TOPIC": f"t{tag}.cdc",
        "AQSTREAM__KAFKA__ALERTS_TOPIC": f"t{tag}.alerts",
        "AQSTREAM__KAFKA__PARTITIONS": str(partitions),
        "AQSTREAM__MONGO__URI": f"mongodb://{stack.cfg.host}:{stack.cfg.mongo_port}/?directConnection=true",
        "AQSTREAM__MONGO__DATABASE": f"aq_{tag}",
        "AQSTREAM__CASSANDRA__HOST": stack.cfg.host,
        "AQSTREAM__CASSANDRA__PORT": str(stack.cfg.cassandra_port),
        "AQSTREAM__CASSANDRA__KEYSPACE": f"aq_{tag}",
        "AQSTREAM__PATHS__CHECKPOINT_ROOT": str(tmp_path / "checkpoints"),
        "AQSTREAM__PATHS__BRONZE": str(tmp_path / "bronze"),
        "AQSTREAM__PATHS__QUARANTINE": str(tmp_path / "quarantine"),
        "AQSTREAM__PATHS__CDC_QUARANTINE": str(tmp_path / "cdc_quarantine"),
        # the jobs' Spark event logs beside the test's other files, not in the repo's .runs/spark-events
        "AQSTREAM__MONITORING__EVENT_LOG_DIR": str(tmp_path / "spark-events"),
        **stack_client_env(stack),  # the passwords this stack was set up with (.state-faults/secrets too)
        **{f"AQSTREAM__{k.upper()}": v for k, v in overrides.items()},
    }
    config = load_config(environ=env)
    admin = KafkaAdminClient(**kafka_python_settings(config, "admin"))
    try:
        admin.create_topics(
            [
                NewTopic(topic, num_partitions=partitions, replication_factor=1)
                for topic in (config.kafka.raw_topic, config.kafka.quarantine_topic)
            ]
            + [alerts_topic(config)]  # compacted, as jobs.setup creates it: the CDC job sends its alerts there
        )
    finally:
        admin.close()
    apply_acls(config)  # as `jobs.setup topics` does: each principal's ACLs on this test's topics
    return config, env


@contextmanager
def isolated_cdc(stack, tmp_path: Path) -> Iterator[tuple[PipelineConfig, dict, object]]:
    """An isolated config (``isolated_config``) with its CDC topic created and its CQL applied, for a CDC job
    fed directly; yields (config, env, cassandra session) and drops the keyspace after."""
    config, env = isolated_config(stack, tmp_path)
    admin = KafkaAdminClient(**kafka_python_settings(config, "admin"))
    try:
        admin.create_topics([NewTopic(config.kafka.cdc_topic, num_partitions=3, replication_factor=1)])
    finally:
        admin.close()
    apply_cql(config)
    cluster, session = cassandra_session(config)
    try:
        yield config, env, session
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {config.cassandra.keyspace}", timeout=120)
        cluster.shutdown()


def replay_to_kafka(config: PipelineConfig, dataset: str, files: list[Path], limit: int, out: Path) -> list[dict]:
    """Run the real replay collector into the raw topic; return the readings it sent (its --out copy)."""
    args = ["replay", "--dataset", dataset, "--limit", str(limit), "--files", *map(str, files)]
    return collect_to_kafka(config, args, out)


def collect_to_kafka(config: PipelineConfig, args: list[str], out: Path) -> list[dict]:
    """Run a real collector command (``python -m collectors <args>``) into the raw topic; return the readings
    it sent: the same command's --out copy (its readings and event ids do not depend on when it runs)."""
    common = [sys.executable, "-m", "collectors", *args]
    subprocess.run([*common, "--out", str(out)], check=True, cwd=REPO_ROOT, timeout=300)
    subprocess.run(
        [
            *common,
            "--bootstrap",
            config.kafka.bootstrap_servers,
            "--topic",
            config.kafka.raw_topic,
            "--spool-dir",
            str(out.parent / "spool"),
        ],
        check=True,
        cwd=REPO_ROOT,
        timeout=300,
    )
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]


def produce(client: dict, topic: str, messages: list[tuple[bytes | None, bytes | None]]) -> None:
    """``messages`` to ``topic`` with ``client`` (kafka-python settings of a principal: jobs.kafka_auth)."""
    producer = KafkaProducer(**client, acks="all", max_request_size=4 * 1024 * 1024)
    try:
        for key, value in messages:
            producer.send(topic, key=key, value=value)
        producer.flush()
    finally:
        producer.close()


def parse_ts(text: str) -> datetime:
    """The readings' ISO UTC strings as the naive UTC datetimes pymongo and Spark give back."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None)


def bronze_contents(spark, path: str) -> tuple[list[str], int]:
    """Delta bronze as a user reads it: the event_ids of its one-row-per-reading view (sorted) and its
    number of records, after checking that no Kafka record is in it twice."""
    from jobs.transforms.raw_readings import BRONZE_COORDINATES, bronze_readings

    bronze = spark.read.format("delta").load(path)
    records = [tuple(r) for r in bronze.select(*BRONZE_COORDINATES).collect()]
    assert len(set(records)) == len(records), "a Kafka record is in bronze more than once"
    return sorted(r.event_id for r in bronze_readings(bronze).select("event_id").collect()), len(records)
