"""E2E fixtures: ``make demo``'s flow, run once per session on the running stack and shared by
test_demo.py (Prometheus' graph of its lag) and test_dashboard.py (the dashboard over its stores); the stack's
Spark standalone cluster for test_flow.py's submitted jobs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest

from tests.support.pipeline import REPO_ROOT
from tests.support.spark_cluster import running_spark_cluster

# a backlog worked off in several batches, so the lag has a shape to graph
DEMO_BATCH_LIMIT = "500"


@dataclass(frozen=True)
class DemoRun:
    started: float  # unix seconds
    stdout: str
    stderr: str


@pytest.fixture(scope="session")
def demo(stack) -> DemoRun:
    """``python -m stack.demo`` on the stack the session started: it leaves the stack running (it was)."""
    started = time.time()
    done = subprocess.run(
        [sys.executable, "-m", "stack.demo", "--beijing-rows", "2000"],
        cwd=REPO_ROOT,
        env={**os.environ, "AQSTREAM__KAFKA__MAX_OFFSETS_PER_TRIGGER": DEMO_BATCH_LIMIT},
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return DemoRun(started, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def spark_cluster(stack):
    """The stack's on-demand spark-master and spark-worker, for the tests of a module (stopped after them unless
    they already ran)."""
    with running_spark_cluster(stack) as cluster:
        yield cluster
