"""jobs.status and jobs.health: a real scrape of a filled registry read back, the last committed batch of
real checkpoints, the lag-growth rule, the exit status, the text and JSON; the command over real HTTP."""

from __future__ import annotations

import json
import shutil
import socket
import time
from datetime import UTC, datetime

import pytest
from prometheus_client import generate_latest

from jobs import status
from jobs.checkpoint import CommittedBatch, kafka_offsets, last_committed_batch
from jobs.config import load_config
from jobs.health import (
    DOWN,
    GROWING,
    NOT_IN_RUN,
    NOT_JUDGED,
    NOT_STARTED,
    RUNNING,
    STEADY,
    STOPPED,
    ConnectorProbe,
    JobSample,
    KafkaProbe,
    QuerySample,
    Sample,
    assess,
    connector_problem,
    lag_growth,
    live_lag,
    parse_metrics,
    queries_from_metrics,
    query_from_metrics,
    render,
    report_json,
    with_committed,
)
from jobs.metrics import collector_registry
from jobs.metrics_endpoint import MetricsServer
from jobs.progress import Registry, progress_record
from tests.unit.conftest import OFFSETS, offsets_line

TOPIC = "t2f3d6b0d.raw"  # the topic of the real checkpoint offsets in tests/unit/data
BATCH_0_END = {TOPIC: {0: 16666, 1: 3333, 2: 0}}
BATCH_3_END = {TOPIC: {0: 50000, 1: 10000, 2: 0}}


def filled_registry(kafka_progress) -> Registry:
    """The registry as raw_to_mongo fills it: its readings query ran batches (the real progress, ending at
    checkpoint batch 0's offsets) with quarantined records; its bronze query started, no batch yet."""
    registry = Registry()
    registry.record_started("raw-id", "raw_to_mongo")
    registry.set_trigger("raw_to_mongo", 1.0)
    registry.record_batch("raw_to_mongo", 0, 10, 0.5, {"mongo": 0.4}, {"valid": 8, "quarantined": 2, "written": 7})
    registry.record_batch("raw_to_mongo", 1, 5, 0.2, {"mongo": 0.2}, {"valid": 5, "quarantined": 0, "written": 5})
    registry.record_progress(progress_record(kafka_progress))
    registry.record_started("bronze-id", "raw_to_mongo_bronze")
    registry.set_trigger("raw_to_mongo_bronze", 30.0)
    return registry


def scrape_text(registry: Registry) -> str:
    """What the job's /metrics serves for ``registry`` (jobs.metrics' own collector)."""
    return generate_latest(collector_registry(registry)).decode()


def test_parse_metrics_reads_back_what_the_registry_holds(kafka_progress):
    registry = filled_registry(kafka_progress)
    record = progress_record(kafka_progress)
    metrics = parse_metrics(scrape_text(registry))

    assert set(metrics) == {"raw_to_mongo", "raw_to_mongo_bronze"}
    raw = metrics["raw_to_mongo"]
    assert raw.active and not raw.idle
    assert raw.last_batch_id == kafka_progress["batchId"]
    assert raw.last_progress_at == registry.snapshot()["raw_to_mongo"]["progress_at"]
    assert raw.batch_seconds == record["batch_seconds"]
    assert raw.input_rate == record["input_rows_per_second"]
    assert raw.processing_rate == record["processed_rows_per_second"]
    assert raw.watermark == record["watermark_seconds"]
    assert raw.trigger_seconds == 1.0
    assert raw.batches_total == 1
    assert raw.input_rows_total == kafka_progress["numInputRows"]
    assert raw.end_offsets == kafka_offsets(offsets_line("raw_to_mongo.0")) == BATCH_0_END
    assert raw.quarantined == {"unclassified": 2}

    bronze = metrics["raw_to_mongo_bronze"]
    assert bronze.active and bronze.last_batch_id is None and bronze.end_offsets == {}
    assert bronze.trigger_seconds == 30.0

    registry.record_terminated("raw_to_mongo_bronze", "boom")
    assert not parse_metrics(scrape_text(registry))["raw_to_mongo_bronze"].active


