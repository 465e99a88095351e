"""A micro-batch of the same shape must reuse the code Spark generated for the last one.

Spark inlines timestamp literals in the Java code it generates. A batch clock
(``current_timestamp()``) or a moving watermark in a job's per-batch plan made every batch compile
new classes, which the JIT then never warmed (docs/streaming.md). Each test runs a job's per-batch
expressions as two consecutive batches would and counts Spark's own code compilations
(``CodegenMetrics``): the second batch must compile nothing.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from pyspark.sql import functions as F
from pyspark.sql.types import StructField, StructType, TimestampType

from jobs import raw_to_mongo
from jobs.config import load_config
from jobs.transforms.cdc_routing import is_late
from tests.support.pipeline import KAFKA_SOURCE_SCHEMA
from tests.unit.test_raw_readings import beijing_readings  # noqa: F401 - the fixture of real readings

pytestmark = pytest.mark.unit


def compilations(spark) -> int:
    return spark._jvm.org.apache.spark.metrics.source.CodegenMetrics.METRIC_COMPILATION_TIME().getCount()  # noqa: SLF001


def test_raw_to_mongo_checks_compile_nothing_for_a_second_batch(spark, beijing_readings):  # noqa: F811
    config = load_config()
    sent = datetime(2026, 11, 30, 12, 0)

    def batch(readings: list[dict], first_offset: int):
        rows = [
            (b"k", json.dumps(r).encode(), "aq.readings.raw", 0, first_offset + i, sent + timedelta(seconds=i))
            for i, r in enumerate(readings)
        ]
        checked = raw_to_mongo.check_records(spark.createDataFrame(rows, KAFKA_SOURCE_SCHEMA), config)
        return checked.select("quarantine_reason").collect()

    first = batch(beijing_readings[:5], 0)
    after_first = compilations(spark)
    second = batch(beijing_readings[5:], 5)
    assert [r.quarantine_reason for r in first + second] == [None] * len(beijing_readings)
    assert compilations(spark) == after_first, "the second batch compiled new code"


EVENT_TIMES = [
    datetime(1969, 12, 31, 23, 0),
    datetime(2013, 3, 1, 0, 0),
    datetime(2013, 3, 1, 11, 59, 59, 999999),
    datetime(2013, 3, 1, 12, 0),
    datetime(2013, 3, 1, 12, 0, 0, 1),
    datetime(2017, 2, 28, 23, 0),
]


@pytest.mark.parametrize("watermark", [datetime(1970, 1, 1), datetime(2013, 3, 1, 12, 0), datetime(2016, 1, 1)])
def test_is_late_is_event_time_before_the_watermark(spark, watermark):
    frame = spark.createDataFrame([(t,) for t in EVENT_TIMES], StructType([StructField("event_time", TimestampType())]))
    got = [row.late for row in frame.select(is_late(watermark).alias("late")).collect()]
    assert got == [t < watermark for t in EVENT_TIMES]


def test_a_moving_watermark_compiles_nothing_new(spark):
    frame = spark.createDataFrame([(t,) for t in EVENT_TIMES], StructType([StructField("event_time", TimestampType())]))

    def late_count(watermark: datetime) -> int:
        return frame.agg(F.count(F.when(is_late(watermark), 1)).alias("late")).first().late

    assert late_count(datetime(2013, 3, 1, 12, 0)) == 3
    after_first = compilations(spark)
    assert late_count(datetime(2013, 3, 1, 13, 0)) == 5
    assert compilations(spark) == after_first, "the second watermark compiled new code"
