"""The real Debezium MongoDB connector in the real Kafka Connect worker, against the stack's MongoDB.

Each test registers its own connector on its own database and topic prefix, and deletes it after.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from collectors import replay
from jobs.config import load_config
from jobs.kafka_acls import apply_acls
from jobs.topics import read_topic, wait_for_cdc
from schemas.debezium import debezium_envelope_schema
from schemas.reading import reading_to_mongo_document
from stack import connector
from tests.support.pipeline import REPO_ROOT


@pytest.fixture(scope="module")
def real_readings(data_dir) -> list[dict]:
    """Canonical readings of the first hours of one UCI Beijing station, as the replay collector builds them."""
    mapping = replay.load_mapping(REPO_ROOT / "conf" / "mappings" / "beijing.json")
    path = data_dir / "bench" / "PRSA_Data_Dongsi_20130301-20170228.csv"
    now = lambda: datetime.now(UTC)  # noqa: E731
    stream = replay.events([path], mapping, now)
    return [build(ts) for (ts, _, build), _ in zip(stream, range(400), strict=False)]


@pytest.fixture
def capture(stack):
    """A connector of this test's own: database aq_<tag>, topic prefix t<tag>."""
    tag = uuid.uuid4().hex[:8]
    database = f"aq_{tag}"
    overrides = {
        "name": f"aqstream-test-{tag}",
        "mongodb.connection.string": stack.mongo_uri,
        "topic.prefix": f"t{tag}",
        "database.include.list": database,
        "collection.include.list": f"{database}.readings_raw",
        "capture.target": f"{database}.readings_raw",
        "heartbeat.interval.ms": "1000",
    }
    definition = connector.load_connector(overrides=overrides)
    # the connect principal may write Debezium's topics <topic.prefix>.*, as for the committed connector
    environ = {
        "AQSTREAM__KAFKA__BOOTSTRAP_SERVERS": stack.kafka_bootstrap,
        "AQSTREAM__KAFKA__CDC_TOPIC": f"t{tag}.{database}.readings_raw",
    }
    apply_acls(load_config(environ=environ))
    client = stack.mongo_client(serverSelectionTimeoutMS=10000)
    state = {
        "definition": definition,
        "collection": client[database]["readings_raw"],
        "topic": f"t{tag}.{database}.readings_raw",
    }
    try:
        yield state
    finally:
        connector.delete(stack.connect_url, definition["name"])
        client.close()


def wait_until(condition, what: str, timeout_s: float = 60.0) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not reached in {timeout_s:.0f}s: {what}"
        time.sleep(0.05)


