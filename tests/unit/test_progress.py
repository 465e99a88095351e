"""The progress listener and its pure helpers, on real Spark progress and real checkpoint offsets."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from jobs.checkpoint import kafka_offsets
from jobs.progress import REGISTRY, ProgressListener, Registry, progress_record, records_behind
from jobs.runner import StepTimes, log_batch

OFFSETS = Path(__file__).parent / "data" / "checkpoint_offsets"


def checkpoint_offsets(name: str) -> str:
    """The source offsets line of a real checkpoint offsets file (line 3: after version and metadata)."""
    return OFFSETS.joinpath(name).read_text().splitlines()[2]


def test_kafka_offsets_reads_the_checkpoints_format():
    assert kafka_offsets(checkpoint_offsets("raw_to_mongo.3")) == {"t2f3d6b0d.raw": {0: 50000, 1: 10000, 2: 0}}
    cdc = kafka_offsets(checkpoint_offsets("cdc_to_cassandra.2"))
    assert cdc == {"b505c3349.aq_16bb4d6e.readings_raw": {0: 19893, 1: 20115, 2: 19976}}
    # not Kafka offsets: a file source's, none at all
    assert kafka_offsets('{"logOffset":0}') is None
    assert kafka_offsets(None) is None
    assert kafka_offsets("not json") is None


def test_records_behind_sums_latest_minus_end_over_partitions():
    end, latest = checkpoint_offsets("raw_to_mongo.0"), checkpoint_offsets("raw_to_mongo.3")
    # batch 0 ended at {0: 16666, 1: 3333, 2: 0}; batch 3 at {0: 50000, 1: 10000, 2: 0}
    assert records_behind(end, latest) == {"t2f3d6b0d.raw": (50000 - 16666) + (10000 - 3333)}
    assert records_behind(latest, latest) == {"t2f3d6b0d.raw": 0}
    assert records_behind(latest, end) == {"t2f3d6b0d.raw": 0}  # never negative
    assert records_behind(end, None) is None  # Spark leaves latestOffset null before it looked


@pytest.fixture
def progress_listener(spark):
    REGISTRY.clear()
    listener = ProgressListener(REGISTRY)
    spark.streams.addListener(listener)
    try:
        yield listener
    finally:
        spark.streams.removeListener(listener)
        REGISTRY.clear()


def run_file_query(spark, tmp_path, name: str):
    """A real streaming query (JSON files → foreachBatch with log_batch, event-time watermark) run
    over two files: its lastProgress and the listener's log lines are Spark's own."""
    source = tmp_path / "in"
    source.mkdir()
    for i, ts in enumerate(("2026-11-24 10:00:00", "2026-11-24 12:00:00")):
        source.joinpath(f"{i}.json").write_text(json.dumps({"station": f"s{i}", "ts": ts}) + "\n")
    stream = (
        spark.readStream.schema("station STRING, ts TIMESTAMP")
        .option("maxFilesPerTrigger", 1)
        .json(str(source))
        .withWatermark("ts", "1 hour")
    )

    def write(batch, batch_id):
        times = StepTimes()
        with times.step("count"):
            rows = batch.count()
        log_batch(name, batch_id, rows, times, valid=rows, quarantined=0, written=rows)

    query = (
        stream.writeStream.queryName(name)
        .foreachBatch(write)
        .option("checkpointLocation", str(tmp_path / "checkpoint"))
        .trigger(processingTime="100 milliseconds")
        .start()
    )
    try:
        query.processAllAvailable()
        return query.lastProgress, query.id
    finally:
        query.stop()


def wait_for(condition, timeout_s: float = 60.0):
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


def test_progress_record_from_a_real_query(spark, tmp_path, progress_listener, caplog):
    caplog.set_level(logging.INFO, logger="aqstream.progress")
    last, query_id = run_file_query(spark, tmp_path, "progress_test")
    record = progress_record(last)
    assert record["query"] == "progress_test"
    assert record["id"] == str(query_id)
    assert record["batch_id"] >= 1
    assert record["input_rows"] == last["numInputRows"]
    assert record["batch_seconds"] == last["durationMs"]["triggerExecution"] / 1000
    assert record["watermark"] == last["eventTime"]["watermark"]
    assert record["watermark_seconds"] is not None
    [source] = record["sources"]
    assert source["description"].startswith("FileStreamSource")
    assert source["records_behind"] is None  # not a Kafka source

    # the listener saw every batch, joined log_batch's figures, and wrote one JSON line per event
    def lines():
        found = []
        for r in caplog.records:
            if r.name == "aqstream.progress":
                line = json.loads(r.getMessage())
                if line["query"] == "progress_test" and line["event"] == "progress":
                    found.append(line)
        return found

    wait_for(lambda: len(lines()) >= 2 and REGISTRY.snapshot()["progress_test"]["input_rows_total"] == 2)
    state = REGISTRY.snapshot()["progress_test"]
    assert state["counts_total"] == {"valid": 2, "quarantined": 0, "written": 2}
    assert state["batches_total"] >= 2
    with_rows = [line for line in lines() if line["input_rows"]]
    assert [line["input_rows"] for line in with_rows] == [1, 1]
    for line in with_rows:
        assert line["batch"]["batch_id"] == line["batch_id"]
        assert line["batch"]["valid"] == 1
        assert set(line["batch"]["steps"]) == {"count"}
        assert line["duration_ms"]["triggerExecution"] >= 0


def test_idle_and_terminated_events_use_the_name_from_the_start():
    registry, logger = Registry(), logging.getLogger("aqstream.progress.test")
    listener = ProgressListener(registry, logger)
    registry.record_started("the-id", "q")
    registry.record_progress({"query": "q", "id": "the-id", "batch_id": 4, "input_rows": 3, "sources": []})
    line = listener.on_idle("the-id", "2026-11-24T10:00:00.000Z")
    assert line["query"] == "q" and line["batch_id"] == 4 and line["event"] == "idle"
    assert registry.snapshot()["q"]["idle"] is True
    registry.record_terminated("q", None)
    assert registry.snapshot()["q"]["active"] is False


def test_a_progress_event_gets_its_own_batch_figures_when_the_next_batch_has_logged_already():
    """The listener hears of batch 0 after the batch ended, when batch 1 may have logged its figures: the
    progress line joins batch 0's (Spark's listener bus is asynchronous; this raced in CI)."""
    registry = Registry()
    registry.record_started("the-id", "q")
    registry.record_batch("q", 0, 5, 0.5, {"write": 0.4}, {"written": 5})
    registry.record_batch("q", 1, 7, 0.7, {"write": 0.6}, {"written": 7})
    first = registry.record_progress({"query": "q", "id": "the-id", "batch_id": 0, "input_rows": 5, "sources": []})
    second = registry.record_progress({"query": "q", "id": "the-id", "batch_id": 1, "input_rows": 7, "sources": []})
    assert (first["batch_id"], first["rows"], first["written"]) == (0, 5, 5)
    assert (second["batch_id"], second["rows"], second["written"]) == (1, 7, 7)
    # a batch that logged nothing (Spark ran it, the job's writer did not log) joins nothing
    assert registry.record_progress({"query": "q", "id": "the-id", "batch_id": 2, "input_rows": 0}) is None
