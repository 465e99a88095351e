"""Fault injection: the whole flow on the local stack, one fault at a time, stores compared exactly.

Every scenario sends the same real readings (a slice of three UCI Beijing stations, the Open-Meteo
and OpenAQ recordings) through the replay collector in chunks, with one poison record of each kind
after every chunk, the first chunk sent again at the end (duplicates) and the first Beijing day
last (late: far behind the CDC job's watermark). Its fault comes between two chunks. At the end
MongoDB, Delta bronze, Cassandra readings and aggregates must hold exactly what a fault-free run
holds, and every poison record must be in quarantine with its reason.

`pytest -m faults` runs the short form (`make test-faults`, part of `make test`);
`AQSTREAM_FAULTS=long` the long form (`make faults`): more scenarios, at least 5 kills per job.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections.abc import Callable

import pytest
import requests
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from jobs import raw_to_mongo
from jobs.config import load_config
from jobs.kafka_auth import kafka_python_settings
from jobs.topics import read_topic
from stack.core import SPARK_CLUSTER
from tests.faults.conftest import FORM
from tests.faults.harness import JOBS, FlowRun, Inputs, build_inputs
from tests.support.flow import run_available_now, submit_job

LONG = FORM == "long"
# a fault comes after a chunk; the long form's 10 chunks give each job 5 kills in one run
N_CHUNKS = 10 if LONG else 3
# a chunk is about one micro-batch (a batch costs ~20-30 s of fixed overhead on 2 busy cores)
MAX_OFFSETS = "200"
# seconds between a chunk and its duplicate copy: "minutes apart" in the long form's duplicates scenario
DUPLICATE_GAP_S = 5


@pytest.fixture(scope="module")
def inputs(data_dir, tmp_path_factory) -> Inputs:
    return build_inputs(data_dir, tmp_path_factory.mktemp("inputs"), beijing_rows=240, n_chunks=N_CHUNKS)


@pytest.fixture
def run_flow(stack, spark, tmp_path, inputs, fault_table):
    """Start a FlowRun for a scenario; its table row is recorded and its jobs and connector removed after."""
    runs: list[FlowRun] = []

    def start(scenario: str, submit_args: tuple[str, ...] = ()) -> FlowRun:
        run = FlowRun(
            stack, spark, tmp_path / scenario, inputs, scenario, submit_args, kafka__max_offsets_per_trigger=MAX_OFFSETS
        )
        runs.append(run)
        return run

    yield start
    for run in runs:
        fault_table.append(run.row.as_dict())
        run.close()


Fault = Callable[[FlowRun], None]


def drive(run: FlowRun, faults: dict[int, Fault], duplicate_gap_s: float = DUPLICATE_GAP_S) -> dict:
    """Both jobs on their trigger; the chunks, each fault after its chunk; duplicates; late data; compare;
    the late data counted as late."""
    run.start_jobs()
    for i, chunk in enumerate(run.inputs.chunks):
        run.send(chunk)
        if i in faults:
            faults[i](run)
    run.wait_settled()
    time.sleep(duplicate_gap_s)
    run.send(run.inputs.chunks[0], poison=False)  # the same readings again, after they had landed
    run.send(run.inputs.late, poison=False)
    run.wait_settled()
    result = run.compare()
    run.assert_exact(result)
    # every scenario, the short form's too: the late day was counted, logged and still applied
    late = run.assert_late_counted_and_applied()
    run.row.note += f"{late} late changes logged by cdc_to_cassandra; "
    return result


# --- the faults --------------------------------------------------------------------------------


def sigkill(job: str, how: str, rng: random.Random) -> Fault:
    def inject(run: FlowRun) -> None:
        if how == "batch":
            where = run.kill_during_batch(job)
        elif how == "commit":
            where = run.kill_at_commit(job)
        else:
            where = run.kill_at_random(job, rng)
        run.row.note += f"{job} {how}: {where}; "
        run.row.repetitions += 1
        t0 = time.monotonic()
        run.start_job(job)
        run.recovered(t0)

    return inject


def kill_service(name: str, down_s: float) -> Fault:
    """SIGKILL a service of the stack (no clean shutdown), keep it down, start it again."""

    def inject(run: FlowRun) -> None:
        pid = run.stack.service(name).pid()
        assert pid, f"{name} is not running"
        os.kill(pid, signal.SIGKILL)
        time.sleep(down_s)
        run.stack.start_service(name)
        run.row.repetitions += 1
        t0 = time.monotonic()
        run.recovered(t0)

    return inject


def stop_service(name: str, down_s: float, during: Callable[[FlowRun], None] | None = None) -> Fault:
    """Stop a service cleanly for ``down_s`` seconds (sending input meanwhile), then start it."""

    def inject(run: FlowRun) -> None:
        t_stop = time.monotonic()
        run.stack.stop_service(name)
        if during:
            during(run)
        time.sleep(max(0.0, down_s - (time.monotonic() - t_stop)))
        run.stack.start_service(name)
        run.row.repetitions += 1
        t0 = time.monotonic()
        run.recovered(t0)

    return inject


def kill_worker_mid_batch(job: str, down_s: float) -> Fault:
    """SIGKILL the Spark standalone worker and its executors (its process group: as when its node fails) while
    ``job``'s tasks run, keep it down, start it again: the drivers live on, and the lost tasks run again on the
    new executors."""

    def inject(run: FlowRun) -> None:
        worker = run.stack.service("spark-worker")
        # if the job is idle (it ended its batches before the first poll), the late day early: new batches
        where = run.during_tasks(
            job, lambda: os.killpg(worker.pid(), signal.SIGKILL), feed=lambda: send_next_chunk_now(run)
        )
        time.sleep(down_s)
        run.stack.start_service("spark-worker")
        run.row.note += f"worker killed while {job} ran {where}, down {down_s:.0f}s; "
        run.row.repetitions += 1
        t0 = time.monotonic()
        run.recovered(t0)

    return inject


def send_next_chunk_now(run: FlowRun) -> None:
    """Input keeps coming while a store is down: the late Beijing day is sent early (and again at the end)."""
    run.send(run.inputs.late, poison=False)


def kill_collector(run: FlowRun) -> None:
    """SIGKILL the replay collector while it sends a chunk, then run it again with the same spool."""
    chunk = run.inputs.chunks[1]
    topic = run.config.kafka.raw_topic
    before = sum(run.end_offsets(topic).values())
    proc = run.collector(chunk, background="yes", speed="20000")
    # mid-send: the first of its records is in Kafka (paced, one record a send), the collector still running
    deadline = time.monotonic() + 120
    while sum(run.end_offsets(topic).values()) <= before:
        assert proc.poll() is None, f"the collector ended (exit {proc.returncode}) before sending a record"
        assert time.monotonic() < deadline, "the collector sent nothing in 120 s"
        time.sleep(0.1)
    assert proc.poll() is None, "the collector finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    t0 = time.monotonic()
    run.send(chunk, poison=False)  # the restart: spool first, then the whole file again
    run.row.repetitions += 1
    run.recovered(t0)
    spool = run.tmp / "spool"
    leftover = [p for p in spool.glob("*") if p.is_file() and p.stat().st_size and not p.name.startswith("state-")]
    assert leftover == [], f"the spool was not drained: {leftover}"


# --- scenarios ---------------------------------------------------------------------------------


def scenario_faults(name: str, rng: random.Random) -> dict[int, Fault]:
    if name == "sigkill-jobs":
        # after each chunk one job is killed (never both at once), alternating, each mode in turn:
        # raw batch, cdc commit, raw random, cdc batch, raw commit, cdc random, ...
        modes = ["batch", "commit", "random"]
        # the short form (inside make test, whose budget is minutes) kills each job once: raw mid-batch,
        # cdc before its commit; the long form after every chunk
        kills = N_CHUNKS if LONG else 2
        return {i: sigkill(JOBS[i % 2], modes[i % 3], rng) for i in range(kills)}
    if name == "kafka-killed":
        return {2: kill_service("kafka", down_s=10)}
    if name == "cassandra-stopped-30s":
        return {2: stop_service("cassandra", down_s=30, during=send_next_chunk_now)}
    if name == "mongodb-stopped":
        return {2: stop_service("mongodb", down_s=15, during=send_next_chunk_now)}
    if name == "connect-killed":
        return {2: kill_service("connect", down_s=5)}
    if name == "collector-killed":
        return {0: kill_collector}
    if name == "poison-duplicates-late":
        return {}
    raise ValueError(name)


SHORT = ["sigkill-jobs", "retention-data-loss"]
ALL = [
    "poison-duplicates-late",
    "sigkill-jobs",
    "kafka-killed",
    "cassandra-stopped-30s",
    "mongodb-stopped",
    "connect-killed",
    "collector-killed",
    "retention-data-loss",
    "worker-killed",
]

# both jobs on the local stack's Spark standalone cluster: a core each of the worker's two, so they run side by side
CLUSTER_CONFS = ("--conf", "spark.cores.max=1")


@pytest.mark.parametrize("scenario", ALL if LONG else SHORT)
def test_scenario(scenario, run_flow, spark, stack):
    if scenario == "retention-data-loss":
        retention_data_loss(run_flow(scenario), spark)
        return
    if scenario == "worker-killed":
        worker_killed(run_flow, stack)
        return
    rng = random.Random(f"{scenario}-{time.time_ns()}")
    run = run_flow(scenario)
    gap = 120 if LONG and scenario == "poison-duplicates-late" else DUPLICATE_GAP_S
    drive(run, scenario_faults(scenario, rng), duplicate_gap_s=gap)
    if scenario == "cassandra-stopped-30s":
        # the chosen behaviour (README, "Fault-injection suite"): the batch that meets the outage waits in
        # the connector's retries (spark.cassandra.query.retry.count) and the sink's, and goes on when
        # Cassandra is back; only an outage longer than that budget fails the query, loudly
        log = run.log_of("cdc_to_cassandra").read_text(errors="replace")
        assert "=== start 2 ===" not in log, "the CDC job died in a 30 s Cassandra outage"
        run.row.note += "cdc_to_cassandra rode through the outage, no restart; "
    if scenario in ("mongodb-stopped", "connect-killed", "kafka-killed"):
        assert run.connector_state() == "['RUNNING']", run.connector_state()


# --- the Spark standalone worker killed -----------------------------------------------------------


def worker_killed(run_flow, stack) -> None:
    """Both jobs submitted to the stack's standalone master (client mode); the worker SIGKILLed while
    cdc_to_cassandra runs a batch, back 10 s later. The stores end exact, no driver restarted, and the master
    lists both applications with executors on the worker after its return."""
    stack.up(list(SPARK_CLUSTER))
    try:
        cfg = stack.cfg
        run = run_flow("worker-killed", ("--master", cfg.spark_master_url, *CLUSTER_CONFS))
        drive(run, {4: kill_worker_mid_batch("cdc_to_cassandra", down_s=10)})
        for job in JOBS:
            log = run.log_of(job).read_text(errors="replace")
            assert "=== start 2 ===" not in log, f"{job}'s driver was restarted"
        # the driver's own account: the executor went with the worker while it ran tasks (the listener leaves
        # them active, or failed, on the dead executor; their loss is not counted against the job), and a new
        # executor ran the rest
        executors = [e for e in run.driver_api("cdc_to_cassandra", "allexecutors") if e["id"] != "driver"]
        lost = [e for e in executors if not e["isActive"] and "worker lost" in (e.get("removeReason") or "")]
        lost_tasks = sum(e["activeTasks"] + e["failedTasks"] for e in lost)
        assert lost and lost_tasks > 0, executors
        assert any(e["isActive"] and e["completedTasks"] > 0 for e in executors), executors
        run.row.note += f"{lost_tasks} running tasks lost with the worker and run again; "
        master = requests.get(f"{cfg.spark_master_ui_url}/json/", timeout=10).json()
        apps = {a["name"]: a for a in master["activeapps"]}
        assert {f"aqstream-{job}" for job in JOBS} <= set(apps), master["activeapps"]
        worker = requests.get(f"http://{cfg.host}:{cfg.spark_worker_ui_port}/json/", timeout=10).json()
        running = {e["appid"] for e in worker["executors"]}
        assert {apps[f"aqstream-{job}"]["id"] for job in JOBS} <= running, worker["executors"]
        run.row.note += "both applications' executors back on the worker; "
    finally:
        stack.down(list(SPARK_CLUSTER))


# --- Kafka retention shorter than the job's downtime --------------------------------------------


def set_topic_config(client: dict, topic: str, **configs: str) -> None:
    admin = KafkaAdminClient(**client)
    try:
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs=configs)])
    finally:
        admin.close()


def retention_data_loss(run: FlowRun, spark) -> None:
    """raw_to_mongo is down while retention deletes what it had not read.

    ``kafka.fail_on_data_loss = true`` (the default): the restarted job fails loudly, naming the
    loss, and writes nothing past the gap. An operator who accepts the loss sets it to false: the
    job then skips exactly the deleted records, warns, and goes on; everything else lands exactly.
    """
    cfg = run.config
    chunks = run.inputs.chunks
    run.send(chunks[0])
    run_available_now(raw_to_mongo, spark, cfg)
    poison_before = len(run.poison_sent)

    before = run.end_offsets(cfg.kafka.raw_topic)
    run.send(chunks[1])  # what the job never reads: retention deletes it while the job is down
    doomed = [
        r
        for r in read_topic(kafka_python_settings(cfg, "admin"), cfg.kafka.raw_topic)
        if r.offset >= before[r.partition]
    ]
    # time retention deletes the active segment too (the broker rolls a fresh one): wait until it has
    # emptied the topic, restore it, and only then send chunk 2, which an earlier send could lose as well
    set_topic_config(kafka_python_settings(cfg, "admin"), cfg.kafka.raw_topic, **{"retention.ms": "2000"})
    deadline = time.monotonic() + 120
    while (begin := begin_offsets(run)) != (emptied := run.end_offsets(cfg.kafka.raw_topic)):
        assert time.monotonic() < deadline, f"retention did not empty the topic in 120 s: {begin} vs {emptied}"
        time.sleep(1)
    week = str(7 * 24 * 3600 * 1000)
    set_topic_config(kafka_python_settings(cfg, "admin"), cfg.kafka.raw_topic, **{"retention.ms": week})
    run.send(chunks[2])
    # past one retention check (log.retention.check.interval.ms = 5 s): chunk 2 must have survived it
    time.sleep(6)
    begin = begin_offsets(run)
    assert begin == emptied, f"retention deleted more than chunk 1: log starts {begin}, chunk 2 at {emptied}"
    lost = [r for r in doomed if r.offset < begin[r.partition]]
    assert len(lost) == len(doomed), "retention deleted only part of chunk 1"
    t_down = time.monotonic()

    # the configured behaviour: fail, loudly, and write nothing past the gap
    strict = submit_job("raw_to_mongo", run.env, "--available-now", output=run.log_of("raw_to_mongo"))
    assert strict.wait(timeout=600) != 0, "failOnDataLoss=true: the job went on past deleted data"
    log = run.log_of("raw_to_mongo").read_text(errors="replace")
    assert "failOnDataLoss" in log and "lost" in log, log[-3000:]
    landed_after_failure = run.mongo.count_documents({})

    # the operator accepts the loss: the job skips exactly what retention deleted, and says so
    relaxed_env = {**run.env, "AQSTREAM__KAFKA__FAIL_ON_DATA_LOSS": "false"}
    relaxed = submit_job("raw_to_mongo", relaxed_env, "--available-now", output=run.log_of("raw_to_mongo"))
    assert relaxed.wait(timeout=600) == 0, run.tail("raw_to_mongo")
    run.row.recover_s.append(time.monotonic() - t_down)
    warned = run.log_of("raw_to_mongo").read_text(errors="replace")[len(log) :]
    assert "data may have been lost" in warned.lower(), warned[-3000:]

    lost_ids = {json.loads(r.value)["event_id"] for r in lost if r.key != b"poison"}
    lost_poison = [r for r in lost if r.key == b"poison"]
    assert len(lost_ids) + len(lost_poison) == len(lost)
    # what retention deleted is exactly chunk 1 and its poison: account for it, then compare exactly
    chunk1_ids = {r["event_id"] for r in Inputs.load(chunks[1])}
    assert lost_ids == chunk1_ids
    for event_id in lost_ids:
        run.sends[event_id] -= 1
    run.sends = +run.sends
    run.poison_sent = run.poison_sent[:poison_before] + run.poison_sent[poison_before + len(lost_poison) :]
    chunk0_ids = {r["event_id"] for r in Inputs.load(chunks[0])}
    assert landed_after_failure == len(set(run.expected_valid()) & chunk0_ids), "written past the gap"
    result = run.compare(with_cdc=False)
    run.assert_exact(result, with_cdc=False)
    run.row.repetitions = 1
    run.row.lost = len(lost)
    run.row.note = (
        f"{len(lost)} records deleted by retention: fail_on_data_loss=true failed the job loudly; "
        "=false skipped exactly those and warned"
    )
    assert load_config(environ=relaxed_env).kafka.fail_on_data_loss is False


def begin_offsets(run: FlowRun) -> dict[int, int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**kafka_python_settings(run.config, "admin"))
    try:
        topic = run.config.kafka.raw_topic
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        return {tp.partition: o for tp, o in consumer.beginning_offsets(partitions).items()}
    finally:
        consumer.close()
