"""Shared pytest fixtures: the recorded data folder and one local SparkSession.

Service fixtures (the local stack) live in tests/integration/conftest.py.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from stack.config import StackConfigError
from stack.core import Stack, StackError
from stack.java import JavaNotFound

REPO_ROOT = Path(__file__).resolve().parents[1]
TIERS = ("unit", "integration", "e2e", "faults", "bench")


def pytest_configure(config):
    """Every pipeline config of the run (the fixtures', the subprocess jobs') reads the secrets of the stack the
    tests run against: ``<state_dir>/secrets`` (``.state-faults/secrets`` with AQSTREAM_STATE_DIR=.state-faults),
    unless the run names its own with AQSTREAM__CREDENTIALS__SECRETS_DIR."""
    from stack.config import StackConfig

    os.environ.setdefault("AQSTREAM__CREDENTIALS__SECRETS_DIR", str(StackConfig.from_env().state_dir / "secrets"))


def pytest_collection_modifyitems(config, items):
    """Mark every test with its tier from its folder (tests/<tier>/...), so no test escapes `-m`."""
    for item in items:
        parts = Path(str(item.fspath)).relative_to(REPO_ROOT / "tests").parts
        if parts and parts[0] in TIERS:
            item.add_marker(getattr(pytest.mark, parts[0]))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The recorded real data (../shared/data beside the checkout, or $AQSTREAM_DATA_DIR)."""
    path = Path(os.environ.get("AQSTREAM_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))
    if not (path / "PROVENANCE.md").is_file():
        pytest.fail(f"recorded data not found at {path}: set AQSTREAM_DATA_DIR to the shared/data folder")
    return path


@pytest.fixture(scope="session")
def pipeline_config():
    """The pipeline config of conf/pipeline.toml with the test run's overrides (AQSTREAM__* variables)."""
    from jobs.config import load_config

    return load_config()


@pytest.fixture(scope="session")
def spark(pipeline_config):
    """One local SparkSession per test run: UI off, few shuffle partitions.

    It carries the jobs' settings (conf/spark-defaults.conf, the connector jars, Delta), so
    integration tests use the same Spark the jobs do; without jars (`make jars` not run yet) the
    unit tier still gets a plain session.
    """
    from pyspark.sql import SparkSession

    from jobs.session import MissingJars, spark_settings

    # Python workers must be this interpreter (the venv), not whatever python3 is first on PATH
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    builder = SparkSession.builder.master("local[2]").appName("aqstream-tests")
    try:
        # its Cassandra connector logs in as the CDC job does: the secret made now if `stack up` has not yet
        Stack().ensure_secrets()
        settings = spark_settings(pipeline_config, cassandra_role="cdc")
    except MissingJars:
        settings = {"spark.sql.session.timeZone": "UTC", "spark.driver.extraJavaOptions": "-Duser.timezone=UTC"}
    settings.update(
        {
            "spark.ui.enabled": "false",
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
        }
    )
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    yield session
    session.stop()


# --- the local stack (integration and e2e tiers) ---------------------------------------------
#
# Started once per test run, shared, stopped if we started it. A stack that is already up and
# healthy (`make up`) is reused and left running. A service that cannot be started fails the tests,
# in every mode; it never skips them.


@pytest.fixture(scope="session")
def stack():
    local_stack = Stack()
    try:
        not_healthy = [s.name for s in local_stack.status() if not s.healthy]
        if not_healthy:
            local_stack.up(not_healthy, log=lambda msg: print(f"[stack] {msg}"))
    except (StackError, StackConfigError, JavaNotFound) as exc:
        pytest.fail(f"the local stack could not start: {exc}", pytrace=False)
    try:
        yield local_stack
    finally:
        if not_healthy:
            local_stack.down(log=lambda msg: print(f"[stack] {msg}"))
