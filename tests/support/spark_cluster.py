"""The local stack's on-demand Spark standalone cluster for tests: started and stopped around them, and a job
submitted to it (client deploy mode) checked through the master's and the worker's JSON views."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from stack.config import StackConfigError
from stack.core import SPARK_CLUSTER, StackError
from tests.support.flow import submit_job

JOB_TIMEOUT_S = 600


@dataclass(frozen=True)
class ClusterApplication:
    """One job's finished application on the master, and the folders its executors worked in on the worker."""

    job: str
    app_id: str
    executor_folders: list[Path]

    def executor_logs(self) -> str:
        return "".join((folder / "stderr").read_text(errors="replace") for folder in self.executor_folders)


@contextlib.contextmanager
def running_spark_cluster(stack) -> Iterator[object]:
    """The spark-master and spark-worker, started unless they already run (and then stopped after). A cluster
    that cannot start fails the test with the service's name and log tail."""
    running = {s.name for s in stack.status(list(SPARK_CLUSTER)) if s.pid is not None}
    try:
        stack.up(list(SPARK_CLUSTER), log=lambda msg: print(f"[stack] {msg}"))
    except (StackError, StackConfigError) as exc:
        pytest.fail(f"the Spark cluster could not start: {exc}", pytrace=False)
    try:
        yield stack
    finally:
        stack.down([n for n in SPARK_CLUSTER if n not in running], log=lambda msg: print(f"[stack] {msg}"))


def master_state(cfg) -> dict:
    """The master's JSON view (its web UI's /json/): workers, activeapps, completedapps."""
    return requests.get(f"{cfg.spark_master_ui_url}/json/", timeout=10).json()


def worker_state(cfg) -> dict:
    """The worker's JSON view: its executors, running and finished."""
    return requests.get(f"http://{cfg.host}:{cfg.spark_worker_ui_port}/json/", timeout=10).json()


def submit_to_the_cluster(stack, job: str, env: dict) -> ClusterApplication:
    """``python -m jobs.submit JOB --available-now --master spark://…``; then the master must list it as one
    finished application granted the worker's cores, and the worker must have run its executors, each in a
    folder holding the jobs' code that --py-files ships."""
    cfg = stack.cfg
    apps_before = {a["id"] for a in master_state(cfg)["completedapps"]}
    process = submit_job(job, env, "--available-now", "--master", cfg.spark_master_url)
    try:
        output, _ = process.communicate(timeout=JOB_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"{job} on the cluster did not end in {JOB_TIMEOUT_S}s:\n{output.decode()[-4000:]}")
    assert process.returncode == 0, output.decode(errors="replace")[-4000:]

    apps = [a for a in master_state(cfg)["completedapps"] if a["id"] not in apps_before]
    assert [(a["name"], a["state"], a["cores"]) for a in apps] == [
        (f"aqstream-{job}", "FINISHED", cfg.spark_worker_cores)
    ]
    app_id = apps[0]["id"]
    worker = worker_state(cfg)
    # finished, or still being killed: the master lists the application as completed before the worker is done
    executors = [e for e in worker["finishedexecutors"] + worker["executors"] if e["appid"] == app_id]
    assert executors, f"no executor of {app_id} on the worker: {worker}"
    # each executor worked in its folder under the worker's work dir (in the stack's state folder), where
    # Spark fetched the jobs' code: without it an executor would import the venv's editable install instead
    work = cfg.state_dir / "spark-worker" / "work" / app_id
    assert sorted(p.name for p in work.iterdir()) == sorted(str(e["id"]) for e in executors)
    folders = [work / str(e["id"]) for e in executors]
    assert all((folder / "aqstream-py.zip").is_file() for folder in folders)
    return ClusterApplication(job, app_id, folders)
