"""Unit-tier fixtures shared by the monitoring tests (jobs.metrics, jobs.status)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

OFFSETS = Path(__file__).parent / "data" / "checkpoint_offsets"


def offsets_line(name: str) -> str:
    """The Kafka source's end offsets line of a real checkpoint ``offsets/<batch>`` file (its third line)."""
    return OFFSETS.joinpath(name).read_text().splitlines()[2]


@pytest.fixture(scope="session")
def kafka_progress(spark, tmp_path_factory):
    """A real progress JSON (a local file-source query's lastProgress) with its source's offsets
    replaced by real Kafka offsets from a job's checkpoint (batch 0's end, batch 3's as latest)."""
    from tests.unit.test_progress import run_file_query

    last, _ = run_file_query(spark, tmp_path_factory.mktemp("metrics"), "metrics_test")
    progress = copy.deepcopy(last)
    progress["name"] = "raw_to_mongo"
    progress["sources"][0]["endOffset"] = offsets_line("raw_to_mongo.0")
    progress["sources"][0]["latestOffset"] = offsets_line("raw_to_mongo.3")
    return progress
