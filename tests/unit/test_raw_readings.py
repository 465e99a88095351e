"""The raw topic's transforms: parse with the explicit schema, quarantine with a reason, map to the sinks."""

from __future__ import annotations

import csv
import json
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from collectors import replay
from collectors.cli import REPO_ROOT
from jobs.transforms import raw_readings as T
from jobs.transforms.quarantine import QUARANTINE_SCHEMA
from schemas.reading import READING_FIELDS, SCHEMA_VERSION, build_reading, reading_spark_schema
from tests.support.pipeline import KAFKA_SOURCE_SCHEMA

SCHEMA = reading_spark_schema()
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
KAFKA_TS = datetime(2026, 11, 23, 11, 0)


@pytest.fixture(scope="module")
def beijing_readings(data_dir) -> list[dict]:
    """Ten real hourly rows of one UCI Beijing station, as canonical readings."""
    path = data_dir / "bench" / "PRSA_Data_Aotizhongxin_20130301-20170228.csv"
    with path.open(newline="") as fh:
        rows = [row for _, row in zip(range(10), csv.DictReader(fh), strict=False)]
    beijing = timezone(timedelta(hours=8))

    def num(text: str) -> float | None:
        return None if text == "NA" else float(text)

    return [
        build_reading(
            source="uci-beijing",
            station_id="aotizhongxin",
            ts=datetime(int(r["year"]), int(r["month"]), int(r["day"]), int(r["hour"]), tzinfo=beijing),
            ingested_at=NOW - timedelta(minutes=5),
            values={"pm25": num(r["PM2.5"]), "pm10": num(r["PM10"]), "no2": num(r["NO2"]), "o3": num(r["O3"])},
            raw=r,
        )
        for r in rows
    ]


def kafka_rows(spark, values: list[bytes | None]):
    rows = [(b"k", v, "aq.readings.raw", 0, offset, KAFKA_TS) for offset, v in enumerate(values)]
    return spark.createDataFrame(rows, KAFKA_SOURCE_SCHEMA)


def check(spark, values: list[bytes | None]):
    parsed = T.parse_readings(T.decode_kafka_value(kafka_rows(spark, values)), SCHEMA)
    return T.with_quarantine_reason(
        parsed,
        SCHEMA,
        required_fields=[f.name for f in READING_FIELDS if f.required],
        supported_schema_versions=[SCHEMA_VERSION],
        value_ranges={f.name: f.valid_range for f in READING_FIELDS if f.valid_range},
        max_record_bytes=4096,
        now=F.lit(NOW),
        future_tolerance="10 minutes",
    )


def encode(reading: dict) -> bytes:
    return json.dumps(reading).encode()


def test_valid_readings_pass_with_every_value_intact(spark, beijing_readings):
    checked = check(spark, [encode(r) for r in beijing_readings])
    assert [r.quarantine_reason for r in checked.collect()] == [None] * len(beijing_readings)

    valid = T.valid_readings(checked, SCHEMA)
    assert valid.schema.simpleString() == SCHEMA.simpleString()
    by_id = {r.event_id: r.asDict() for r in valid.collect()}
    for reading in beijing_readings:
        got = by_id[reading["event_id"]]
        for name in ("source", "station_id", "pm25", "pm10", "no2", "o3", "raw", "schema_version"):
            assert got[name] == reading[name], name
        assert got["ts"].replace(tzinfo=UTC) == datetime.fromisoformat(reading["ts"].replace("Z", "+00:00"))


def test_first_beijing_hour_is_utc_and_spot_checked(spark, beijing_readings):
    # CSV row 1: 2013-03-01 00:00 Beijing time, PM2.5 4, PM10 4  ->  2013-02-28T16:00Z
    first = T.valid_readings(check(spark, [encode(beijing_readings[0])]), SCHEMA).collect()[0]
    assert first.event_id == "uci-beijing:aotizhongxin:20130228T160000Z"
    assert (first.pm25, first.pm10) == (4.0, 4.0)


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda r: b"", T.EMPTY),
        (lambda r: None, T.EMPTY),
        (lambda r: encode(r) + b" " * 5000, T.TOO_LARGE),
        (lambda r: b"\xff\xfe\x00garbage", T.NOT_UTF8),
        (lambda r: encode(r)[:40], T.UNPARSEABLE),
        (lambda r: b"[1, 2, 3]", T.UNPARSEABLE),
        (lambda r: encode({**r, "pm25": "high"}), T.WRONG_TYPE),
        (lambda r: encode({**r, "ts": "yesterday"}), T.WRONG_TYPE),
        (lambda r: encode({k: v for k, v in r.items() if k != "station_id"}), T.MISSING_FIELD),
        (lambda r: encode({**r, "event_id": None}), T.MISSING_FIELD),
        (lambda r: encode({**r, "schema_version": 99}), T.UNKNOWN_SCHEMA_VERSION),
        (lambda r: encode({**r, "pm25": -3.0}), T.OUT_OF_RANGE),
        (lambda r: encode({**r, "co": 1e9}), T.OUT_OF_RANGE),
        (lambda r: encode({**r, "lat": 123.0}), T.OUT_OF_RANGE),
        (lambda r: encode({**r, "ts": "2026-11-24T12:00:00Z"}), T.FUTURE_TIMESTAMP),
    ],
)
def test_each_bad_record_is_quarantined_with_its_reason(spark, beijing_readings, mutate, code):
    good = beijing_readings[0]
    checked = check(spark, [encode(good), mutate(good)])
    reasons = [r.quarantine_reason for r in checked.orderBy("offset").collect()]
    assert reasons[0] is None
    assert reasons[1] is not None and reasons[1].startswith(f"{code}: ")