def test_query_samples_from_metrics_and_from_a_checkpoint(kafka_progress):
    metrics = parse_metrics(scrape_text(filled_registry(kafka_progress)))
    raw = query_from_metrics("raw_to_mongo", metrics["raw_to_mongo"])
    assert (raw.state, raw.last_batch_id, raw.batch_from) == (RUNNING, kafka_progress["batchId"], "metrics")
    assert query_from_metrics("cdc_to_cassandra", None).state == NOT_STARTED

    committed = CommittedBatch(3, 1_800_000_000.0, BATCH_3_END, datetime(2026, 11, 24, 11, 0))
    # the metrics' batch wins; the checkpoint fills a query that has none
    assert with_committed(raw, committed) == raw
    down = with_committed(QuerySample("raw_to_mongo", DOWN), committed)
    assert (down.last_batch_id, down.last_batch_at, down.batch_from) == (3, 1_800_000_000.0, "checkpoint")
    assert down.end_offsets == BATCH_3_END
    assert down.watermark == datetime(2026, 11, 24, 11, 0, tzinfo=UTC).timestamp()
    assert down.quarantined is None  # counted in the job's process, gone with it
    assert with_committed(QuerySample("q", DOWN), None).last_batch_id is None


@pytest.mark.parametrize(("trigger", "aggregates"), [(1.0, NOT_STARTED), (None, NOT_IN_RUN)])
def test_a_query_the_job_has_not_started(trigger, aggregates):
    """cdc_to_cassandra on a trigger runs its aggregates query; with --available-now (no trigger) it does not."""
    registry = Registry()
    registry.set_trigger("cdc_to_cassandra", trigger)
    registry.record_started("cdc-id", "cdc_to_cassandra")
    names = ("cdc_to_cassandra", "cdc_to_cassandra_aggregates")
    queries = queries_from_metrics(names, parse_metrics(scrape_text(registry)))
    assert [q.state for q in queries] == [RUNNING, aggregates]
    job = JobSample("cdc_to_cassandra", "http://127.0.0.1:9402/metrics", None, queries)
    problems = assess(None, Sample(time.time(), [job], KafkaProbe("k:9092", {}))).problems
    assert problems == (
        [] if trigger is None else ["cdc_to_cassandra: query cdc_to_cassandra_aggregates is not started"]
    )


def test_live_lag_is_latest_minus_the_queries_end_offsets_on_its_own_topics():
    latest = {TOPIC: BATCH_3_END[TOPIC], "aqcdc.other": {0: 99}}
    assert live_lag(BATCH_0_END, latest) == {TOPIC: (50000 - 16666) + (10000 - 3333)}
    assert live_lag(BATCH_3_END, latest) == {TOPIC: 0}
    assert live_lag(None, latest) is None  # no batch yet
    assert live_lag(BATCH_0_END, None) is None  # Kafka did not answer
    assert live_lag(BATCH_0_END, {"aqcdc.other": {0: 1}}) is None  # the topic is gone


def test_last_committed_batch_of_a_real_query(spark, tmp_path):
    from tests.unit.test_progress import run_file_query

    started = time.time()
    last, _ = run_file_query(spark, tmp_path, "checkpoint_test")
    committed = last_committed_batch(spark, str(tmp_path / "checkpoint"))
    assert committed.batch_id == last["batchId"]
    watermark = datetime.fromisoformat(last["eventTime"]["watermark"].replace("Z", "+00:00"))
    assert committed.watermark == watermark.replace(tzinfo=None)
    assert started - 2 <= committed.committed_at <= time.time()
    assert committed.end_offsets is None  # a file source's offsets, not Kafka's
    assert last_committed_batch(spark, str(tmp_path / "no-such-checkpoint")) is None


def test_last_committed_batch_reads_the_jobs_kafka_offsets(spark, tmp_path):
    """A checkpoint holding a job's real offsets file (batch 3 of raw_to_mongo), committed."""
    checkpoint = tmp_path / "raw_to_mongo"
    (checkpoint / "offsets").mkdir(parents=True)
    (checkpoint / "commits").mkdir()
    for batch in (0, 3):
        shutil.copy(OFFSETS / f"raw_to_mongo.{batch}", checkpoint / "offsets" / str(batch))
        (checkpoint / "commits" / str(batch)).write_text('v1\n{"nextBatchWatermarkMs":0}')
    committed = last_committed_batch(spark, str(checkpoint))
    assert (committed.batch_id, committed.end_offsets, committed.watermark) == (3, BATCH_3_END, None)


