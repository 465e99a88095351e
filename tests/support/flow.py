"""The whole flow on the real stack, shared by the e2e and faults tiers: an isolated pipeline with its own
Debezium connector, the jobs run in-process or as spark-submit subprocesses, and the oracles they are judged by."""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from jobs.config import load_config
from jobs.kafka_acls import apply_acls
from jobs.runner import await_all
from jobs.setup import apply_cql, create_mongo_indexes, create_topics
from jobs.transforms import raw_readings as T
from jobs.transforms.aqi import AQI_OUTPUT_COLUMNS
from schemas.reading import POLLUTANT_FIELDS
from stack import connector
from tests.support.cassandra import cassandra_session
from tests.support.cdc_events import NOWCAST_NAMES, aqi_mismatches, pandas_aggregates
from tests.support.pipeline import REPO_ROOT, isolated_config

# Kafka values raw_to_mongo must quarantine, by the reason code it must give them (not readings: broken bytes)
POISON = {
    T.UNPARSEABLE: [b'{"event_id": "truncated'],
    T.NOT_UTF8: [b"\xff\xfe"],
    T.EMPTY: [b""],
}


def out_of_range(reading: dict) -> bool:
    """The collector flags implausible values (and keeps them); raw_to_mongo must quarantine those readings."""
    return any(flag.endswith((":negative", ":out_of_range")) for flag in reading["flags"])


@contextlib.contextmanager
def isolated_flow(stack, tmp_path: Path, **overrides: str) -> Iterator[tuple]:
    """An isolated pipeline: its own topics, database, keyspace, Delta paths and Debezium connector.

    Yields (config, env, cassandra session); ``env`` is the AQSTREAM__* environment of subprocess jobs.
    """
    base, env = isolated_config(stack, tmp_path, **overrides)
    database = base.mongo.database
    tag = database.removeprefix("aq_")
    env["AQSTREAM__KAFKA__CDC_TOPIC"] = f"t{tag}.{database}.{base.mongo.collection}"
    config = load_config(environ=env)
    create_topics(config)  # the CDC topic too, as `make setup` does: the job must not race Debezium to create it
    apply_acls(config)  # on the CDC topic too, as `jobs.setup topics` does
    create_mongo_indexes(config)
    apply_cql(config)
    cluster, session = cassandra_session(config)
    definition = debezium_connector(stack, config, f"t{tag}", name=f"aqstream-flow-{tag}")
    connector.register(stack.connect_url, definition)
    connector.wait_running(stack.connect_url, definition["name"])
    try:
        yield config, env, session
    finally:
        connector.delete(stack.connect_url, definition["name"])
        session.execute(f"DROP KEYSPACE IF EXISTS {config.cassandra.keyspace}", timeout=60)
        cluster.shutdown()


def debezium_connector(stack, config, prefix: str, name: str | None = None) -> dict:
    """The committed connector definition, capturing only this config's collection into ``prefix.db.coll``;
    the connect principal's ACLs on that topic (and the CDC job's) are granted first."""
    database, collection = config.mongo.database, config.mongo.collection
    topic = f"{prefix}.{database}.{collection}"
    apply_acls(config.model_copy(update={"kafka": config.kafka.model_copy(update={"cdc_topic": topic})}))
    return connector.load_connector(
        overrides={
            "name": name or f"aqstream-{prefix}",
            "mongodb.connection.string": stack.mongo_uri,
            "topic.prefix": prefix,
            "database.include.list": database,
            "collection.include.list": f"{database}.{collection}",
            "capture.target": f"{database}.{collection}",
        }
    )


def run_available_now(job, spark, config) -> None:
    """Run a job's queries in this process's Spark session over what its topic holds; fail on an exception."""
    await_all(job.start(spark, config, available_now=True), timeout_s=900)


def submit_job(job: str, env: dict, *args: str, output: Path | None = None) -> subprocess.Popen:
    """``python -m jobs.submit JOB`` in its own process group (so os.killpg takes spark-submit and its JVM)."""
    log = open(output, "ab") if output else subprocess.PIPE  # noqa: SIM115 - the child owns it
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "jobs.submit", job, *args],
            cwd=REPO_ROOT,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        if output:
            log.close()


def close(a, b) -> bool:
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    return b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def cassandra_aggregates(session, config) -> pd.DataFrame:
    table = f"{config.cassandra.keyspace}.{config.cassandra.aggregates_table}"
    return pd.DataFrame(list(session.execute(f"SELECT * FROM {table}", timeout=60)))


def aggregate_mismatches(readings: list[dict], aggregates: pd.DataFrame) -> list[str]:
    """Where Cassandra's aggregates differ from the pandas oracle of ``readings`` (empty: they are equal)."""
    oracle = pandas_aggregates(readings)
    keys = ["station_id", "window_size", "window_start"]
    problems = []
    if len(aggregates) != len(oracle):
        problems.append(f"{len(aggregates)} aggregate rows, the oracle has {len(oracle)}")
    if aggregates.empty:
        return problems or ["no aggregate rows"]
    merged = oracle.merge(aggregates, on=keys, suffixes=("_oracle", ""))
    if len(merged) != len(oracle):
        problems.append(f"{len(oracle) - len(merged)} windows of the oracle are missing in Cassandra")
    for p in POLLUTANT_FIELDS:
        bad = merged[merged[f"{p}_count_oracle"] != merged[f"{p}_count"].fillna(0)]
        problems += [f"{p}_count of {tuple(r[k] for k in keys)}" for _, r in bad.iterrows()]
        for stat in ("mean", "min", "max"):
            pairs = zip(merged[f"{p}_{stat}_oracle"], merged[f"{p}_{stat}"], strict=True)
            problems += [f"{p}_{stat}: {a} != {b}" for a, b in pairs if not close(a, None if pd.isna(b) else b)]
    for name in (*NOWCAST_NAMES, "o3_8h_max"):
        pairs = zip(merged[f"{name}_oracle"], merged[name], strict=True)
        problems += [f"{name}: {a} != {b}" for a, b in pairs if not close(_num(a), _num(b))]
    for row in merged.to_dict("records"):  # the AQI of the window means, exactly
        expected = {c: row[f"{c}_oracle"] for c in AQI_OUTPUT_COLUMNS}
        problems += aqi_mismatches(str(tuple(row[k] for k in keys)), row, expected)
    problems += bucket_mismatches(aggregates)
    return problems


def bucket_mismatches(aggregates: pd.DataFrame) -> list[str]:
    """Rows not in the partition of their window's UTC month (1 h) or year (1 d)."""
    formats = {"1h": "%Y-%m", "1d": "%Y"}
    return [
        f"{row['station_id']} {row['window_size']} {row['window_start']} in bucket {row['bucket']}"
        for row in aggregates.to_dict("records")
        if row["bucket"] != row["window_start"].strftime(formats[row["window_size"]])
    ]


def cassandra_reading_rows(session, config) -> dict[str, dict]:
    """The readings table's rows by event_id (every column)."""
    table = f"{config.cassandra.keyspace}.{config.cassandra.readings_table}"
    return {r.event_id: r._asdict() for r in session.execute(f"SELECT * FROM {table}", timeout=60)}


def _num(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)
