"""Reading Debezium's keys and values outside Spark (jobs.topics), on envelopes of the recorded real shape."""

from __future__ import annotations

import json

import pytest

from jobs.topics import cdc_document_id, cdc_envelope
from tests.support.cdc_events import EnvelopeFactory, beijing_readings


@pytest.mark.parametrize("with_schema", [False, True], ids=["schemaless", "schema-wrapper"])
def test_the_document_id_and_op_of_each_change_event(data_dir, with_schema):
    factory = EnvelopeFactory(data_dir, with_schema)
    reading = beijing_readings(data_dir, "Dongsi", 1)[0]
    key, value = factory.change("c", reading)
    assert cdc_document_id(key) == reading["event_id"]
    assert cdc_envelope(value)["op"] == "c"
    (delete_key, delete_value), (tombstone_key, tombstone_value) = factory.delete(reading["event_id"])
    assert cdc_document_id(delete_key) == cdc_document_id(tombstone_key) == reading["event_id"]
    assert cdc_envelope(delete_value)["op"] == "d"
    assert cdc_envelope(tombstone_value) is None


def test_keys_and_values_that_name_no_document():
    assert cdc_document_id(None) is None
    assert cdc_document_id(b"not json") is None
    assert cdc_document_id(json.dumps({"id": '{"$oid": "67ab25755c0d5ac87eb8c632"}'}).encode()) is None
    assert cdc_envelope(b"[1, 2]") is None
    assert cdc_envelope(b"{truncated") is None