def test_snapshot_then_insert_update_delete_arrive_as_debezium_events(stack, spark, capture, real_readings, data_dir):
    collection, topic = capture["collection"], capture["topic"]
    docs = [reading_to_mongo_document(r) for r in real_readings[:5]]
    collection.insert_many(docs[:3])  # before registration: the snapshot must carry them

    assert connector.register(stack.connect_url, capture["definition"]) == "created"
    connector.wait_running(stack.connect_url, capture["definition"]["name"])
    bootstrap = stack.kafka_client("admin")
    wait_for_cdc(bootstrap, topic, [d["_id"] for d in docs[:3]], ops=("r",), timeout_s=120)

    collection.insert_many(docs[3:5])
    collection.update_one({"_id": docs[0]["_id"]}, {"$set": {"pm25": 123.5}})
    collection.delete_one({"_id": docs[1]["_id"]})
    wait_for_cdc(bootstrap, topic, [d["_id"] for d in docs[3:5]], ops=("c",), timeout_s=120)
    wait_for_cdc(bootstrap, topic, [docs[0]["_id"]], ops=("u",), timeout_s=120)
    wait_for_cdc(bootstrap, topic, [docs[1]["_id"]], ops=("d",), timeout_s=120)
    records = read_topic(bootstrap, topic)
    values = [json.loads(r.value) for r in records if r.value is not None]
    by_op: dict[str, list[dict]] = {}
    for value in values:
        by_op.setdefault(value["op"], []).append(value)

    snapshot_ids = sorted(json.loads(v["after"])["_id"] for v in by_op["r"])
    assert snapshot_ids == sorted(d["_id"] for d in docs[:3])
    assert sorted(json.loads(v["after"])["_id"] for v in by_op["c"]) == sorted(d["_id"] for d in docs[3:5])
    updated = json.loads(by_op["u"][0]["after"])
    assert (updated["_id"], updated["pm25"]) == (docs[0]["_id"], 123.5)
    assert by_op["d"][0]["after"] is None
    # a delete carries only the key: the document id as a JSON string, which is our event_id
    delete_key = next(json.loads(r.key) for r in records if r.value and json.loads(r.value)["op"] == "d")
    assert json.loads(delete_key["id"]) == docs[1]["_id"]
    assert None in [r.value for r in records], "a delete is followed by a tombstone"

    # same encodings as the recorded real events: strict Extended JSON v1 dates ({"$date": <ms>})
    created = json.loads(by_op["c"][0]["after"])
    assert set(created["ts"]) == {"$date"} and isinstance(created["ts"]["$date"], int)
    source = next(d for d in docs if d["_id"] == created["_id"])
    assert created["ts"]["$date"] == int(source["ts"].timestamp() * 1000)
    assert created["pm25"] == source["pm25"] and created["station_id"] == source["station_id"]

    # every event parses with the envelope schema exactly as the recorded real events do
    schema = debezium_envelope_schema(with_schema=False)
    ours = spark.createDataFrame([(json.dumps(v),) for v in values], "value string")
    parsed = ours.select(F.from_json("value", schema).alias("e")).select("e.*").collect()
    assert sorted(p.op for p in parsed) == sorted(v["op"] for v in values)
    assert all(p.source.connector == "mongodb" and p.source.version == "3.3.2.Final" for p in parsed)
    recorded_path = data_dir / "debezium" / "paimon_dbz2.7.0_mongo_insert_c_schemaless.key_value.ndjson"
    recorded = [json.loads(line) for line in Path(recorded_path).read_text().splitlines() if line.strip()]
    recorded_value = next(v for v in recorded if isinstance(v, dict) and "op" in v)
    assert set(recorded_value) <= set(values[0]) | {"transaction"}, "our events lack a field the recorded ones have"


def test_connect_killed_mid_stream_loses_no_write(stack, capture, real_readings):
    collection, topic = capture["collection"], capture["topic"]
    connector.register(stack.connect_url, capture["definition"])
    connector.wait_running(stack.connect_url, capture["definition"]["name"])
    docs = [reading_to_mongo_document(r) for r in real_readings[:300]]

    def write_slowly():
        for doc in docs:
            collection.insert_one(doc)
            time.sleep(0.02)

    writer = threading.Thread(target=write_slowly)
    writer.start()
    # mid-stream: the connector has captured some writes, and more are written while Connect is down
    wait_until(lambda: collection.count_documents({}) >= 50, "50 documents written before the kill")
    assert stack.stop_service("connect") in ("stopped", "killed after 60s")
    more = min(collection.count_documents({}) + 50, len(docs))  # all of them, if the writer finished meanwhile
    wait_until(lambda: collection.count_documents({}) >= more, "more writes while Connect is down")
    stack.start_service("connect")
    writer.join(timeout=120)
    connector.wait_running(stack.connect_url, capture["definition"]["name"])

    expected = {d["_id"] for d in docs}
    wait_for_cdc(stack.kafka_client("admin"), topic, expected, ops=("c", "r"), timeout_s=180)
    records = read_topic(stack.kafka_client("admin"), topic)
    created = [json.loads(json.loads(r.value)["after"])["_id"] for r in records if r.value]
    duplicates = len(created) - len(set(created))
    print(f"connect restart: {len(expected)} writes, {len(created)} events, {duplicates} duplicates (at-least-once)")
    assert set(created) == expected