def test_reading_exactly_at_the_future_tolerance_is_valid(spark, beijing_readings):
    at_limit = encode({**beijing_readings[0], "ts": "2026-11-23T12:10:00Z"})
    assert check(spark, [at_limit]).collect()[0].quarantine_reason is None


def test_quarantine_rows_keep_bytes_coordinates_and_reason(spark, beijing_readings):
    bad = b'{"event_id": "truncated'
    checked = check(spark, [encode(beijing_readings[0]), bad])
    quarantined = T.quarantine_records(checked, F.lit(NOW).cast("timestamp"))
    expected = spark.createDataFrame(
        [
            (
                "aq.readings.raw",
                0,
                1,
                KAFKA_TS,
                b"k",
                bytearray(bad),
                T.UNPARSEABLE,
                f"{T.UNPARSEABLE}: malformed or truncated JSON",
                NOW.replace(tzinfo=None),
            )
        ],
        QUARANTINE_SCHEMA,
    )
    assert_df_equality(quarantined, expected, ignore_nullable=True)


def test_duplicates_within_a_batch_are_dropped(spark, beijing_readings):
    values = [encode(r) for r in beijing_readings] + [encode(beijing_readings[3])]
    valid = T.valid_readings(check(spark, values), SCHEMA)
    assert valid.count() == len(beijing_readings) + 1
    unique = T.drop_duplicate_readings(valid)
    assert sorted(r.event_id for r in unique.collect()) == sorted(r["event_id"] for r in beijing_readings)


def test_mongo_document_has_id_equal_event_id_and_the_raw_record(spark, beijing_readings):
    valid = T.valid_readings(check(spark, [encode(beijing_readings[0])]), SCHEMA)
    document = T.to_mongo_documents(valid).collect()[0].asDict()
    assert document["_id"] == document["event_id"] == beijing_readings[0]["event_id"]
    assert json.loads(document["raw"])["PM2.5"] == "4"
    assert list(T.to_mongo_documents(valid).columns) == ["_id", *[f.name for f in READING_FIELDS]]


def test_bronze_rows_carry_their_utc_date(spark, beijing_readings):
    bronze = T.to_bronze_rows(check(spark, [encode(beijing_readings[0])]), SCHEMA)
    # 2013-03-01 00:00 in Beijing is still 2013-02-28 in UTC
    assert bronze.select("date").collect()[0].date == date(2013, 2, 28)


def test_bronze_keeps_every_valid_record_once_and_its_view_one_per_reading(spark, beijing_readings):
    """A re-sent reading is a second Kafka record: bronze keeps both (what arrived), the view the last."""
    resent = {**beijing_readings[3], "pm25": 77.0}
    values = [encode(r) for r in beijing_readings] + [b"not json", encode(resent)]
    bronze = T.to_bronze_rows(check(spark, values), SCHEMA)
    assert bronze.count() == len(beijing_readings) + 1  # the bad record is not bronze
    coordinates = [(r.kafka_topic, r.kafka_partition, r.kafka_offset) for r in bronze.collect()]
    assert len(set(coordinates)) == len(coordinates)
    assert ("aq.readings.raw", 0, len(values) - 1) in coordinates
    view = T.bronze_readings(bronze)
    assert sorted(r.event_id for r in view.collect()) == sorted(r["event_id"] for r in beijing_readings)
    assert view.where(F.col("event_id") == resent["event_id"]).first().pm25 == 77.0


def test_quarantine_kafka_message_keeps_original_bytes_and_reason_headers(spark, beijing_readings):
    checked = check(spark, [b"\xff\xfe"])
    message = T.to_quarantine_kafka_messages(T.quarantine_records(checked, F.current_timestamp())).collect()[0]
    assert bytes(message.value) == b"\xff\xfe"
    headers = {h.key: bytes(h.value).decode() for h in message.headers}
    assert headers["aq.reason"].startswith(T.NOT_UTF8)
    assert (headers["aq.source.topic"], headers["aq.source.partition"], headers["aq.source.offset"]) == (
        "aq.readings.raw",
        "0",
        "0",
    )


def test_a_reading_of_a_station_the_mapping_does_not_know_is_valid_with_null_coordinates(spark, data_dir):
    """Replay sends an unknown station's readings with null lat/lon and ``station:unknown``: lat/lon are not
    required, so raw_to_mongo keeps them (not quarantined), coordinates null and the flag intact."""
    mapping = json.loads((REPO_ROOT / "conf" / "mappings" / "beijing.json").read_text())
    del mapping["station"]["coordinates"]["Dongsi"]
    path = data_dir / "bench" / "PRSA_Data_Dongsi_20130301-20170228.csv"
    readings: list[dict] = []
    replay.replay([path], replay.DatasetMapping.model_validate(mapping), readings.append, limit=5, now=lambda: NOW)
    assert all(replay.UNKNOWN_STATION_FLAG in r["flags"] and r["lat"] is None for r in readings)

    checked = check(spark, [encode(r) for r in readings])
    assert [r.quarantine_reason for r in checked.collect()] == [None] * len(readings)
    valid = {r.event_id: r for r in T.valid_readings(checked, SCHEMA).collect()}
    assert set(valid) == {r["event_id"] for r in readings}
    for reading in readings:
        got = valid[reading["event_id"]]
        assert (got.lat, got.lon) == (None, None) and got.flags == reading["flags"]
