"""Each query's lag where Kafka's own tools look: after the jobs ran, the pinned Kafka's
``kafka-consumer-groups.sh --describe`` (its ConsumerGroupCommand) shows, for each query's group,
the offsets the query's checkpoint committed, and the lag from there to the topic's end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient

from jobs.checkpoint import committed_end_offsets
from jobs.topics import wait_for_cdc
from stack.java import find_java17
from tests.support.flow import isolated_flow, out_of_range, submit_job
from tests.support.pipeline import REPO_ROOT, produce, replay_to_kafka

RAW_QUERIES = ("raw_to_mongo", "raw_to_mongo_bronze")
CDC_QUERIES = ("cdc_to_cassandra", "cdc_to_cassandra_aggregates")
UNREAD = 30  # raw records produced after the runs: the raw queries' lag


def kafka_describe(bootstrap: str, groups: list[str]) -> str:
    """The pinned Kafka's own ``kafka-consumer-groups.sh --describe`` (the class the script runs)."""
    command = [str(find_java17() / "bin" / "java"), "-cp", str(REPO_ROOT / "jars" / "lib" / "kafka" / "*")]
    command += ["org.apache.kafka.tools.consumer.group.ConsumerGroupCommand", "--bootstrap-server", bootstrap]
    command += ["--describe", *[arg for group in groups for arg in ("--group", group)]]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    # the tool exits 0 even when it failed: what it printed is the outcome
    assert "Error" not in done.stdout + done.stderr, done.stdout + done.stderr
    return done.stdout


def describe_rows(output: str) -> dict[str, dict[tuple[str, int], dict[str, str]]]:
    """The describe tables → {group: {(topic, partition): {column: value}}}."""
    rows: dict[str, dict[tuple[str, int], dict[str, str]]] = {}
    header: list[str] | None = None
    for line in output.splitlines():
        cells = line.split()
        if cells[:1] == ["GROUP"]:
            header = cells
        elif header and len(cells) == len(header):
            row = dict(zip(header, cells, strict=True))
            rows.setdefault(row["GROUP"], {})[(row["TOPIC"], int(row["PARTITION"]))] = row
    return rows


def topic_end(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def group_committed(bootstrap: str, group: str) -> dict[str, dict[int, int]]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        committed: dict[str, dict[int, int]] = {}
        for tp, offset in admin.list_consumer_group_offsets(group).items():
            committed.setdefault(tp.topic, {})[tp.partition] = offset.offset
        return committed
    finally:
        admin.close()


def wait_until(condition, what: str, job: subprocess.Popen, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert job.poll() is None, f"the job ended while waiting for {what}"
        assert time.monotonic() < deadline, f"not in {timeout_s:.0f} s: {what}"
        time.sleep(1)


def stop(job: subprocess.Popen) -> None:
    if job.poll() is None:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait(60)


@pytest.fixture
def flow(stack, tmp_path):
    """An isolated pipeline (its own topics, stores, Debezium connector) whose consumer groups are its own."""
    prefix = f"t{uuid.uuid4().hex[:8]}."
    with isolated_flow(
        stack,
        tmp_path,
        monitoring__consumer_group_prefix=prefix,
        kafka__max_offsets_per_trigger="100",  # several batches per query: the groups show the last one's end
        streaming__bronze_trigger_interval="2 seconds",
        cdc__aggregates_trigger_interval="2 seconds",
    ) as flow:
        yield flow


def test_kafkas_describe_shows_each_querys_checkpoint_offsets_and_lag(stack, spark, data_dir, tmp_path, flow):
    config, env, _ = flow
    bootstrap = config.kafka.bootstrap_servers
    beijing = sorted((data_dir / "bench").glob("PRSA_Data_*.csv"))[:2]
    sent = replay_to_kafka(config, "beijing", beijing, limit=300, out=tmp_path / "sent.ndjson")
    produce(bootstrap, config.kafka.raw_topic, [(b"poison", b"not json"), (b"poison", b"")])
    checkpoint = {query: config.paths.checkpoint(query) for query in RAW_QUERIES + CDC_QUERIES}
    group = {query: config.monitoring.consumer_group(query) for query in RAW_QUERIES + CDC_QUERIES}

    # raw_to_mongo runs over the topic and stops (the last batch's offsets are committed as it ends)
    raw = submit_job("raw_to_mongo", env, "--available-now", output=tmp_path / "raw_to_mongo.log")
    assert raw.wait(900) == 0, (tmp_path / "raw_to_mongo.log").read_text()[-3000:]
    raw_end = topic_end(bootstrap, config.kafka.raw_topic)
    for query in RAW_QUERIES:
        assert committed_end_offsets(spark, checkpoint[query]) == {config.kafka.raw_topic: raw_end}, query

    # cdc_to_cassandra runs on its triggers: its listener commits while it runs (it is killed, not stopped)
    valid = [r["event_id"] for r in sent if not out_of_range(r)]
    wait_for_cdc(bootstrap, config.kafka.cdc_topic, valid, timeout_s=180)
    cdc = submit_job("cdc_to_cassandra", env, output=tmp_path / "cdc_to_cassandra.log")
    try:
        for query in CDC_QUERIES:
            wait_until(
                lambda q=query: committed_end_offsets(spark, checkpoint[q])
                == {config.kafka.cdc_topic: topic_end(bootstrap, config.kafka.cdc_topic)},
                f"{query}'s checkpoint at the CDC topic's end",
                cdc,
            )
            wait_until(
                lambda q=query: group_committed(bootstrap, group[q]) == committed_end_offsets(spark, checkpoint[q]),
                f"group {group[query]} at {query}'s checkpoint while the job runs",
                cdc,
                timeout_s=60,
            )
    finally:
        stop(cdc)

    produce(bootstrap, config.kafka.raw_topic, [(b"late", b"unread") for _ in range(UNREAD)])
    ends = {topic: topic_end(bootstrap, topic) for topic in (config.kafka.raw_topic, config.kafka.cdc_topic)}
    described = describe_rows(kafka_describe(bootstrap, list(group.values())))
    assert sorted(described) == sorted(group.values())
    for query, name in group.items():
        committed = committed_end_offsets(spark, checkpoint[query])  # the checkpoint, read as the jobs read it
        [(topic, partitions)] = committed.items()
        rows = described[name]
        assert sorted(rows) == sorted((topic, p) for p in partitions), query
        for p, offset in partitions.items():
            row = rows[(topic, p)]
            assert int(row["CURRENT-OFFSET"]) == offset, (query, p, row)
            assert int(row["LOG-END-OFFSET"]) == ends[topic][p], (query, p, row)
            assert int(row["LAG"]) == ends[topic][p] - offset, (query, p, row)
    for query in RAW_QUERIES:  # what came after the run is the lag
        assert sum(int(row["LAG"]) for row in described[group[query]].values()) == UNREAD, query

    # `make consumer-groups` prints the same tables
    wrapper = subprocess.run(
        [sys.executable, "-m", "jobs.consumer_groups"],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert describe_rows(wrapper.stdout) == described
