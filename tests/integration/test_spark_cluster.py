"""The jobs submitted to the local stack's Spark standalone cluster (client deploy mode): each application runs
with executors on the worker (as the master's and the worker's JSON views tell) and writes what it writes on
local[*]. raw_to_mongo runs no Python on the executors; cdc_to_cassandra does (the reading AQI, mapInPandas),
so it proves the executors run the venv's interpreter with the jobs' code from --py-files."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import requests
from pymongo import MongoClient

from jobs.kafka_auth import kafka_python_settings
from stack.config import StackConfigError
from stack.core import SPARK_CLUSTER, StackError
from tests.support.cdc_events import EnvelopeFactory, beijing_readings, reading_aqi_mismatches
from tests.support.flow import out_of_range, submit_job
from tests.support.pipeline import isolated_cdc, isolated_config, parse_ts, produce, replay_to_kafka

JOB_TIMEOUT_S = 600


@pytest.fixture(scope="module")
def spark_cluster(stack):
    """The on-demand spark-master and spark-worker, started for these tests (and stopped after them) unless
    they already run. A cluster that cannot start fails the tests with the service's name and log tail."""
    running = {s.name for s in stack.status(list(SPARK_CLUSTER)) if s.pid is not None}
    try:
        stack.up(list(SPARK_CLUSTER), log=lambda msg: print(f"[stack] {msg}"))
    except (StackError, StackConfigError) as exc:
        pytest.fail(f"the Spark cluster could not start: {exc}", pytrace=False)
    try:
        yield stack
    finally:
        stack.down([n for n in SPARK_CLUSTER if n not in running], log=lambda msg: print(f"[stack] {msg}"))


def _json(url: str) -> dict:
    return requests.get(url, timeout=10).json()


def submit_to_the_cluster(stack, job: str, env: dict) -> list[Path]:
    """``python -m jobs.submit JOB --available-now --master spark://…``; then the master must list it as one
    finished application granted the worker's cores, and the worker must have run its executors. Returns the
    executors' folders."""
    cfg = stack.cfg
    apps_before = {a["id"] for a in _json(f"{cfg.spark_master_ui_url}/json/")["completedapps"]}
    process = submit_job(job, env, "--available-now", "--master", cfg.spark_master_url)
    try:
        output, _ = process.communicate(timeout=JOB_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"{job} on the cluster did not end in {JOB_TIMEOUT_S}s:\n{output.decode()[-4000:]}")
    assert process.returncode == 0, output.decode(errors="replace")[-4000:]

    apps = [a for a in _json(f"{cfg.spark_master_ui_url}/json/")["completedapps"] if a["id"] not in apps_before]
    assert [(a["name"], a["state"], a["cores"]) for a in apps] == [
        (f"aqstream-{job}", "FINISHED", cfg.spark_worker_cores)
    ]
    app_id = apps[0]["id"]
    worker = _json(f"http://{cfg.host}:{cfg.spark_worker_ui_port}/json/")
    # finished, or still being killed: the master lists the application as completed before the worker is done
    executors = [e for e in worker["finishedexecutors"] + worker["executors"] if e["appid"] == app_id]
    assert executors, f"no executor of {app_id} on the worker: {worker}"
    # each executor worked in its folder under the worker's work dir (in the stack's state folder), where
    # Spark fetched the jobs' code that --py-files ships
    work = cfg.state_dir / "spark-worker" / "work" / app_id
    assert sorted(p.name for p in work.iterdir()) == sorted(str(e["id"]) for e in executors)
    folders = [work / str(e["id"]) for e in executors]
    assert all((folder / "aqstream-py.zip").is_file() for folder in folders)
    return folders


def test_raw_to_mongo_on_the_cluster_writes_the_valid_readings(spark_cluster, tmp_path, data_dir):
    config, env = isolated_config(spark_cluster, tmp_path)
    files = sorted((data_dir / "bench").glob("PRSA_Data_*.csv"))[:1]
    readings = replay_to_kafka(config, "beijing", files, limit=60, out=tmp_path / "sent.ndjson")
    expected = {r["event_id"]: r for r in readings if not out_of_range(r)}

    submit_to_the_cluster(spark_cluster, "raw_to_mongo", env)

    client = MongoClient(config.mongo.uri)
    try:
        documents = {d["_id"]: d for d in client[config.mongo.database][config.mongo.collection].find()}
    finally:
        client.close()
    assert sorted(documents) == sorted(expected)
    for event_id, reading in expected.items():
        assert documents[event_id]["ts"] == parse_ts(reading["ts"])
        assert (documents[event_id]["station_id"], documents[event_id]["pm25"]) == (
            reading["station_id"],
            reading["pm25"],
        )


def test_cdc_to_cassandra_on_the_cluster_computes_each_reading_s_aqi_in_the_executors_python(
    spark_cluster, tmp_path, data_dir
):
    readings = beijing_readings(data_dir, "Aotizhongxin", 24)
    factory = EnvelopeFactory(data_dir, False)
    with isolated_cdc(spark_cluster, tmp_path) as (config, env, session):
        produce(
            kafka_python_settings(config, "admin"), config.kafka.cdc_topic, [factory.change("c", r) for r in readings]
        )
        executor_folders = submit_to_the_cluster(spark_cluster, "cdc_to_cassandra", env)
        table = f"{config.cassandra.keyspace}.{config.cassandra.readings_table}"
        stored = {r.event_id: r._asdict() for r in session.execute(f"SELECT * FROM {table}", timeout=60)}
        assert sorted(stored) == sorted(r["event_id"] for r in readings)
        assert reading_aqi_mismatches(stored, readings) == []
        # ... computed by Python workers of the executors on the worker (mapInPandas runs them through Arrow)
        executor_logs = "".join((folder / "stderr").read_text(errors="replace") for folder in executor_folders)
        assert "ArrowPythonRunner" in executor_logs
