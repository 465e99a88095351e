"""Consumer-group reporting: progress → offsets per group (pure), the committer's failure path, the
listener's hand-over, and the describe command line. The commits themselves against the real broker
are in tests/integration/test_monitoring.py."""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path

import pytest
from kafka.structs import OffsetAndMetadata, TopicPartition

from jobs.config import ConfigError, MonitoringConfig, load_config
from jobs.consumer_groups import CONSUMER_GROUP_COMMAND, describe_command, query_names
from jobs.group_offsets import GroupOffsetCommitter, committer_for, group_offsets
from jobs.progress import ProgressListener, Registry, progress_record

OFFSETS = Path(__file__).parent / "data" / "checkpoint_offsets"


def offsets_line(name: str) -> str:
    """The source offsets line of a real checkpoint offsets file (line 3: after version and metadata)."""
    return OFFSETS.joinpath(name).read_text().splitlines()[2]


def kafka_progress(name: str, batch_id: int, *end_offsets: str) -> dict:
    """A progress JSON as Spark writes it (only the fields read here), one source per end offsets."""
    sources = [
        {"description": "KafkaV2[Subscribe[t]]", "numInputRows": 1, "endOffset": end, "latestOffset": end}
        for end in end_offsets
    ]
    return {"name": name, "id": "the-id", "batchId": batch_id, "numInputRows": 1, "sources": sources}


def test_a_batch_commits_each_partitions_end_offset_with_its_batch_id():
    record = progress_record(kafka_progress("raw_to_mongo", 3, offsets_line("raw_to_mongo.3")))
    # the checkpoint's batch 3 ended at {"0": 50000, "1": 10000, "2": 0}: Kafka's next offset to read, as Spark's
    assert group_offsets(record) == {
        TopicPartition("t2f3d6b0d.raw", 0): OffsetAndMetadata(50000, "spark batch 3", -1),
        TopicPartition("t2f3d6b0d.raw", 1): OffsetAndMetadata(10000, "spark batch 3", -1),
        TopicPartition("t2f3d6b0d.raw", 2): OffsetAndMetadata(0, "spark batch 3", -1),
    }
    cdc = progress_record(kafka_progress("cdc_to_cassandra", 2, offsets_line("cdc_to_cassandra.2")))
    assert {tp.partition: o.offset for tp, o in group_offsets(cdc).items()} == {0: 19893, 1: 20115, 2: 19976}


def test_two_sources_on_one_partition_commit_the_lower_offset_and_other_sources_nothing():
    both = kafka_progress("q", 7, offsets_line("raw_to_mongo.0"), offsets_line("raw_to_mongo.3"))
    offsets = group_offsets(progress_record(both))
    # batch 0 ended at {0: 16666, 1: 3333, 2: 0}, batch 3 further on: the larger lag is reported
    assert {tp.partition: o.offset for tp, o in offsets.items()} == {0: 16666, 1: 3333, 2: 0}
    assert group_offsets(progress_record(kafka_progress("q", 1, '{"logOffset":0}'))) == {}  # a file source
    assert group_offsets(progress_record({"name": "q", "batchId": 0, "sources": []})) == {}


def test_each_query_has_its_own_group_named_by_the_prefix():
    monitoring = MonitoringConfig()
    assert monitoring.consumer_group("raw_to_mongo") == "aqstream.raw_to_mongo"
    assert monitoring.consumer_group("raw_to_mongo_bronze") == "aqstream.raw_to_mongo_bronze"
    assert MonitoringConfig(consumer_group_prefix="").consumer_group("q") == "q"
    assert (
        committer_for({"bootstrap_servers": ["127.0.0.1:9092"]}, MonitoringConfig(consumer_group_commits=False)) is None
    )
    assert isinstance(committer_for({"bootstrap_servers": ["127.0.0.1:9092"]}, monitoring), GroupOffsetCommitter)


def test_a_bad_prefix_names_the_field():
    with pytest.raises(ConfigError, match="monitoring.consumer_group_prefix"):
        load_config(environ={"AQSTREAM__MONITORING__CONSUMER_GROUP_PREFIX": "aq stream/"})
    off = load_config(environ={"AQSTREAM__MONITORING__CONSUMER_GROUP_COMMITS": "false"})
    assert off.monitoring.consumer_group_commits is False


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_failed_commit_warns_and_never_raises(caplog):
    caplog.set_level(logging.WARNING, logger="aqstream.monitoring")
    committer = GroupOffsetCommitter(
        {"bootstrap_servers": [f"127.0.0.1:{closed_port()}"]}, MonitoringConfig(), timeout_ms=1000
    )
    record = progress_record(kafka_progress("raw_to_mongo", 3, offsets_line("raw_to_mongo.3")))
    started = time.monotonic()
    assert committer.commit(record) is False
    assert time.monotonic() - started < 30  # bounded: the listener thread is not held
    [warning] = [r for r in caplog.records if r.name == "aqstream.monitoring"]
    assert "raw_to_mongo batch 3" in warning.getMessage() and "aqstream.raw_to_mongo" in warning.getMessage()
    committer.close()
    assert committer.commit(record) is False  # closed: the job is ending, nothing more is sent


def test_nothing_to_commit_does_not_open_a_client():
    committer = GroupOffsetCommitter(
        {"bootstrap_servers": [f"127.0.0.1:{closed_port()}"]}, MonitoringConfig(), timeout_ms=1000
    )
    assert committer.commit(progress_record(kafka_progress("q", 1, '{"logOffset":0}'))) is False
    assert committer.commit({"query": None, "batch_id": 1, "sources": []}) is False
    assert committer._clients == {}  # noqa: SLF001


class RecordingCommitter:
    """Stands in for the committer: the records the listener hands over, the queries it closes."""

    def __init__(self) -> None:
        self.records: list[dict] = []
        self.closed: list[str] = []

    def commit(self, record: dict) -> bool:
        self.records.append(record)
        return True

    def close_query(self, query: str) -> None:
        self.closed.append(query)


def test_the_listener_hands_each_progress_to_the_committer_with_the_querys_name():
    registry, committer = Registry(), RecordingCommitter()
    listener = ProgressListener(registry, logging.getLogger("aqstream.progress.test"), group_offsets=committer)
    registry.record_started("bronze-id", "raw_to_mongo_bronze")
    progress = kafka_progress(None, 5, offsets_line("raw_to_mongo.3"))
    progress["id"] = "bronze-id"
    listener.on_progress(progress)
    [record] = committer.records
    assert record["query"] == "raw_to_mongo_bronze" and record["batch_id"] == 5
    assert group_offsets(record)[TopicPartition("t2f3d6b0d.raw", 0)].offset == 50000

    class Terminated:
        id, exception = "bronze-id", None

    listener.onQueryTerminated(Terminated())
    assert committer.closed == ["raw_to_mongo_bronze"]


def test_the_describe_command_runs_kafkas_consumer_group_command_for_every_query():
    assert query_names() == ["raw_to_mongo", "raw_to_mongo_bronze", "cdc_to_cassandra", "cdc_to_cassandra_aggregates"]
    assert query_names("cdc_to_cassandra") == ["cdc_to_cassandra", "cdc_to_cassandra_aggregates"]
    command = describe_command("java", "b:9092", ["g1", "g2"], ["--verbose"], jars_dir=Path("/k"))
    assert command == [
        "java",
        "-cp",
        "/k/*",
        CONSUMER_GROUP_COMMAND,
        "--bootstrap-server",
        "b:9092",
        "--describe",
        "--verbose",
        "--group",
        "g1",
        "--group",
        "g2",
    ]
