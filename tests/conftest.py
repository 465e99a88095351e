"""Shared pytest fixtures: the recorded data folder and one local SparkSession.

Service fixtures (the local stack) live in tests/integration/conftest.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TIERS = ("unit", "integration", "e2e", "faults")


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
def spark():
    """One local SparkSession for the unit tier: UI off, few shuffle partitions, no connector jars."""
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("aqstream-unit-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("WARN")
    yield session
    session.stop()