# --- the growth rule ------------------------------------------------------------------------------


def query(lag: int | None, batch: int | None, state: str = RUNNING, trigger: float = 1.0, duration: float = 0.5):
    return QuerySample(
        "q",
        state,
        last_batch_id=batch,
        trigger_seconds=trigger,
        batch_seconds=duration,
        lag=None if lag is None else {TOPIC: lag},
    )


@pytest.mark.parametrize(
    ("first", "second", "window", "verdict"),
    [
        (query(0, 7), query(0, 7), 10, STEADY),  # idle and caught up: healthy
        (query(0, 7), query(40, 7), 10, STEADY),  # records arrived during the window: not a stall yet
        (query(500, 7), query(900, 12), 10, STEADY),  # under load, keeping up: batches ran
        (query(900, 7), query(400, 9), 10, STEADY),  # catching up
        (query(500, 7), query(500, 7), 10, STEADY),  # nothing new, nothing done
        (query(500, 7), query(900, 7), 10, GROWING),  # records waiting, more arriving, no batch in 10 s
        (query(500, 7, trigger=30), query(900, 7, trigger=30), 10, NOT_JUDGED),  # the bronze query's 30 s trigger
        (query(500, 7, trigger=30), query(900, 7, trigger=30), 40, GROWING),
        (query(500, 7, duration=8), query(900, 7, duration=8), 10, NOT_JUDGED),  # a batch takes 8 s: 10 s is short
        (query(0, 7, DOWN), query(30, 7, DOWN), 10, GROWING),  # a job that is down cannot catch up
        (query(None, None), query(30, 7), 10, NOT_JUDGED),  # lag unknown (Kafka down, no batch yet)
    ],
)
def test_lag_growth(first, second, window, verdict):
    assert lag_growth(first, second, window).verdict == verdict


def test_one_sample_judges_no_growth():
    assert lag_growth(None, query(900, 7), None).verdict == NOT_JUDGED


# --- the exit status ------------------------------------------------------------------------------


def running_job(kafka_progress, registry: Registry | None = None) -> JobSample:
    metrics = parse_metrics(scrape_text(registry or filled_registry(kafka_progress)))
    queries = queries_from_metrics(("raw_to_mongo", "raw_to_mongo_bronze"), metrics)
    return JobSample("raw_to_mongo", "http://127.0.0.1:9401/metrics", None, queries)


def with_lag(job: JobSample, latest) -> JobSample:
    for q in job.queries:
        q.lag = live_lag(q.end_offsets, latest)
    return job


RUNNING_CONNECTOR = {"connector": {"state": "RUNNING"}, "tasks": [{"id": 0, "state": "RUNNING"}]}


def connector(status=RUNNING_CONNECTOR, error=None) -> ConnectorProbe:
    return ConnectorProbe("aqstream-mongodb-readings", "http://127.0.0.1:8083", status, error)


def test_healthy_pipeline_exits_0(kafka_progress):
    now = time.time()
    first = Sample(now - 10, [with_lag(running_job(kafka_progress), BATCH_0_END)], KafkaProbe("k:9092", BATCH_0_END))
    second = Sample(now, [with_lag(running_job(kafka_progress), BATCH_0_END)], KafkaProbe("k:9092", BATCH_0_END))
    second.connector = connector()
    report = assess(first, second)
    assert report.problems == [] and report.exit_code == 0
    assert report.growth["raw_to_mongo"].verdict == STEADY
    assert report.growth["raw_to_mongo_bronze"].verdict == NOT_JUDGED  # no batch yet: no end offsets


