"""The whole flow on the real stack: collectors → Kafka → raw_to_mongo → MongoDB → Debezium → Kafka
→ cdc_to_cassandra → Cassandra, on a slice of the recorded data, with an exact end state."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from pymongo import MongoClient

from jobs import cdc_to_cassandra, raw_to_mongo
from jobs.report import store_counts
from jobs.topics import wait_for_cdc
from jobs.transforms import raw_readings as T
from tests.support.cdc_events import reading_aqi_mismatches
from tests.support.flow import (
    POISON,
    aggregate_mismatches,
    cassandra_aggregates,
    cassandra_reading_rows,
    close,
    isolated_flow,
    out_of_range,
    run_available_now,
)
from tests.support.pipeline import REPO_ROOT, bronze_contents, produce, replay_to_kafka


@pytest.fixture
def flow(stack, tmp_path):
    """An isolated pipeline: its own topics, database, keyspace, Delta paths and Debezium connector."""
    with isolated_flow(stack, tmp_path) as flow:
        yield flow


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

    wait_for_cdc(config.kafka.bootstrap_servers, config.kafka.cdc_topic, valid, timeout_s=180)
    run_available_now(cdc_to_cassandra, spark, config)

    rows = cassandra_reading_rows(session, config)
    assert sorted(rows) == sorted(valid)
    for event_id, row in rows.items():
        assert close(row["pm25"], valid[event_id]["pm25"]) and close(row["pm10"], valid[event_id]["pm10"])
    assert reading_aqi_mismatches(rows, list(valid.values())) == []  # each reading's AQI, from its pollutants
    assert bronze_contents(spark, str(config.paths.bronze))[0] == sorted(valid)

    quarantine = spark.read.format("delta").load(str(config.paths.quarantine))
    reasons = Counter(r.reason_code for r in quarantine.select("reason_code").collect())
    expected_reasons = Counter({code: len(values) for code, values in POISON.items()})
    expected_reasons[T.OUT_OF_RANGE] += len(rejected)
    assert reasons == +expected_reasons

    aggregates = cassandra_aggregates(session, config)
    assert aggregate_mismatches(list(valid.values()), aggregates) == []
    oracle_windows = len(aggregates)

    # the report (what make demo prints) agrees with direct queries of each store
    counts = store_counts(config, spark)
    assert counts["mongo_documents"] == len(valid) == counts["bronze_rows"] == counts["cassandra_readings"]
    assert counts["cassandra_aggregates"] == oracle_windows
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
