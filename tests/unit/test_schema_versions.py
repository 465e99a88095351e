"""A schema_version rollout: the jobs accept the current and the previous version, quarantine any other.

Only version 1 exists today, so the rollout is shown as the one to version 2 will run: the records
are real readings (UCI Beijing, the same rows test_raw_readings uses) as the collectors write them
(version 1, the previous one once 2 is current) and the same readings stamped with version 2.
"""

from __future__ import annotations

import json

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, LongType, StringType, StructField, StructType

from jobs.config import ConfigError, accepted_schema_versions, load_config
from jobs.transforms import raw_readings as T
from schemas.reading import READING_FIELDS, SCHEMA_VERSION, reading_spark_schema
from tests.unit.test_raw_readings import NOW, beijing_readings, kafka_rows  # noqa: F401 - fixture

SCHEMA = reading_spark_schema()
OUTCOME = StructType(
    [
        StructField("offset", LongType(), False),
        StructField("schema_version", IntegerType(), True),
        StructField("quarantine_reason", StringType(), True),
    ]
)


def checked(spark, values: list[bytes], versions):
    parsed = T.parse_readings(T.decode_kafka_value(kafka_rows(spark, values)), SCHEMA)
    return T.with_quarantine_reason(
        parsed,
        SCHEMA,
        required_fields=[f.name for f in READING_FIELDS if f.required],
        supported_schema_versions=versions,
        value_ranges={f.name: f.valid_range for f in READING_FIELDS if f.valid_range},
        max_record_bytes=4096,
        now=F.lit(NOW),
        future_tolerance="10 minutes",
    )


def stamped(reading: dict, version: int) -> bytes:
    return json.dumps({**reading, "schema_version": version}).encode()


def test_the_recorded_readings_are_of_the_current_version(beijing_readings):  # noqa: F811
    assert {r["schema_version"] for r in beijing_readings} == {SCHEMA_VERSION} == {1}


def test_during_a_rollout_the_current_and_the_previous_version_pass_and_any_other_is_quarantined(
    spark,
    beijing_readings,  # noqa: F811
):
    versions = accepted_schema_versions("2,1", current=2)  # what AQSTREAM__STREAMING__ACCEPTED_SCHEMA_VERSIONS holds
    assert versions == (2, 1)
    r = beijing_readings
    values = [stamped(r[0], 1), stamped(r[1], 2), stamped(r[2], 3), stamped(r[3], 0), stamped(r[4], 1)]
    got = checked(spark, values, versions).select(
        "offset", F.col("reading.schema_version").alias("schema_version"), "quarantine_reason"
    )
    expected = spark.createDataFrame(
        [
            (0, 1, None),
            (1, 2, None),
            (2, 3, "unknown_schema_version: schema_version 3 not in [2, 1]"),
            (3, 0, "unknown_schema_version: schema_version 0 not in [2, 1]"),
            (4, 1, None),
        ],
        OUTCOME,
    )
    assert_df_equality(got, expected, ignore_nullable=True)


def test_after_the_rollout_the_previous_version_is_quarantined(spark, beijing_readings):  # noqa: F811
    versions = accepted_schema_versions([2], current=2)
    got = checked(spark, [stamped(beijing_readings[0], 1), stamped(beijing_readings[0], 2)], versions)
    reasons = [row.quarantine_reason for row in got.orderBy("offset").collect()]
    assert reasons == ["unknown_schema_version: schema_version 1 not in [2]", None]


def test_todays_default_accepts_version_1_only(spark, beijing_readings):  # noqa: F811
    config = load_config(environ={})
    assert config.streaming.accepted_schema_versions == (SCHEMA_VERSION,)
    got = checked(
        spark,
        [stamped(beijing_readings[0], 1), stamped(beijing_readings[0], 0)],
        config.streaming.accepted_schema_versions,
    )
    reasons = [row.quarantine_reason for row in got.orderBy("offset").collect()]
    assert reasons == [None, "unknown_schema_version: schema_version 0 not in [1]"]


@pytest.mark.parametrize(
    ("value", "current", "expected"),
    [([1], 1, (1,)), ("1", 1, (1,)), ("[2, 1]", 2, (2, 1)), ([1, 2], 2, (1, 2)), ([3], 3, (3,))],
)
def test_accepted_versions_are_the_current_and_at_most_the_previous(value, current, expected):
    assert accepted_schema_versions(value, current=current) == expected


@pytest.mark.parametrize(
    ("value", "current", "message"),
    [
        ([1, 0], 1, "[0] not accepted: the current version is 1, no previous one"),
        ([2], 1, "must include the current schema version 1"),
        ([3, 1], 3, "[1] not accepted: the current version is 3, the previous one 2"),
        ([2, 2, 1], 2, "lists a version twice"),
        ("two", 2, "'two' is not a schema version"),
        ([], 1, "must include the current schema version 1"),
    ],
)
def test_other_lists_are_refused(value, current, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        accepted_schema_versions(value, current=current)


def test_a_wrong_list_fails_at_start_naming_the_field():
    with pytest.raises(ConfigError, match=r"streaming\.accepted_schema_versions: .*current schema version 1"):
        load_config(environ={"AQSTREAM__STREAMING__ACCEPTED_SCHEMA_VERSIONS": "2"})
    assert load_config(
        environ={"AQSTREAM__STREAMING__ACCEPTED_SCHEMA_VERSIONS": "1"}
    ).streaming.accepted_schema_versions == (1,)
