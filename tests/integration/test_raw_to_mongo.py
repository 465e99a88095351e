"""raw_to_mongo against the real stack: exact documents, bronze rows and quarantine entries; replays are harmless."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from jobs import raw_to_mongo
from jobs.kafka_auth import kafka_python_settings
from jobs.mongo_auth import mongo_client
from jobs.topics import read_topic
from jobs.transforms import raw_readings as T
from tests.support.flow import out_of_range, run_available_now, submit_job
from tests.support.pipeline import (
    bronze_contents,
    isolated_config,
    parse_ts,
    produce,
    replay_to_kafka,
)

# Compared field by field; ingested_at and sent_at are stamped at send time, so they differ
# between the collector's --out copy and what it sent.
COMPARED = (
    "source",
    "station_id",
    "station_name",
    "city",
    "country",
    "lat",
    "lon",
    "pm25",
    "pm10",
    "no2",
    "so2",
    "co",
    "o3",
    "temperature",
    "humidity",
    "extra",
    "raw",
    "schema_version",
)


def poison_messages(good: dict) -> dict[str, list[bytes | None]]:
    """Two bad records of each kind, derived from a real reading."""
    encode = lambda r: json.dumps(r).encode()  # noqa: E731
    return {
        T.EMPTY: [b"", None],
        T.TOO_LARGE: [encode({**good, "raw": "x" * 300_000}), encode({**good, "raw": "y" * 400_000})],
        T.NOT_UTF8: [b"\xff\xfe\xfd", b'{"event_id": "\xc3\x28"}'],
        T.UNPARSEABLE: [encode(good)[:50], b"not json at all"],
        T.WRONG_TYPE: [encode({**good, "pm25": "high"}), encode({**good, "lat": [1, 2]})],
        T.MISSING_FIELD: [encode({k: v for k, v in good.items() if k != "ts"}), encode({**good, "station_id": None})],
        T.UNKNOWN_SCHEMA_VERSION: [encode({**good, "schema_version": 2}), encode({**good, "schema_version": 0})],
        T.OUT_OF_RANGE: [encode({**good, "pm10": -1.0}), encode({**good, "o3": 50_000.0})],
        T.FUTURE_TIMESTAMP: [
            encode({**good, "ts": "2099-01-01T00:00:00Z"}),
            encode({**good, "ts": "2098-06-01T00:00:00Z"}),
        ],
    }


def store_state(spark, config) -> dict:
    client = mongo_client(config)
    try:
        documents = {d["_id"]: d for d in client[config.mongo.database][config.mongo.collection].find()}
    finally:
        client.close()
    bronze_ids, bronze_records = bronze_contents(spark, str(config.paths.bronze))
    quarantine = spark.read.format("delta").load(str(config.paths.quarantine))
    return {
        "documents": documents,
        "bronze_ids": bronze_ids,
        "bronze_records": bronze_records,
        "quarantine": sorted((r.offset, r.partition, r.reason_code) for r in quarantine.collect()),
    }


@pytest.fixture
def beijing_files(data_dir):
    return sorted((data_dir / "bench").glob("PRSA_Data_*.csv"))[:2]


def test_exact_documents_bronze_and_quarantine_then_replays_change_nothing(stack, spark, tmp_path, beijing_files):
    config, _ = isolated_config(stack, tmp_path)
    readings = replay_to_kafka(config, "beijing", beijing_files, limit=300, out=tmp_path / "sent.ndjson")
    expected = {r["event_id"]: r for r in readings}
    # a reading the source got wrong (negative, absurd) is flagged by the collector and quarantined here
    flagged = {i for i, r in expected.items() if out_of_range(r)}
    poison = poison_messages(readings[0])
    produce(
        kafka_python_settings(config, "admin"),
        config.kafka.raw_topic,
        [(b"poison", v) for values in poison.values() for v in values],
    )

    run_available_now(raw_to_mongo, spark, config)
    state = store_state(spark, config)

    valid_ids = sorted(set(expected) - flagged)
    assert sorted(state["documents"]) == valid_ids
    assert state["bronze_ids"] == valid_ids
    assert state["bronze_records"] == len(valid_ids)  # each valid Kafka record once
    for event_id in valid_ids:
        document, reading = state["documents"][event_id], expected[event_id]
        assert document["event_id"] == event_id
        assert document["ts"] == parse_ts(reading["ts"])
        assert {k: document[k] for k in COMPARED} == {k: reading[k] for k in COMPARED}, event_id

    reason_counts: dict[str, int] = {}
    for _, _, code in state["quarantine"]:
        reason_counts[code] = reason_counts.get(code, 0) + 1
    expected_counts = {code: len(values) for code, values in poison.items()}
    if flagged:
        expected_counts[T.OUT_OF_RANGE] += len(flagged)
    assert reason_counts == expected_counts

    kafka_quarantine = read_topic(kafka_python_settings(config, "admin"), config.kafka.quarantine_topic)
    kafka_reasons: dict[str, int] = {}
    for record in kafka_quarantine:
        code = dict(record.headers)["aq.reason"].decode().split(":")[0]
        kafka_reasons[code] = kafka_reasons.get(code, 0) + 1
    assert kafka_reasons == expected_counts
    originals = sorted(bytes(r.value or b"") for r in kafka_quarantine if r.key == b"poison")
    assert originals == sorted(v or b"" for values in poison.values() for v in values)

    # the same run again over the same topic (checkpoint says: nothing new) changes nothing
    run_available_now(raw_to_mongo, spark, config)
    assert store_state(spark, config) == state

    # the same readings produced again (duplicates): documents and bronze's readings unchanged; bronze
    # keeps each new Kafka record once (what arrived)
    replay_to_kafka(config, "beijing", beijing_files, limit=300, out=tmp_path / "sent-again.ndjson")
    run_available_now(raw_to_mongo, spark, config)
    again = store_state(spark, config)
    assert sorted(again["documents"]) == valid_ids
    assert again["bronze_ids"] == valid_ids
    assert again["bronze_records"] == 2 * state["bronze_records"]


def test_sigkill_mid_stream_then_restart_equals_an_uninterrupted_run(stack, spark, tmp_path, beijing_files):
    config, env = isolated_config(stack, tmp_path, kafka__max_offsets_per_trigger="400")
    readings = replay_to_kafka(config, "beijing", beijing_files, limit=2000, out=tmp_path / "sent.ndjson")
    flagged = {r["event_id"] for r in readings if out_of_range(r)}
    client = mongo_client(config)
    collection = client[config.mongo.database][config.mongo.collection]
    try:
        job = submit_job("raw_to_mongo", env)
        deadline = time.monotonic() + 300
        while collection.count_documents({}) == 0:
            assert job.poll() is None, job.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline, "the job wrote nothing in 5 minutes"
            time.sleep(0.5)
        os.killpg(job.pid, signal.SIGKILL)
        job.wait(timeout=60)
        landed_at_kill = collection.count_documents({})
        assert 0 < landed_at_kill < len(readings), "kill came too late to interrupt the stream"

        rerun = submit_job("raw_to_mongo", env, "--available-now")
        output = rerun.communicate(timeout=600)[0].decode()
        assert rerun.returncode == 0, output[-3000:]

        ids = sorted(d["_id"] for d in collection.find({}, {"_id": 1}))
    finally:
        client.close()
    expected_ids = sorted({r["event_id"] for r in readings} - flagged)
    assert ids == expected_ids
    assert bronze_contents(spark, str(config.paths.bronze)) == (expected_ids, len(expected_ids))
