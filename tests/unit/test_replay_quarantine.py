"""Replaying quarantined raw records: the original bytes go back to the raw topic and pass once fixed."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, BinaryType, StringType, StructField, StructType

from jobs.replay_quarantine import replay_messages
from jobs.transforms import raw_readings as T
from tests.unit.test_raw_readings import beijing_readings, kafka_rows  # noqa: F401 - fixture
from tests.unit.test_schema_versions import SCHEMA, checked

RAW = "aq.readings.raw"
MESSAGE = StructType(
    [
        StructField("key", BinaryType(), True),
        StructField("value", BinaryType(), True),
        StructField(
            "headers",
            ArrayType(StructType([StructField("key", StringType()), StructField("value", BinaryType())])),
        ),
        StructField("reason_code", StringType(), False),
    ]
)


def quarantined(spark, values: list[bytes], versions, at: datetime):
    return T.quarantine_records(checked(spark, values, versions), F.lit(at).cast("timestamp"))


def test_a_record_quarantined_for_its_version_passes_when_replayed_after_the_rollout(
    spark,
    beijing_readings,  # noqa: F811
):
    v2 = json.dumps({**beijing_readings[0], "schema_version": 2}).encode()
    negative_pm25 = json.dumps({**beijing_readings[1], "pm25": -3.0}).encode()
    at = datetime(2026, 11, 23, 12, 0)
    # before the rollout the jobs accept 1 only: all three are quarantined, each for its reason
    table = quarantined(spark, [v2, negative_pm25, b"not json"], [1], at)
    assert sorted(r.reason_code for r in table.collect()) == sorted(
        [T.OUT_OF_RANGE, T.UNPARSEABLE, T.UNKNOWN_SCHEMA_VERSION]
    )

    messages = replay_messages(table, RAW, [T.UNKNOWN_SCHEMA_VERSION])
    reason = f"{T.UNKNOWN_SCHEMA_VERSION}: schema_version 2 not in [1]"
    expected = spark.createDataFrame(
        [
            (
                bytearray(b"k"),
                bytearray(v2),
                [
                    ("aq.replay.topic", bytearray(RAW.encode())),
                    ("aq.replay.partition", bytearray(b"0")),
                    ("aq.replay.offset", bytearray(b"0")),
                    ("aq.replay.reason", bytearray(reason.encode())),
                ],
                T.UNKNOWN_SCHEMA_VERSION,
            )
        ],
        MESSAGE,
    )
    assert_df_equality(messages, expected, ignore_nullable=True)

    # the replayed bytes, read back as raw_to_mongo reads the topic, pass once 2 is accepted
    replayed = [bytes(m.value) for m in messages.collect()]
    after = checked(spark, replayed, [2, 1])
    assert [r.quarantine_reason for r in after.collect()] == [None]
    assert T.valid_readings(after, SCHEMA).first().event_id == beijing_readings[0]["event_id"]


def test_only_the_raw_topic_the_window_and_one_copy_per_record_are_replayed(spark, beijing_readings):  # noqa: F811
    v2 = json.dumps({**beijing_readings[0], "schema_version": 2}).encode()
    first = quarantined(spark, [v2], [1], datetime(2026, 11, 23, 12, 0))
    # the same record quarantined again (a reset checkpoint re-reads it), and a later one
    again = quarantined(spark, [v2], [1], datetime(2026, 11, 23, 13, 0))
    later = quarantined(spark, [b"x", v2], [1], datetime(2026, 11, 24, 9, 0)).where(F.col("offset") == 1)
    other_topic = first.withColumn("topic", F.lit("aq.other"))
    table = first.unionByName(again).unionByName(later).unionByName(other_topic)

    def offsets(**window):
        rows = replay_messages(table, RAW, [T.UNKNOWN_SCHEMA_VERSION], **window).collect()
        return sorted(int(bytes(dict((h.key, h.value) for h in r.headers)["aq.replay.offset"])) for r in rows)

    assert offsets() == [0, 1]
    assert offsets(until=datetime(2026, 11, 24)) == [0]
    assert offsets(since=datetime(2026, 11, 24)) == [1]
    assert replay_messages(table, RAW, [T.OUT_OF_RANGE]).count() == 0


def test_empty_values_are_not_replayed_and_a_reason_is_required(spark):
    table = quarantined(spark, [b""], [1], datetime(2026, 11, 23, 12, 0))
    assert [r.reason_code for r in table.collect()] == [T.EMPTY]
    assert replay_messages(table, RAW, [T.EMPTY]).count() == 0
    with pytest.raises(ValueError, match="at least one reason code"):
        replay_messages(table, RAW, [])
