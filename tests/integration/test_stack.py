"""The local stack runs real services: each answers a real client, and data survives down/up."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import requests
from kafka import KafkaProducer

from jobs.topics import read_topic
from stack.process import pid_alive
from tests.support.cassandra import cassandra_session, stack_config


def _kafka_roundtrip_produce(client: dict, topic: str, payload: bytes) -> None:
    producer = KafkaProducer(**client, acks="all")
    try:
        producer.send(topic, key=b"smoke", value=payload).get(timeout=30)
    finally:
        producer.close()


def _cassandra(stack):
    return cassandra_session(stack_config(stack))


def _mongo(stack):
    return stack.mongo_client(serverSelectionTimeoutMS=10000)


def test_kafka_message_round_trip(stack):
    topic = f"smoke-{uuid.uuid4().hex[:8]}"
    _kafka_roundtrip_produce(stack.kafka_client("admin"), topic, b'{"hello": "kafka"}')
    assert [r.value for r in read_topic(stack.kafka_client("admin"), topic)] == [b'{"hello": "kafka"}']


def test_cassandra_keyspace_table_row(stack):
    cluster, session = _cassandra(stack)
    try:
        session.execute(
            "CREATE KEYSPACE IF NOT EXISTS aqstream_smoke "
            "WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"
        )
        session.execute("CREATE TABLE IF NOT EXISTS aqstream_smoke.kv (k text PRIMARY KEY, v int)")
        key = uuid.uuid4().hex
        session.execute("INSERT INTO aqstream_smoke.kv (k, v) VALUES (%s, %s)", (key, 42))
        row = session.execute("SELECT v FROM aqstream_smoke.kv WHERE k = %s", (key,)).one()
        assert row.v == 42
    finally:
        cluster.shutdown()


def test_mongo_document_insert_and_find(stack):
    client = _mongo(stack)
    try:
        coll = client.aqstream_smoke.docs
        doc_id = uuid.uuid4().hex
        coll.insert_one({"_id": doc_id, "pm25": 12.5})
        assert coll.find_one({"_id": doc_id}) == {"_id": doc_id, "pm25": 12.5}
    finally:
        client.close()


def test_the_mongo_stand_in_speaks_only_tls_and_only_with_its_certificate_trusted(stack):
    """A client without TLS, and one with TLS that does not trust the stand-in's certificate, get nothing;
    the one trusting mongo.tls_ca_file (above) works."""
    from pymongo import MongoClient
    from pymongo.errors import ServerSelectionTimeoutError

    assert stack.mongo_tls, "the stack's MongoDB serves TLS by default (conf/pipeline.toml [mongo] tls)"
    # long enough for the client's first check to come back refused on a loaded machine: with 3 s, a busy CI
    # run once timed out before it had ("No servers found yet"), with no reason to assert on
    bounded = {"directConnection": True, "serverSelectionTimeoutMS": 15000, "connectTimeoutMS": 5000}
    for refused in (
        MongoClient(stack.cfg.host, stack.cfg.mongo_port, **bounded),
        MongoClient(stack.cfg.host, stack.cfg.mongo_port, tls=True, **bounded),  # the system's CAs only
    ):
        try:
            with pytest.raises(ServerSelectionTimeoutError) as failed:
                refused.admin.command("ping")
        finally:
            refused.close()
        assert "certificate verify failed" in str(failed.value) or "connection closed" in str(failed.value)


def test_connect_lists_debezium_mongodb_plugin(stack):
    plugins = requests.get(f"{stack.connect_url}/connector-plugins", timeout=10).json()
    classes = {p["class"]: p for p in plugins}
    assert "io.debezium.connector.mongodb.MongoDbConnector" in classes
    assert classes["io.debezium.connector.mongodb.MongoDbConnector"]["type"] == "source"


def _stack_pids() -> list[int]:
    """Every live process started by a stack (they carry -Daqstream.service=…)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and pid_alive(int(proc.name), "-Daqstream.service="):
            pids.append(int(proc.name))
    return pids


@pytest.mark.restarts_stack
def test_down_leaves_no_process_and_up_keeps_data(stack):
    marker = uuid.uuid4().hex
    topic = f"persist-{marker[:8]}"
    _kafka_roundtrip_produce(stack.kafka_client("admin"), topic, marker.encode())
    cluster, session = _cassandra(stack)
    session.execute(
        "CREATE KEYSPACE IF NOT EXISTS aqstream_smoke "
        "WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"
    )
    session.execute("CREATE TABLE IF NOT EXISTS aqstream_smoke.kv (k text PRIMARY KEY, v int)")
    session.execute("INSERT INTO aqstream_smoke.kv (k, v) VALUES (%s, %s)", (marker, 7))
    cluster.shutdown()
    client = _mongo(stack)
    client.aqstream_smoke.docs.insert_one({"_id": marker, "kept": True})
    client.close()

    stack.down()
    assert _stack_pids() == [], "a stack process is still running after down"

    stack.up()
    assert [r.value for r in read_topic(stack.kafka_client("admin"), topic)] == [marker.encode()]
    cluster, session = _cassandra(stack)
    try:
        assert session.execute("SELECT v FROM aqstream_smoke.kv WHERE k = %s", (marker,)).one().v == 7
    finally:
        cluster.shutdown()
    client = _mongo(stack)
    try:
        assert client.aqstream_smoke.docs.find_one({"_id": marker}) == {"_id": marker, "kept": True}
    finally:
        client.close()
