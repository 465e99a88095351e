"""The CDC job's station registry at its edges: the one ``stations`` partition read by key, the new
or changed rows written (``jobs.transforms.stations`` decides which)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs.config import PipelineConfig
from jobs.driver_rows import rows_frame
from jobs.sinks import read_cassandra, with_retries, write_cassandra
from jobs.transforms.stations import STATION_FIELDS, registry_rows
from schemas.cassandra import STATIONS_REGISTRY, STATIONS_TABLE, stations_row_spark_schema


def read_registry(spark: SparkSession, config: PipelineConfig) -> dict[str, dict[str, Any]]:
    """Every station of the registry, by station_id: one keyed read of its one partition."""
    table = read_cassandra(spark, config.cassandra, STATIONS_TABLE)
    rows = table.where(F.col("registry") == STATIONS_REGISTRY).select("station_id", *STATION_FIELDS).collect()
    return {row.station_id: row.asDict() for row in rows}


def update_registry(
    spark: SparkSession, config: PipelineConfig, readings: list[Mapping[str, Any]], updated_at: datetime
) -> int:
    """Upsert the registry rows of the stations of ``readings`` that are new or changed; returns how many."""
    if not readings:  # every reading of the batch's days deleted: nothing to say about any station
        return 0
    rows = registry_rows(readings, read_registry(spark, config), updated_at)
    if rows:
        frame = rows_frame(spark, rows, stations_row_spark_schema())
        with_retries("cassandra stations upsert", lambda: write_cassandra(frame, config.cassandra, STATIONS_TABLE))
    return len(rows)
