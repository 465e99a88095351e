"""The canonical reading: one definition, its Spark schema, ids, JSON and Mongo forms."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, IntegerType, MapType, TimestampType

from schemas import reading as rd

pytestmark = pytest.mark.unit

TS = datetime(2026, 10, 3, 10, 0, tzinfo=UTC)


def _reading(**overrides):
    args = dict(
        source="openmeteo",
        station_id="nairobi",
        ts=TS,
        ingested_at=TS + timedelta(minutes=5),
        values={"pm25": 22.1, "co": 229.0},
        raw={"pm2_5": 22.1},
        station_name="Nairobi",
        city="Nairobi",
        country="KE",
        lat=-1.29,
        lon=36.82,
        extra={"dust_ugm3": 0.0},
    )
    args.update(overrides)
    return rd.build_reading(**args)


def test_spark_schema_has_every_field_with_its_type():
    schema = rd.reading_spark_schema()
    assert schema.fieldNames() == list(rd.READING_FIELD_NAMES)
    assert schema["ts"].dataType == TimestampType()
    assert schema["pm25"].dataType == DoubleType()
    assert schema["schema_version"].dataType == IntegerType()
    assert isinstance(schema["extra"].dataType, MapType)
    assert not schema["event_id"].nullable and schema["pm25"].nullable
    for name in ("event_id", "source", "station_id", "ts", "ingested_at", "sent_at", "raw", "schema_version"):
        assert name in schema.fieldNames()


def test_pydantic_model_and_spark_schema_agree():
    assert list(rd.Reading.model_fields) == rd.reading_spark_schema().fieldNames()


def test_event_id_is_deterministic_and_readable_back():
    a = _reading()
    b = _reading(ingested_at=TS + timedelta(hours=3))
    assert a["event_id"] == b["event_id"] == "openmeteo:nairobi:20261003T100000Z"
    parts = rd.parse_event_id(a["event_id"])
    assert (parts.source, parts.station_id, parts.day, parts.ts) == ("openmeteo", "nairobi", date(2026, 10, 3), TS)


def test_event_id_normalises_the_zone():
    nairobi = timezone(timedelta(hours=3))
    assert rd.make_event_id("openmeteo", "nairobi", datetime(2026, 10, 3, 13, 0, tzinfo=nairobi)).endswith(
        ":20261003T100000Z"
    )
    with pytest.raises(ValueError):
        rd.make_event_id("openmeteo", "nairobi", datetime(2026, 10, 3, 13, 0))


@pytest.mark.parametrize("bad", ["a:b", "Nairobi", "", "x y"])
def test_station_ids_cannot_hold_the_separator(bad):
    with pytest.raises(ValueError):
        rd.make_event_id("openaq", bad, TS)


def test_slugify():
    assert rd.slugify("US Diplomatic Post: Hanoi") == "us-diplomatic-post-hanoi"
    assert rd.slugify("Hà Nội") == "ha-noi"
    with pytest.raises(ValueError):
        rd.slugify("北京")


def test_kafka_json_is_utc_iso_and_round_trips():
    message = _reading()
    assert message["ts"] == "2026-10-03T10:00:00Z"
    assert message["schema_version"] == 1
    assert json.loads(message["raw"]) == {"pm2_5": 22.1}
    back = rd.reading_from_json_dict(json.loads(json.dumps(message)))
    assert back["ts"] == TS and back["pm25"] == 22.1


def test_spark_reads_the_collector_json_without_loss(spark):
    message = _reading(values={"pm25": 22.1, "pm10": -3.0}, flags=["so2:non_numeric"])
    message["sent_at"] = 1790935200123
    df = spark.createDataFrame([(json.dumps(message),)], "value string")
    row = df.select(F.from_json("value", rd.reading_spark_schema()).alias("r")).select("r.*").first().asDict()
    assert row["ts"].replace(tzinfo=UTC) == TS
    assert row["pm25"] == 22.1 and row["pm10"] == -3.0 and row["no2"] is None
    assert row["extra"] == {"dust_ugm3": 0.0}
    assert row["flags"] == ["so2:non_numeric", "pm10:negative"]
    assert row["sent_at"] == 1790935200123
    assert {k for k, v in row.items() if v is not None} == {k for k, v in message.items() if v is not None}


def test_spark_event_id_parts_match_python(spark):
    ids = ["openmeteo:nairobi:20261003T235959Z", "uci-beijing:beijing-dongsi:20130301T000000Z"]
    df = spark.createDataFrame([(i,) for i in ids], "event_id string")
    rows = df.select(
        rd.event_id_station_col(F.col("event_id")).alias("station_id"),
        rd.event_id_day_col(F.col("event_id")).alias("day"),
        rd.event_id_ts_col(F.col("event_id")).alias("ts"),
    ).collect()
    for event_id, row in zip(ids, rows, strict=True):
        parts = rd.parse_event_id(event_id)
        assert (row.station_id, row.day, row.ts.replace(tzinfo=UTC)) == (parts.station_id, parts.day, parts.ts)


def test_range_flags_keep_the_value():
    message = _reading(values={"pm10": -5.0, "humidity": 120.0, "pm25": None})
    assert message["pm10"] == -5.0 and message["humidity"] == 120.0 and message["pm25"] is None
    assert message["flags"] == ["pm10:negative", "humidity:out_of_range"]
    assert _reading(lon=185.2)["flags"] == ["lon:out_of_range"]


def test_a_zone_tzdata_does_not_know_is_flagged_and_left_out_never_guessed():
    assert _reading(timezone="Asia/Shanghai")["timezone"] == "Asia/Shanghai"
    unknown = _reading(timezone="Asia/Nowhere")
    assert unknown["timezone"] is None and unknown["flags"] == ["timezone:unknown_zone"]
    assert _reading()["timezone"] is None and _reading()["flags"] == []


def test_unknown_value_fields_are_refused():
    with pytest.raises(ValueError, match="extra"):
        _reading(values={"pm1": 3.0})


def test_mongo_document():
    document = rd.reading_to_mongo_document(_reading())
    assert document["_id"] == document["event_id"] == "openmeteo:nairobi:20261003T100000Z"
    assert document["ts"] == TS and document["ts"].tzinfo is not None
    assert isinstance(document["raw"], str)
