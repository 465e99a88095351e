"""Kafka topics read from outside Spark: a whole topic, its size, and the wait for Debezium's events.

Used by the report, the demo (``stack/demo.py``), the benchmark and the tests, so each of these
is done one way. Plain kafka-python consumers, no consumer group (nothing is committed). Each function
takes ``client``, kafka-python's settings for a principal (``jobs.kafka_auth.kafka_python_settings``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

# Debezium's op codes: snapshot read, create, update, delete
CHANGE_OPS = ("r", "c", "u", "d")


def topic_records(client: Mapping[str, Any], topic: str, max_poll_records: int = 500) -> Iterator[ConsumerRecord]:
    """Every record of every partition of ``topic``, up to the end offsets seen at the start; none
    when the topic does not exist (Debezium creates its topic with its first event)."""
    consumer = KafkaConsumer(**client, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        if not partitions:
            return
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            for records in consumer.poll(timeout_ms=2000, max_records=max_poll_records).values():
                yield from records
    finally:
        consumer.close()


def read_topic(client: Mapping[str, Any], topic: str) -> list[ConsumerRecord]:
    """:func:`topic_records` as a list."""
    return list(topic_records(client, topic))


def latest_offsets(
    client: Mapping[str, Any], topics: Iterable[str], timeout_s: float = 10.0
) -> dict[str, dict[int, int]]:
    """Each topic's end offset per partition now, {topic: {partition: offset}} (Spark's ``latestOffset``
    of its Kafka source); a topic that does not exist (yet) is left out. Kafka not answering within
    ``timeout_s`` raises kafka-python's error (``NoBrokersAvailable``, ``KafkaTimeoutError``)."""
    timeout_ms = int(timeout_s * 1000)
    consumer = KafkaConsumer(
        **client,
        enable_auto_commit=False,
        api_version_auto_timeout_ms=timeout_ms,  # finding a broker
        request_timeout_ms=timeout_ms,  # metadata and end offsets
    )
    try:
        latest: dict[str, dict[int, int]] = {}
        for topic in topics:
            partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
            if partitions:
                latest[topic] = {tp.partition: offset for tp, offset in consumer.end_offsets(partitions).items()}
        return latest
    finally:
        consumer.close()


def topic_size(client: Mapping[str, Any], topic: str) -> int:
    """Messages currently in a topic (end minus beginning offsets, all partitions)."""
    consumer = KafkaConsumer(**client)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        if not partitions:
            return 0
        begin, end = consumer.beginning_offsets(partitions), consumer.end_offsets(partitions)
        return sum(end[tp] - begin[tp] for tp in partitions)
    finally:
        consumer.close()


# --- Debezium MongoDB change events ----------------------------------------------------------------


def _payload(message: Any) -> Any:
    """The message without the JsonConverter's ``{schema, payload}`` wrapper (when it has one)."""
    if isinstance(message, dict) and "payload" in message and "schema" in message:
        return message["payload"]
    return message


def cdc_document_id(key: bytes | None) -> str | None:
    """The document id of a Debezium MongoDB key, ``{"id": "\\"<event_id>\\""}`` (the id as Extended
    JSON, with or without the schema wrapper); None for a key that carries no string id."""
    if not key:
        return None
    try:
        identifier = json.loads(_payload(json.loads(key))["id"])
    except (ValueError, KeyError, TypeError):
        return None
    return identifier if isinstance(identifier, str) else None


def cdc_envelope(value: bytes | None) -> dict[str, Any] | None:
    """The change event (``op``, ``after``, ``source``, …) of a Debezium value; None for a tombstone
    or a value that is not a JSON object."""
    if value is None:
        return None
    try:
        envelope = _payload(json.loads(value))
    except ValueError:
        return None
    return envelope if isinstance(envelope, dict) else None


def wait_for_cdc(
    client: Mapping[str, Any],
    topic: str,
    document_ids: Iterable[str],
    ops: Collection[str] = CHANGE_OPS,
    timeout_s: float = 300.0,
) -> int:
    """Wait until ``topic`` holds, for every one of ``document_ids``, a change event with an op of ``ops``.

    By key, not by count: Debezium is at-least-once, and a snapshot that overlaps the writes emits
    some documents twice (``r`` and ``c``), so a count can be reached while a document is still
    missing. One consumer reads the topic from the start and on as it grows, each record once.
    Returns the number of change events read; raises TimeoutError naming what is missing.
    """
    pending = set(document_ids)
    events = 0
    deadline = time.monotonic() + timeout_s
    consumer = KafkaConsumer(**client, enable_auto_commit=False)
    try:
        while pending:
            if not consumer.assignment():
                numbers = consumer.partitions_for_topic(topic)  # None until the topic exists
                if numbers:
                    partitions = [TopicPartition(topic, p) for p in sorted(numbers)]
                    consumer.assign(partitions)
                    consumer.seek_to_beginning(*partitions)
            if consumer.assignment():
                for records in consumer.poll(timeout_ms=1000, max_records=5000).values():
                    for record in records:
                        envelope = cdc_envelope(record.value)
                        if envelope is None or envelope.get("op") not in CHANGE_OPS:
                            continue
                        events += 1
                        if envelope["op"] in ops:
                            pending.discard(cdc_document_id(record.key))
            else:
                time.sleep(1.0)
            if pending and time.monotonic() > deadline:
                raise TimeoutError(
                    f"{topic} after {timeout_s:.0f}s: no Debezium event ({'/'.join(ops)}) for "
                    f"{len(pending)} documents, e.g. {sorted(pending)[:3]}"
                )
    finally:
        consumer.close()
    return events
