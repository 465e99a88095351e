"""The whole flow on the real stack: collectors → Kafka → raw_to_mongo → MongoDB → Debezium → Kafka
→ cdc_to_cassandra → Cassandra, on a slice of the recorded data, with an exact end state."""

from __future__ import annotations

import json
import math
import time
from collections import Counter

import pandas as pd
import pytest
from cassandra.cluster import Cluster
from pymongo import MongoClient

from jobs import cdc_to_cassandra, raw_to_mongo
from jobs.config import load_config
from jobs.report import store_counts, topic_size
from jobs.setup import create_mongo_indexes
from jobs.transforms import raw_readings as T
from schemas.cassandra import cql_statements
from schemas.reading import POLLUTANT_FIELDS
from stack import connector
from tests.support.pipeline import REPO_ROOT, isolated_config, produce, replay_to_kafka

POISON = {
    T.UNPARSEABLE: [b'{"event_id": "truncated'],
    T.NOT_UTF8: [b"\xff\xfe"],
    T.EMPTY: [b""],
}


def out_of_range(reading: dict) -> bool:
    return any(flag.endswith((":negative", ":out_of_range")) for flag in reading["flags"])


@pytest.fixture
def flow(stack, tmp_path):
    """An isolated pipeline: its own topics, database, keyspace, Delta paths and Debezium connector."""
    base, env = isolated_config(stack, tmp_path)
    database = base.mongo.database
    tag = database.removeprefix("aq_")
    env["AQSTREAM__KAFKA__CDC_TOPIC"] = f"t{tag}.{database}.{base.mongo.collection}"
    config = load_config(environ=env)
    create_mongo_indexes(config)
    cluster = Cluster([config.cassandra.host], port=config.cassandra.port)
    session = cluster.connect()
    for statement in cql_statements(config.cassandra.keyspace, 1):
        session.execute(statement, timeout=60)
    definition = connector.load_connector(
        overrides={
            "name": f"aqstream-e2e-{tag}",
            "mongodb.connection.string": stack.mongo_uri,
            "topic.prefix": f"t{tag}",
            "database.include.list": database,
            "collection.include.list": f"{database}.{config.mongo.collection}",
            "capture.target": f"{database}.{config.mongo.collection}",
        }
    )
    connector.register(stack.connect_url, definition)
    connector.wait_running(stack.connect_url, definition["name"])
    try:
        yield config, env, session
    finally:
        connector.delete(stack.connect_url, definition["name"])
        session.execute(f"DROP KEYSPACE IF EXISTS {config.cassandra.keyspace}", timeout=60)
        cluster.shutdown()


def run_available_now(job, spark, config) -> None:
    query = job.start(spark, config, available_now=True)
    try:
        query.awaitTermination(timeout=900)
        assert query.exception() is None, query.exception()
    finally:
        query.stop()


def wait_for_cdc(config, documents: int, timeout_s: float = 180) -> None:
    """Debezium emits one event per insert; wait until the topic holds at least that many."""
    deadline = time.monotonic() + timeout_s
    while topic_size(config.kafka.bootstrap_servers, config.kafka.cdc_topic) < documents:
        assert time.monotonic() < deadline, "Debezium did not emit an event per document"
        time.sleep(1)


def pandas_aggregates(readings: list[dict]) -> pd.DataFrame:
    """The oracle: 1 h and 1 d tumbling windows per station, computed with pandas alone."""
    frame = pd.DataFrame(readings)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True).dt.tz_localize(None)
    parts = []
    for size, freq in (("1h", "h"), ("1d", "D")):
        grouped = frame.assign(window_start=frame["ts"].dt.floor(freq)).groupby(["station_id", "window_start"])
        stats = grouped[list(POLLUTANT_FIELDS)].agg(["count", "mean", "min", "max"])
        stats.columns = [f"{p}_{s}" for p, s in stats.columns]
        parts.append(stats.reset_index().assign(window_size=size))
    return pd.concat(parts, ignore_index=True)