def test_each_unhealthy_state_exits_1_and_says_why(kafka_progress):
    kafka = KafkaProbe("k:9092", BATCH_3_END)
    down = JobSample(
        "cdc_to_cassandra",
        "http://127.0.0.1:9402/metrics",
        "ConnectionRefusedError: [Errno 111] Connection refused",
        [QuerySample("cdc_to_cassandra", DOWN), QuerySample("cdc_to_cassandra_aggregates", DOWN)],
    )
    report = assess(None, Sample(time.time(), [with_lag(running_job(kafka_progress), BATCH_3_END), down], kafka))
    assert report.exit_code == 1
    assert report.problems == [
        "cdc_to_cassandra is down: http://127.0.0.1:9402/metrics did not answer "
        "(ConnectionRefusedError: [Errno 111] Connection refused)"
    ]

    registry = filled_registry(kafka_progress)
    registry.record_terminated("raw_to_mongo_bronze", "boom")
    report = assess(None, Sample(time.time(), [running_job(kafka_progress, registry)], kafka))
    assert report.problems == ["raw_to_mongo: query raw_to_mongo_bronze is stopped"]
    assert report.sample.jobs[0].queries[1].state == STOPPED

    no_kafka = KafkaProbe("127.0.0.1:9092", None, "NoBrokersAvailable")
    report = assess(None, Sample(time.time(), [running_job(kafka_progress)], no_kafka))
    assert report.exit_code == 1
    assert report.problems == ["kafka (127.0.0.1:9092) did not answer: NoBrokersAvailable; the lag is unknown"]

    now = time.time()
    stalled = [  # records waiting, more arriving, no batch for 10 s
        Sample(at, [with_lag(running_job(kafka_progress), latest)], KafkaProbe("k:9092", latest))
        for at, latest in ((now - 10, {TOPIC: {0: 16700, 1: 3333, 2: 0}}), (now, BATCH_3_END))
    ]
    report = assess(*stalled)
    assert report.exit_code == 1
    assert report.problems == ["raw_to_mongo: lag growing, 34 → 40,001 records behind in 10 s, no batch finished"]


@pytest.mark.parametrize(
    ("probe", "problem"),
    [
        (connector(), None),
        (connector(status=None), "not registered"),
        (connector({"connector": {"state": "PAUSED"}, "tasks": []}), "connector PAUSED"),
        (connector({"connector": {"state": "RUNNING"}, "tasks": []}), "RUNNING with no task"),
        (connector({"connector": {"state": "RUNNING"}, "tasks": [{"id": 0, "state": "FAILED"}]}), "task 0 FAILED"),
        (connector(None, "ConnectionRefusedError: refused"), "Kafka Connect did not answer: ConnectionRefusedError"),
    ],
)
def test_the_connector_not_running_is_a_problem(probe, problem):
    found = connector_problem(probe)
    if problem is None:
        assert found is None
    else:
        assert found.startswith("connector aqstream-mongodb-readings (http://127.0.0.1:8083): ") and problem in found
        assert assess(None, Sample(time.time(), [], KafkaProbe("k", {}), probe)).exit_code == 1


# --- text and JSON --------------------------------------------------------------------------------


def test_render_and_json_show_every_figure(kafka_progress):
    committed = CommittedBatch(40, time.time() - 3 * 3600, {"cdc": {0: 5}}, datetime(2026, 11, 24, 11, 0))
    down = JobSample(
        "cdc_to_cassandra",
        "http://127.0.0.1:9402/metrics",
        "ConnectionRefusedError: refused",
        [with_committed(QuerySample("cdc_to_cassandra", DOWN), committed)],
    )
    latest = {**BATCH_3_END, "cdc": {0: 1239}}
    sample = Sample(
        time.time(),
        [with_lag(running_job(kafka_progress), latest), with_lag(down, latest)],
        KafkaProbe("k:9092", latest),
    )
    sample.connector = connector()
    report = assess(None, sample)
    text = render(report)

    assert "kafka k:9092: ok" in text
    assert "connector aqstream-mongodb-readings: RUNNING" in text
    assert "raw_to_mongo: running (http://127.0.0.1:9401/metrics)" in text
    raw_row = next(line for line in text.splitlines() if line.strip().startswith("raw_to_mongo "))
    assert f" {kafka_progress['batchId']} " in raw_row and f"{TOPIC} 40,001" in raw_row
    assert "quarantined by raw_to_mongo since the job started: unclassified 2" in text
    assert "cdc_to_cassandra: DOWN (http://127.0.0.1:9402/metrics: ConnectionRefusedError: refused)" in text
    cdc_row = next(line for line in text.splitlines() if line.strip().startswith("cdc_to_cassandra "))
    assert "40 (checkpoint)" in cdc_row and "3.0 h" in cdc_row and "cdc 1,234" in cdc_row
    assert "2026-11-24T11:00:00Z" in cdc_row
    assert "quarantine counts: unknown while the job is down" in text
    assert text.splitlines()[-2:] == ["UNHEALTHY (exit 1):", f"  - {report.problems[0]}"]

    data = json.loads(json.dumps(report_json(report)))
    assert (data["healthy"], data["exit_code"]) == (False, 1)
    raw, cdc = data["jobs"]
    assert (raw["state"], cdc["state"]) == ("running", "down")
    assert raw["queries"][0]["lag"] == {TOPIC: 40001}
    assert raw["queries"][0]["end_offsets"] == {TOPIC: {"0": 16666, "1": 3333, "2": 0}}
    assert cdc["queries"][0]["last_batch_id"] == 40 and cdc["queries"][0]["batch_from"] == "checkpoint"
    assert data["growth"]["cdc_to_cassandra"]["verdict"] == NOT_JUDGED
    assert data["kafka"]["latest"]["cdc"] == {"0": 1239}


