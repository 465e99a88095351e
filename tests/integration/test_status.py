"""``python -m jobs.status`` against the real stack: a running raw_to_mongo is healthy with its last batch,
lag 0 and its quarantine; SIGKILLed, it is down, with its checkpoint's last batch and the live lag."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from jobs.checkpoint import last_committed_batch
from jobs.health import parse_metrics
from jobs.topics import latest_offsets
from tests.support.flow import out_of_range, submit_job
from tests.support.pipeline import REPO_ROOT, isolated_config, produce, replay_to_kafka

QUERIES = ("raw_to_mongo", "raw_to_mongo_bronze")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_status(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "jobs.status", "--job", "raw_to_mongo", *args],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def scrape(url: str):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return parse_metrics(response.read().decode())
    except OSError:
        return None


@pytest.fixture
def beijing_files(data_dir):
    return sorted((data_dir / "bench").glob("PRSA_Data_*.csv"))[:1]


def test_status_of_a_running_then_killed_job(stack, spark, tmp_path, beijing_files):
    metrics_port = free_port()
    config, env = isolated_config(
        stack,
        tmp_path,
        # its own ports: a job another test or a user runs on the defaults must not answer for this one
        monitoring__metrics_port_raw_to_mongo=str(metrics_port),
        monitoring__ui_port_raw_to_mongo=str(free_port()),
    )
    topic = config.kafka.raw_topic
    readings = replay_to_kafka(config, "beijing", beijing_files, limit=120, out=tmp_path / "sent.ndjson")
    poison = [(b"poison", b"not json"), (b"poison", b""), (b"poison", b'{"event_id": 1}')]
    produce(config.kafka.bootstrap_servers, topic, poison)
    records = sum(latest_offsets(config.kafka.bootstrap_servers, [topic])[topic].values())
    assert records == len(readings) + len(poison)
    quarantined = len(poison) + sum(1 for r in readings if out_of_range(r))

    url = f"http://127.0.0.1:{metrics_port}/metrics"
    job = submit_job("raw_to_mongo", env, output=tmp_path / "job.log")
    try:
        deadline = time.monotonic() + 300
        while True:  # until both queries have read every record (their first batch takes them all)
            assert job.poll() is None, (tmp_path / "job.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "raw_to_mongo did not read its records in 5 minutes"
            metrics = scrape(url) or {}
            if all(q in metrics and metrics[q].input_rows_total == records for q in QUERIES):
                break
            time.sleep(1.0)

        running = run_status(env, "--json", "--interval", "3")
        assert running.returncode == 0, running.stdout + running.stderr
        report = json.loads(running.stdout)
        assert report["problems"] == [] and report["healthy"]
        [job_report] = report["jobs"]
        assert (job_report["name"], job_report["state"], job_report["url"]) == ("raw_to_mongo", "running", url)
        by_name = {q["name"]: q for q in job_report["queries"]}
        for name in QUERIES:
            assert by_name[name]["state"] == "running"
            assert by_name[name]["batch_from"] == "metrics"
            assert by_name[name]["last_batch_id"] == metrics[name].last_batch_id
            assert by_name[name]["lag"] == {topic: 0}
        assert sum(by_name["raw_to_mongo"]["quarantined"].values()) == quarantined
        assert report["growth"]["raw_to_mongo"]["verdict"] == "steady"

        os.killpg(job.pid, signal.SIGKILL)
        job.wait(timeout=60)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait(timeout=60)

    late = [(b"late", f"after the kill {i}".encode()) for i in range(7)]
    produce(config.kafka.bootstrap_servers, topic, late)
    committed = {q: last_committed_batch(spark, config.paths.checkpoint(q)) for q in QUERIES}

    down = run_status(env, "--json", "--interval", "0")
    assert down.returncode == 1, down.stdout + down.stderr
    report = json.loads(down.stdout)
    [job_report] = report["jobs"]
    assert job_report["state"] == "down"
    assert any(p.startswith(f"raw_to_mongo is down: {url} did not answer") for p in report["problems"])
    for query in job_report["queries"]:
        assert query["state"] == "down" and query["batch_from"] == "checkpoint"
        assert query["last_batch_id"] == committed[query["name"]].batch_id == by_name[query["name"]]["last_batch_id"]
        assert query["lag"] == {topic: len(late)}  # what arrived after the kill, counted from the checkpoint
        assert query["quarantined"] is None

    text = run_status(env, "--interval", "0")
    assert text.returncode == 1
    assert f"raw_to_mongo: DOWN ({url}" in text.stdout
    assert f"  - raw_to_mongo is down: {url} did not answer" in text.stdout