def close(a, b) -> bool:
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    return b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def test_every_valid_reading_lands_everywhere_and_aggregates_equal_pandas(
    stack, spark, data_dir, tmp_path, flow, monkeypatch
):
    config, env, session = flow
    beijing = sorted((data_dir / "bench").glob("PRSA_Data_*.csv"))[:2]
    sent = replay_to_kafka(config, "beijing", beijing, limit=120, out=tmp_path / "beijing.ndjson")
    sent += replay_to_kafka(
        config,
        "kaggle",
        [data_dir / "kaggle" / "air_quality_pollution_assessment.csv"],
        limit=60,
        out=tmp_path / "kaggle.ndjson",
    )
    produce(
        config.kafka.bootstrap_servers,
        config.kafka.raw_topic,
        [(b"poison", v) for values in POISON.values() for v in values],
    )
    valid = {r["event_id"]: r for r in sent if not out_of_range(r)}
    rejected = [r for r in sent if out_of_range(r)]

    run_available_now(raw_to_mongo, spark, config)
    client = MongoClient(config.mongo.uri)
    mongo_ids = sorted(d["_id"] for d in client[config.mongo.database][config.mongo.collection].find({}, {"_id": 1}))
    client.close()
    assert mongo_ids == sorted(valid)

    wait_for_cdc(config, len(valid))
    run_available_now(cdc_to_cassandra, spark, config)

    readings = config.cassandra.readings_table
    rows = list(
        session.execute(
            f"SELECT event_id, station_id, ts, pm25, pm10, aqi_us FROM {config.cassandra.keyspace}.{readings}"
        )
    )
    assert sorted(r.event_id for r in rows) == sorted(valid)
    for row in rows:
        assert close(row.pm25, valid[row.event_id]["pm25"]) and close(row.pm10, valid[row.event_id]["pm10"])
    bronze = spark.read.format("delta").load(str(config.paths.bronze)).select("event_id")
    assert sorted(r.event_id for r in bronze.collect()) == sorted(valid)

    quarantine = spark.read.format("delta").load(str(config.paths.quarantine))
    reasons = Counter(r.reason_code for r in quarantine.select("reason_code").collect())
    expected_reasons = Counter({code: len(values) for code, values in POISON.items()})
    expected_reasons[T.OUT_OF_RANGE] += len(rejected)
    assert reasons == +expected_reasons

    oracle = pandas_aggregates(list(valid.values()))
    aggregates = pd.DataFrame(
        list(session.execute(f"SELECT * FROM {config.cassandra.keyspace}.{config.cassandra.aggregates_table}"))
    )
    assert len(aggregates) == len(oracle)
    merged = oracle.merge(aggregates, on=["station_id", "window_size", "window_start"], suffixes=("_oracle", ""))
    assert len(merged) == len(oracle), "a window of the oracle is missing in Cassandra"
    for p in POLLUTANT_FIELDS:
        assert (merged[f"{p}_count_oracle"] == merged[f"{p}_count"].fillna(0)).all(), p
        for stat in ("mean", "min", "max"):
            pairs = zip(merged[f"{p}_{stat}_oracle"], merged[f"{p}_{stat}"], strict=True)
            assert all(close(a, None if pd.isna(b) else b) for a, b in pairs), f"{p}_{stat}"

    # the report (what make demo prints) agrees with direct queries of each store
    counts = store_counts(config, spark)
    assert counts["mongo_documents"] == len(valid) == counts["bronze_rows"] == counts["cassandra_readings"]
    assert counts["cassandra_aggregates"] == len(oracle)
    assert counts["quarantine_rows"] == sum(expected_reasons.values())
    json.dumps({k: v for k, v in counts.items() if k != "latest_per_city"}, default=str)  # printable

    # the exploration notebook runs against these stores and sees the same counts
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    printed = execute_notebook(REPO_ROOT / "notebooks" / "explore.ipynb")
    assert f"bronze rows: {len(valid)}" in printed
    assert f"mongo documents: {len(valid)}" in printed
    assert f"cassandra readings: {len(valid)}" in printed


def execute_notebook(path) -> str:
    """Run every cell in a fresh kernel (inheriting this process's environment); return all text output."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", "") or "".join(output.get("data", {}).get("text/plain", "")))
    return "\n".join(texts)