# --- the command ----------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def status_env(monkeypatch, tmp_path):
    """The command's config: Kafka on a port nothing listens on, checkpoints in an empty folder."""
    monkeypatch.setenv("AQSTREAM__KAFKA__BOOTSTRAP_SERVERS", f"127.0.0.1:{closed_port()}")
    monkeypatch.setenv("AQSTREAM__PATHS__CHECKPOINT_ROOT", str(tmp_path / "checkpoints"))
    # the admin principal's password (the probe logs in as it), not a generated secret
    monkeypatch.setenv("AQSTREAM__CREDENTIALS__KAFKA_PASSWORD_ADMIN", "env:TEST_KAFKA_ADMIN_PW")
    monkeypatch.setenv("TEST_KAFKA_ADMIN_PW", "pw-status-test-3f9a")
    return monkeypatch


def test_the_command_asks_a_running_job_over_http_and_names_kafka_down(kafka_progress, status_env, capsys):
    server = MetricsServer("127.0.0.1", 0, collector_registry(filled_registry(kafka_progress)))
    status_env.setenv("AQSTREAM__MONITORING__METRICS_PORT_RAW_TO_MONGO", str(server.port))
    try:
        code = status.main(["--interval", "0", "--job", "raw_to_mongo", "--json"])
    finally:
        server.close()
    data = json.loads(capsys.readouterr().out)
    assert code == 1
    [job] = data["jobs"]
    assert job["state"] == "running" and job["url"] == f"http://127.0.0.1:{server.port}/metrics"
    raw, bronze = job["queries"]
    assert (raw["state"], raw["last_batch_id"], raw["quarantined"]) == (
        "running",
        kafka_progress["batchId"],
        {"unclassified": 2},
    )
    assert (bronze["state"], bronze["last_batch_id"]) == ("running", None)  # no batch, no checkpoint either
    assert raw["lag"] is None
    [problem] = data["problems"]
    kafka = load_config().kafka.bootstrap_servers
    assert problem == f"kafka ({kafka}) did not answer: NoBrokersAvailable; the lag is unknown"


def test_the_command_names_a_job_down(status_env, capsys):
    status_env.setenv("AQSTREAM__MONITORING__METRICS_PORT_RAW_TO_MONGO", str(closed_port()))
    assert status.main(["--interval", "0", "--job", "raw_to_mongo"]) == 1
    out = capsys.readouterr().out
    assert "raw_to_mongo: DOWN (" in out and "ConnectionRefusedError" in out
    assert "  - raw_to_mongo is down: http://127.0.0.1:" in out


def test_bad_usage_and_config_exit_2(status_env, capsys):
    with pytest.raises(SystemExit) as exit_info:
        status.main(["--interval", "-1"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        status.main(["--job", "no_such_job"])
    assert exit_info.value.code == 2
    status_env.setenv("AQSTREAM__MONITORING__METRICS_PORT_RAW_TO_MONGO", "0")
    assert status.main(["--interval", "0", "--job", "raw_to_mongo"]) == 2
    assert "monitoring.metrics_port_raw_to_mongo: 0 disables" in capsys.readouterr().err
    status_env.setenv("AQSTREAM__MONITORING__HISTORY_PORT", "not-a-port")
    assert status.main(["--interval", "0"]) == 2
    assert "monitoring.history_port" in capsys.readouterr().err
