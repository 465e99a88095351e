"""Monitoring against the real stack, in one run of both jobs (each check would otherwise start its own):
the stack's Prometheus scrapes them, ``python -m jobs.status`` judges them, and Kafka's own
``kafka-consumer-groups.sh --describe`` shows each query's lag.

What the jobs were given is known here, independently of the code under test: the readings the
replay collector sent (its --out copy), the broken records this test produced, the readings the
collector flagged out of range, the CDC topic's own size and the checkpoints as Spark reads them.
A batch limit of 100 records makes the jobs work through the backlog in several batches, so the lag
Prometheus records is not zero.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter

import pytest
from kafka.admin import KafkaAdminClient

from jobs.checkpoint import committed_end_offsets, last_committed_batch
from jobs.consumer_groups import describe_command
from jobs.kafka_auth import client_properties_file, kafka_python_settings
from jobs.topics import latest_offsets, topic_size, wait_for_cdc
from jobs.transforms import raw_readings as T
from stack.java import find_java17
from tests.support import prometheus as prom
from tests.support.flow import POISON, isolated_flow, out_of_range, submit_job
from tests.support.pipeline import REPO_ROOT, produce, replay_to_kafka

BATCH_LIMIT = 100
RULE_FOR_S = 60  # AqstreamJobDown's `for:` in conf/prometheus/rules.yml
SCRAPE_S = 5  # scrape and evaluation interval of conf/prometheus/prometheus.yml
RAW_QUERIES = ("raw_to_mongo", "raw_to_mongo_bronze")
CDC_QUERIES = ("cdc_to_cassandra", "cdc_to_cassandra_aggregates")
UNREAD = 7  # raw records produced after raw_to_mongo was killed: its queries' lag


@pytest.fixture
def monitored_flow(stack, tmp_path):
    overrides = {
        "kafka__max_offsets_per_trigger": str(BATCH_LIMIT),
        "streaming__trigger_interval": "5 seconds",
        "streaming__bronze_trigger_interval": "5 seconds",
        "cdc__aggregates_trigger_interval": "2 seconds",
        "monitoring__consumer_group_prefix": f"t{uuid.uuid4().hex[:8]}.",  # this run's groups alone
    }
    with isolated_flow(stack, tmp_path, **overrides) as flow:
        yield flow


def test_prometheus_status_and_kafkas_tools_see_what_the_jobs_did(stack, spark, data_dir, tmp_path, monitored_flow):
    config, env, _session = monitored_flow
    url = stack.cfg.prometheus_url
    admin, raw_topic = kafka_python_settings(config, "admin"), config.kafka.raw_topic
    beijing = sorted((data_dir / "bench").glob("PRSA_Data_*.csv"))[:1]
    sent = replay_to_kafka(config, "beijing", beijing, limit=400, out=tmp_path / "beijing.ndjson")
    poison = [(b"poison", v) for values in POISON.values() for v in values]
    produce(admin, raw_topic, poison)
    records = len(sent) + len(poison)
    valid = {r["event_id"] for r in sent if not out_of_range(r)}
    expected_reasons = Counter({code: len(values) for code, values in POISON.items()})
    expected_reasons[T.OUT_OF_RANGE] += sum(out_of_range(r) for r in sent)
    checkpoint = {q: config.paths.checkpoint(q) for q in RAW_QUERIES + CDC_QUERIES}
    group = {q: config.monitoring.consumer_group(q) for q in RAW_QUERIES + CDC_QUERIES}

    started = time.time()
    raw = submit_job("raw_to_mongo", env, output=tmp_path / "raw_to_mongo.log")
    cdc = submit_job("cdc_to_cassandra", env, output=tmp_path / "cdc_to_cassandra.log")
    try:
        # --- Prometheus: everything read, nothing behind, the quarantine by reason, the lag on the way
        wait_for_cdc(admin, config.kafka.cdc_topic, valid, timeout_s=300)
        changes = topic_size(admin, config.kafka.cdc_topic)
        for query, expected in (
            ("raw_to_mongo", records),
            ("raw_to_mongo_bronze", records),
            ("cdc_to_cassandra", changes),
        ):
            prom.wait_until(
                url,
                f'aqstream_input_rows_total{{query="{query}"}}',
                lambda v, n=expected: v == n,
                timeout_s=240,
                what=f"{query}'s input rows (expected {expected})",
            )
            prom.wait_until(
                url,
                f'sum(aqstream_records_behind_latest{{query="{query}"}})',
                lambda v: v == 0,
                timeout_s=60,
                what=f"{query}'s records behind latest",
            )
        quarantined = {
            labels["reason"]: n
            for labels, n in prom.query(url, 'aqstream_quarantined_records_total{query="raw_to_mongo"}')
        }
        assert quarantined == dict(+expected_reasons)
        # whenever Prometheus scraped raw_to_mongo, what it had read plus what it had left unread was
        # the whole topic (every record was sent before the job started); at first most was unread
        read_plus_unread = prom.query_range(
            url,
            'sum(aqstream_records_behind_latest{query="raw_to_mongo"})'
            ' + sum(aqstream_input_rows_total{query="raw_to_mongo"})',
            started,
            time.time(),
            SCRAPE_S,
        )
        assert read_plus_unread and set(read_plus_unread[0][1]) == {float(records)}
        since = f"{int(time.time() - started) + 60}s"
        behind = f'aqstream_records_behind_latest{{query="raw_to_mongo", topic="{raw_topic}"}}'
        peak = prom.value(url, f"max_over_time({behind}[{since}])")
        assert peak is not None and peak >= records - 2 * BATCH_LIMIT
        # Spark's own metrics (PrometheusServlet) and the connector's state (Kafka Connect's JMX agent)
        assert prom.value(url, 'up{job="spark_raw_to_mongo"}') == 1
        assert prom.value(url, 'up{job="spark_cdc_to_cassandra"}') == 1
        connector = f"aqstream-flow-{config.mongo.database.removeprefix('aq_')}"
        assert prom.value(url, f'min(aqstream_connector_task_running{{connector="{connector}"}})') == 1

        # --- consumer groups: each query's group reaches its checkpoint's offsets while the jobs run
        for query in RAW_QUERIES + CDC_QUERIES:
            wait_until(
                lambda q=query: committed_end_offsets(spark, checkpoint[q])
                and group_committed(admin, group[q]) == committed_end_offsets(spark, checkpoint[q]),
                f"group {group[query]} at {query}'s checkpoint",
                (raw, cdc),
            )

        # --- jobs.status: healthy while both run
        status_env = {**env, "AQSTREAM__MONITORING__CONNECTOR_NAME": connector}
        healthy = run_status(status_env, "--json", "--interval", "3")
        assert healthy.returncode == 0, healthy.stdout + healthy.stderr
        report = json.loads(healthy.stdout)
        assert report["problems"] == [] and report["healthy"]
        by_job = {job["name"]: job for job in report["jobs"]}
        assert {name: job["state"] for name, job in by_job.items()} == {
            "raw_to_mongo": "running",
            "cdc_to_cassandra": "running",
        }
        running = {q["name"]: q for q in by_job["raw_to_mongo"]["queries"]}
        for query in RAW_QUERIES:
            assert running[query]["lag"] == {raw_topic: 0}
            assert running[query]["last_batch_id"] == last_committed_batch(spark, checkpoint[query]).batch_id
        assert running["raw_to_mongo"]["quarantined"] == dict(+expected_reasons)

        # --- a killed job: status exits 1 naming it, with its checkpoint's last batch and the live lag
        prom.wait_until(
            url,
            'count(ALERTS{alertname="AqstreamJobDown", job="aqstream_raw_to_mongo"})',
            lambda v: v is None,
            timeout_s=4 * SCRAPE_S,
            what="AqstreamJobDown while raw_to_mongo runs",
        )
        stop(raw)
        killed, killed_at = time.monotonic(), time.time()
        produce(admin, raw_topic, [(b"late", f"after the kill {i}".encode()) for i in range(UNREAD)])
        down = run_status(status_env, "--json", "--interval", "0", "--job", "raw_to_mongo")
        assert down.returncode == 1, down.stdout + down.stderr
        report = json.loads(down.stdout)
        [job] = report["jobs"]
        assert job["state"] == "down"
        assert any(p.startswith("raw_to_mongo is down:") for p in report["problems"])
        for query in job["queries"]:
            assert query["batch_from"] == "checkpoint" and query["lag"] == {raw_topic: UNREAD}
            assert query["last_batch_id"] == running[query["name"]]["last_batch_id"]

        # --- Kafka's own describe: CURRENT-OFFSET is the checkpoint's, LAG what is left to read
        ends = latest_offsets(admin, [raw_topic, config.kafka.cdc_topic])
        described = describe_rows(kafka_describe(config, list(group.values())))
        assert sorted(described) == sorted(group.values())
        for query, name in group.items():
            [(topic, partitions)] = committed_end_offsets(spark, checkpoint[query]).items()
            rows = described[name]
            assert sorted(rows) == sorted((topic, p) for p in partitions), query
            for p, offset in partitions.items():
                row = rows[(topic, p)]
                assert int(row["CURRENT-OFFSET"]) == offset, (query, p, row)
                assert int(row["LOG-END-OFFSET"]) == ends[topic][p], (query, p, row)
                assert int(row["LAG"]) == ends[topic][p] - offset, (query, p, row)
        for query in RAW_QUERIES:
            assert sum(int(row["LAG"]) for row in described[group[query]].values()) == UNREAD, query
        wrapper = subprocess.run(  # `make consumer-groups` prints the same tables
            [sys.executable, "-m", "jobs.consumer_groups"],
            cwd=REPO_ROOT,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        assert describe_rows(wrapper.stdout) == described

        # --- Prometheus: AqstreamJobDown fires after its `for:` minute, having gone pending within
        # two scrapes of the kill (ALERTS_FOR_STATE's value: when the alert became active)
        prom.wait_until(
            url,
            'count(ALERTS{alertname="AqstreamJobDown", job="aqstream_raw_to_mongo", alertstate="firing"})',
            lambda v: v == 1,
            timeout_s=max(RULE_FOR_S + 4 * SCRAPE_S - (time.monotonic() - killed), SCRAPE_S),
            what="AqstreamJobDown after raw_to_mongo was killed",
        )
        assert time.monotonic() - killed >= RULE_FOR_S - SCRAPE_S  # it waited its `for:` window
        active_since = prom.value(url, 'ALERTS_FOR_STATE{alertname="AqstreamJobDown", job="aqstream_raw_to_mongo"}')
        assert active_since is not None and 0 <= active_since - killed_at <= 2 * SCRAPE_S + 1
    finally:
        stop(raw)
        stop(cdc)


def run_status(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "jobs.status", *args],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def kafka_describe(config, groups: list[str]) -> str:
    """The pinned Kafka's own ``kafka-consumer-groups.sh --describe`` (the class the script runs), as admin."""
    java = str(find_java17() / "bin" / "java")
    with client_properties_file(config, "admin") as properties:
        login = ["--command-config", str(properties)] if properties else []
        command = describe_command(java, config.kafka.bootstrap_servers, groups, login)
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


def group_committed(client: dict, group: str) -> dict[str, dict[int, int]]:
    admin = KafkaAdminClient(**client)
    try:
        committed: dict[str, dict[int, int]] = {}
        for tp, offset in admin.list_consumer_group_offsets(group).items():
            committed.setdefault(tp.topic, {})[tp.partition] = offset.offset
        return committed
    finally:
        admin.close()


def wait_until(condition, what: str, jobs: tuple[subprocess.Popen, ...], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert all(job.poll() is None for job in jobs), f"a job ended while waiting for {what}"
        assert time.monotonic() < deadline, f"not in {timeout_s:.0f} s: {what}"
        time.sleep(1)


def stop(job: subprocess.Popen) -> None:
    if job.poll() is None:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait(timeout=60)
