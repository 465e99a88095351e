"""The CDC transforms: Debezium envelope → change → Cassandra rows; window aggregates vs a pandas oracle."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from jobs.transforms import aggregates as A
from jobs.transforms.cdc_changes import (
    DELETE,
    HEARTBEAT,
    KEY_MISMATCH,
    MISSING_DOCUMENT,
    MISSING_FIELD,
    PATCH,
    QUARANTINE,
    TOMBSTONE,
    UNKNOWN_OP,
    UNKNOWN_SCHEMA_VERSION,
    UNPARSEABLE_DOCUMENT,
    UNPARSEABLE_ENVELOPE,
    UNROUTABLE_KEY,
    UPSERT,
    WRONG_TYPE,
    decode_changes,
    quarantine_records,
)
from jobs.transforms.cdc_routing import delete_keys, last_changes, to_patch_rows, to_reading_rows
from jobs.transforms.extended_json import (
    ext_json_double,
    ext_json_int,
    ext_json_long,
    ext_json_text,
    ext_json_timestamp,
)
from schemas.cassandra import readings_row_spark_schema, readings_table_columns
from schemas.reading import POLLUTANT_FIELDS, SCHEMA_VERSION
from tests.support.cdc_events import (
    EnvelopeFactory,
    assert_aggregates_equal,
    beijing_readings,
    extended_json,
    pandas_aggregates,
    reading_aqi_mismatches,
    recorded_events,
)
from tests.support.pipeline import KAFKA_SOURCE_SCHEMA

KAFKA_TS = datetime(2026, 1, 1, 0, 0)


def kafka_rows(spark, messages: list[tuple[bytes | None, bytes | None]], partition: int = 0):
    rows = [(k, v, "aqcdc.airquality.readings_raw", partition, i, KAFKA_TS) for i, (k, v) in enumerate(messages)]
    return spark.createDataFrame(rows, KAFKA_SOURCE_SCHEMA)


def decode(spark, messages, schemas_enabled=None):
    """Decoded changes, materialised as the job's ``foreachBatch`` receives them (the decode runs in
    the streaming plan; the batch function gets its rows, not its expressions)."""
    return decode_changes(kafka_rows(spark, messages), [SCHEMA_VERSION], schemas_enabled).localCheckpoint()


def as_bytes(line: str | None) -> bytes | None:
    return None if line is None else line.encode()


@pytest.fixture(scope="module")
def readings(data_dir) -> list[dict]:
    """48 real hours of UCI Beijing Aotizhongxin (with NA gaps), as canonical readings."""
    return beijing_readings(data_dir, "Aotizhongxin", 48)


def expected_reading_rows(spark, readings: list[dict]):
    """The Cassandra rows built in plain Python from the readings (AQI null: not this test's subject)."""
    from tests.support.cdc_events import mongo_document

    names = [n for n, _ in readings_table_columns()]
    rows = []
    for message in readings:
        doc = mongo_document(message)
        ts = doc["ts"].astimezone(UTC).replace(tzinfo=None)
        values = {
            **doc,
            "ts": ts,
            "day": ts.date(),
            "ingested_at": doc["ingested_at"].astimezone(UTC).replace(tzinfo=None),
        }
        rows.append(tuple(values.get(n) for n in names))
    return spark.createDataFrame(rows, readings_row_spark_schema())


# --- the recorded real events ---------------------------------------------------------------------


def test_every_recorded_event_is_parsed_and_classified(spark, data_dir):
    """c, u, r with and without the schema wrapper: envelope read, document decoded, and (not being
    air-quality readings: their _id is an ObjectId or a number) quarantined as unroutable, never lost."""
    events = recorded_events(data_dir)
    assert {json.loads(v).get("payload", json.loads(v))["op"] for _, _, v, _ in events} == {"c", "u", "r"}
    changes = decode(spark, [(as_bytes(k), as_bytes(v)) for _, _, v, k in events])
    rows = changes.select("event.op", "doc_id", "change_kind", "quarantine_reason", "document._id").collect()
    assert [r.op for r in rows] == [json.loads(v).get("payload", json.loads(v))["op"] for _, _, v, _ in events]
    assert [r.doc_id for r in rows] == ["67ab25755c0d5ac87eb8c632"] * 3 + ["1001", "1002", "1003", "1004"]
    assert {r.change_kind for r in rows} == {QUARANTINE}
    assert all(r.quarantine_reason.startswith(f"{UNROUTABLE_KEY}: document id is not an event id") for r in rows)
    # with the wrapper fixed on / off: the same payloads as auto-detection
    for with_schema in (True, False):
        subset = [(as_bytes(k), as_bytes(v)) for _, ws, v, k in events if ws is with_schema]
        fixed = decode(spark, subset, with_schema).select("event").collect()
        auto = decode(spark, subset).select("event").collect()
        assert fixed == auto and all(r.event is not None for r in fixed)
        wrong = decode(spark, subset, not with_schema).select("change_kind", "quarantine_reason").collect()
        assert {r.change_kind for r in wrong} == {QUARANTINE}


def test_recorded_documents_decode_strict_extended_json(spark, data_dir):
    _, _, value, _ = recorded_events(data_dir)[0]  # paimon insert: $oid, $numberLong, $date (strict v1)
    after = json.loads(value)["after"]
    row = (
        spark.createDataFrame([(after,)], "t string")
        .select(F.from_json("t", "_id string, created_at string, updated_at string, tags array<string>").alias("d"))
        .select(
            ext_json_text(F.col("d._id")).alias("id"),
            ext_json_long(F.col("d.created_at")).alias("created"),
            ext_json_timestamp(F.col("d.updated_at")).alias("updated"),
            F.col("d.tags").alias("tags"),
        )
        .first()
    )
    assert row.id == "67ab25755c0d5ac87eb8c632" and row.created == 1736207571013
    assert row.updated == datetime(2025, 2, 13, 14, 1, 37, 970000) and row.tags == ["pending"]


def test_every_bson_type_of_the_recorded_document(spark, data_dir):
    text = (data_dir / "debezium" / "paimon_mongo_extended_json_all_bson_types.json").read_text()
    schema = (
        "id string, age string, created_time string, updated_time string, deleted_time string, double_nan string,"
        " double_inf string, double_ninf string, double_zero string, decimal string, symbol string,"
        " context struct<location: struct<lat: string, lon: string>, end_time: string, nan: string>"
    )
    d = F.col("d")
    row = (
        spark.createDataFrame([(text,)], "t string")
        .select(F.from_json("t", schema).alias("d"))
        .select(
            ext_json_text(d.id).alias("id"),
            ext_json_int(d.age).alias("age"),
            ext_json_long(d.created_time).alias("created"),
            ext_json_long(d.updated_time).alias("updated"),
            ext_json_timestamp(d.deleted_time).alias("deleted"),
            ext_json_double(d.double_nan).alias("nan"),
            ext_json_double(d.double_inf).alias("inf"),
            ext_json_double(d.double_ninf).alias("ninf"),
            ext_json_double(d.double_zero).alias("zero"),
            ext_json_double(d.decimal).alias("decimal"),
            ext_json_text(d.symbol).alias("symbol"),
            ext_json_double(d.context.location.lat).alias("lat"),
            ext_json_double(d.context.location.lon).alias("lon"),
            ext_json_long(d.context.end_time).alias("end_time"),
        )
        .first()
    )
    assert (row.id, row.age, row.created, row.updated) == ("596e275826f08b2730779e1f", 25, 1735934393769, 1735934393769)
    assert row.deleted == datetime(2025, 1, 3, 19, 59, 53, 769000)
    assert math.isnan(row.nan) and row.inf == math.inf and row.ninf == -math.inf and row.zero == 0.0
    assert (row.decimal, row.symbol, row.lat, row.lon) == (3.14, "symbol", 31.2304, 121.4737)
    assert row.end_time == 1735934393769


def test_dates_in_every_encoding(spark):
    texts = [
        '{"$date": 1739455297970}',  # strict v1 (after)
        '{"$date": "2025-02-13T14:01:37.97Z"}',  # relaxed v2 (updatedFields)
        '{"$date": {"$numberLong": "1739455297970"}}',  # canonical v2
        '"2025-02-13T14:01:37.970Z"',  # a plain ISO string
    ]
    rows = (
        spark.createDataFrame([(f'{{"ts": {t}}}',) for t in texts], "t string")
        .select(ext_json_timestamp(F.from_json("t", "ts string").ts).alias("ts"))
        .collect()
    )
    assert [r.ts for r in rows] == [datetime(2025, 2, 13, 14, 1, 37, 970000)] * 4


# --- our readings in the recorded envelopes ------------------------------------------------------------


@pytest.mark.parametrize("with_schema", [False, True], ids=["schemaless", "with_schema"])
@pytest.mark.parametrize("op", ["c", "r", "u"])
def test_reading_events_map_to_cassandra_rows(spark, data_dir, readings, op, with_schema):
    factory = EnvelopeFactory(data_dir, with_schema)
    changes = decode(spark, [factory.change(op, r) for r in readings])
    assert {r.change_kind for r in changes.select("change_kind").collect()} == {UPSERT}
    rows = to_reading_rows(last_changes(changes))
    expected = expected_reading_rows(spark, readings)
    assert_df_equality(rows.orderBy("event_id"), expected.orderBy("event_id"), ignore_nullable=True)


def test_first_row_spot_checked(spark, data_dir, readings):
    factory = EnvelopeFactory(data_dir, False)
    row = to_reading_rows(last_changes(decode(spark, [factory.change("c", readings[0])]))).first()
    # 2013-03-01 00:00 Beijing = 2013-02-28 16:00 UTC: the day partition is the UTC date
    assert (row.station_id, row.day, row.ts) == ("aotizhongxin", date(2013, 2, 28), datetime(2013, 2, 28, 16, 0))
    assert (row.event_id, row.pm25, row.pm10, row.co, row.schema_version) == (
        "uci-beijing:aotizhongxin:20130228T160000Z",
        4.0,
        4.0,
        300.0,
        1,
    )


def test_patch_from_relaxed_updated_fields(spark, data_dir, readings):
    factory = EnvelopeFactory(data_dir, True)
    event_id = readings[0]["event_id"]
    new_ingested = datetime(2026, 2, 1, 12, 30, 15, 250000, tzinfo=UTC)
    changes = decode(spark, [factory.patch(event_id, {"pm25": 99.5, "ingested_at": new_ingested})])
    assert changes.select("change_kind").first().change_kind == PATCH
    row = to_patch_rows(last_changes(changes)).first()
    assert (row.station_id, row.day, row.ts) == ("aotizhongxin", date(2013, 2, 28), datetime(2013, 2, 28, 16, 0))
    assert row.pm25 == 99.5 and row.ingested_at == datetime(2026, 2, 1, 12, 30, 15, 250000)
    assert row.pm10 is None and row.source is None  # not named by the patch: left as Cassandra has it


@pytest.mark.parametrize("with_schema", [False, True], ids=["schemaless", "with_schema"])
def test_delete_is_routed_by_the_key_and_the_tombstone_passed_over(spark, data_dir, readings, with_schema):
    factory = EnvelopeFactory(data_dir, with_schema)
    changes = decode(spark, factory.delete(readings[5]["event_id"]))
    assert [r.change_kind for r in changes.orderBy("offset").collect()] == [DELETE, TOMBSTONE]
    assert changes.where(F.col("quarantine_reason").isNotNull()).count() == 0
    keys = delete_keys(last_changes(changes)).collect()
    assert [tuple(k) for k in keys] == [("aotizhongxin", date(2013, 2, 28), datetime(2013, 2, 28, 21, 0))]


def test_heartbeat_is_passed_over(spark):
    changes = decode(spark, [(b'{"serverName": "aqcdc"}', b'{"ts_ms": 1767225600000}')])
    row = changes.select("change_kind", "quarantine_reason").first()
    assert (row.change_kind, row.quarantine_reason) == (HEARTBEAT, None)


def test_last_change_per_reading_wins_within_a_batch(spark, data_dir, readings):
    f = EnvelopeFactory(data_dir, False)
    a, b, c = readings[0], readings[1], readings[2]
    updated_b = {**b, "pm25": 1234.0}
    messages = [
        f.change("c", a),
        f.change("u", {**a, "pm25": 7.0}),
        *f.delete(a["event_id"]),  # a: created, updated, deleted -> delete
        *f.delete(b["event_id"]),
        f.change("c", updated_b),  # b: deleted then re-created -> upsert with the new value
        f.change("c", c),
        f.patch(c["event_id"], {"pm10": 1.0}),
        f.patch(c["event_id"], {"pm10": 2.0, "no2": 3.0}),  # c: upsert, then the patches merged
    ]
    last = last_changes(decode(spark, messages))
    got = {(r.event_id, r.change_kind): r.document for r in last.collect()}
    assert set(got) == {
        (a["event_id"], DELETE),
        (b["event_id"], UPSERT),
        (c["event_id"], UPSERT),
        (c["event_id"], PATCH),
    }
    assert got[(b["event_id"], UPSERT)].pm25 == 1234.0
    patch = got[(c["event_id"], PATCH)]
    assert (patch.pm10, patch.no2, patch.pm25) == (2.0, 3.0, None)


# --- quarantine ----------------------------------------------------------------------------------------------


def _with_after(factory: EnvelopeFactory, reading: dict, mutate) -> tuple[bytes, bytes]:
    key, value = factory.change("c", reading)
    event = json.loads(value)
    doc = json.loads(event["after"])
    mutate(doc)
    event["after"] = json.dumps(doc)
    return key, json.dumps(event).encode()


def test_each_bad_event_is_quarantined_with_its_reason(spark, data_dir, readings):
    f = EnvelopeFactory(data_dir, False)
    good_key, good_value = f.change("c", readings[0])
    event = json.loads(good_value)
    cases = {
        UNPARSEABLE_ENVELOPE: (good_key, b"not json"),
        UNKNOWN_OP: (good_key, json.dumps({**event, "op": "x"}).encode()),
        MISSING_DOCUMENT: (good_key, json.dumps({**event, "after": None}).encode()),
        UNPARSEABLE_DOCUMENT: (good_key, json.dumps({**event, "after": "[1, 2"}).encode()),
        UNROUTABLE_KEY: (json.dumps({"id": '{"$oid": "67ab25755c0d5ac87eb8c632"}'}).encode(), good_value),
        MISSING_FIELD: _with_after(f, readings[0], lambda d: d.pop("source")),
        WRONG_TYPE: _with_after(f, readings[0], lambda d: d.update(pm25="high")),
        UNKNOWN_SCHEMA_VERSION: _with_after(f, readings[0], lambda d: d.update(schema_version=7)),
        KEY_MISMATCH: _with_after(f, readings[0], lambda d: d.update(station_id="dongsi")),
    }
    changes = decode(spark, list(cases.values()))
    quarantined = quarantine_records(changes, F.lit(KAFKA_TS)).orderBy("offset").collect()
    assert [q.reason_code for q in quarantined] == list(cases)
    assert [q.value for q in quarantined] == [bytearray(v) for _, v in cases.values()]
    assert quarantined[2].reason == f"{MISSING_DOCUMENT}: no after and no updateDescription"
    assert quarantined[6].reason.startswith(f"{WRONG_TYPE}: pm25: ")
    assert quarantined[5].reason == f"{MISSING_FIELD}: source"
    # the good event next to them goes through
    assert decode(spark, [(good_key, good_value)]).first().change_kind == UPSERT


# --- aggregates -------------------------------------------------------------------------------------------------


def _readings_as_stored(spark, data_dir, readings) -> list[dict]:
    """The readings through the envelope decode into Cassandra rows, as the job reads them back
    (``station_id``, ``ts`` as naive UTC, the pollutants)."""
    from jobs.driver_rows import from_micros

    f = EnvelopeFactory(data_dir, False)
    rows = to_reading_rows(last_changes(decode(spark, [f.change("c", r) for r in readings])))
    collected = rows.select("station_id", F.unix_micros("ts").alias("ts"), *POLLUTANT_FIELDS, "timezone").collect()
    return [{**r.asDict(), "ts": from_micros(r.ts)} for r in collected]


def _zones(stored: list[dict]) -> dict:
    """Each station's zone, as the job finds it: from the readings' ``timezone`` (Beijing's: Asia/Shanghai)."""
    return A.station_zones({r["station_id"] for r in stored}, stored, {})


def _all_windows(stored: list[dict]) -> set:
    return A.touched_windows(((r["station_id"], r["ts"]) for r in stored), _zones(stored))


def _frame(rows: list[dict]):
    import pandas as pd

    return pd.DataFrame(rows)


def test_aggregates_equal_an_independent_pandas_computation(spark, data_dir):
    """Three real days of two Beijing stations (NA gaps included) through the envelope → rows → windows."""
    readings = beijing_readings(data_dir, "Aotizhongxin", 72) + beijing_readings(data_dir, "Dongsi", 72, start=24)
    stored = _readings_as_stored(spark, data_dir, readings)
    rows = A.window_rows(stored, _all_windows(stored), KAFKA_TS, _zones(stored))
    assert len(rows) == 2 * 72 + 2 * 3  # 72 hours each from a local midnight: 3 Beijing days
    assert_aggregates_equal(_frame(rows), pandas_aggregates(readings))
    assert {r["updated_at"] for r in rows} == {KAFKA_TS}


def test_window_rows_land_in_the_partition_of_their_utc_month_or_year():
    """Readings either side of a month and a year boundary: each window's row carries its own bucket."""
    times = [datetime(2012, 12, 31, 23, 30), datetime(2013, 1, 1, 0, 30), datetime(2013, 1, 31, 23, 10)]
    readings = [{"station_id": "s", "ts": ts, "pm25": 10.0} for ts in times]
    rows = A.window_rows(readings, _all_windows(readings), KAFKA_TS, {})
    assert {(r["window_size"], r["window_start"], r["bucket"]) for r in rows} == {
        ("1h", datetime(2012, 12, 31, 23), "2012-12"),
        ("1h", datetime(2013, 1, 1, 0), "2013-01"),
        ("1h", datetime(2013, 1, 31, 23), "2013-01"),
        ("1d", datetime(2012, 12, 31), "2012"),
        ("1d", datetime(2013, 1, 1), "2013"),
        ("1d", datetime(2013, 1, 31), "2013"),
    }
    assert A.buckets_of(_all_windows(readings)) == {
        ("s", "1h", "2012-12"),
        ("s", "1h", "2013-01"),
        ("s", "1d", "2012"),
        ("s", "1d", "2013"),
    }


def test_aggregate_aqi_is_the_aqi_of_the_window_means(spark, data_dir, readings):
    """The AQI columns of a window come from its means (not its maxima): checked against the pandas
    oracle, whose AQI columns are the pure functions applied to its own means."""
    from jobs.transforms.aqi import AQI_OUTPUT_COLUMNS

    stored = _readings_as_stored(spark, data_dir, readings)
    rows = A.window_rows(stored, _all_windows(stored), KAFKA_TS, _zones(stored))
    oracle = pandas_aggregates(readings)
    expected = {
        (o["station_id"], o["window_size"], o["window_start"].to_pydatetime()): tuple(o[c] for c in AQI_OUTPUT_COLUMNS)
        for o in oracle.to_dict("records")
    }
    got = {
        (r["station_id"], r["window_size"], r["window_start"]): tuple(r[c] for c in AQI_OUTPUT_COLUMNS) for r in rows
    }
    assert got == expected
    assert {v[1] for v in got.values()} >= {"Moderate", "Unhealthy"}  # the days span several categories


def test_touched_windows_and_changed_aggregates(spark, data_dir, readings):
    from jobs.cdc_to_cassandra import changed_readings

    stored = _readings_as_stored(spark, data_dir, readings)
    f = EnvelopeFactory(data_dir, False)
    last = last_changes(decode(spark, [f.change("u", readings[0]), *f.delete(readings[30]["event_id"])]))
    changed = changed_readings(last)
    zones = _zones(stored)
    # Beijing's days begin at 16:00 UTC the day before (UTC+8); a change before 07:00 local also touches the
    # day before (its maximum 8-hour ozone mean reads until then): 1 March 00:00 local touches 28 February
    assert A.touched_windows(changed, zones) == {
        ("aotizhongxin", "1h", datetime(2013, 2, 28, 16)),
        ("aotizhongxin", "1d", datetime(2013, 2, 27, 16)),
        ("aotizhongxin", "1d", datetime(2013, 2, 28, 16)),
        ("aotizhongxin", "1h", datetime(2013, 3, 1, 22)),
        ("aotizhongxin", "1d", datetime(2013, 3, 1, 16)),
    }
    current = A.window_rows(stored, _all_windows(stored), KAFKA_TS, zones)
    by_key = {(r["station_id"], r["window_size"], r["window_start"]): r for r in current}
    assert A.changed_rows(current, by_key) == []  # a replay writes nothing
    noisy = {k: {**r, "pm25_mean": r["pm25_mean"] + 1e-12 if r["pm25_mean"] else None} for k, r in by_key.items()}
    assert A.changed_rows(current, noisy) == []  # float noise is no change
    day = ("aotizhongxin", "1d", datetime(2013, 3, 1, 16))
    assert A.changed_rows(current, {**by_key, day: {**by_key[day], "pm25_max": -1.0}}) == [by_key[day]]
    assert A.changed_rows(current, {}) == current  # all new
    # a window whose every reading is gone has no row, and is deleted where the table holds it
    local_day = (datetime(2013, 3, 1, 16), datetime(2013, 3, 2, 16))  # Beijing's 2 March
    without = [r for r in stored if not local_day[0] <= r["ts"] < local_day[1]]
    remaining = A.window_rows(without, _all_windows(stored), KAFKA_TS, zones)
    assert A.emptied_windows(_all_windows(stored), remaining, by_key) == {
        k for k in by_key if local_day[0] <= k[2] < local_day[1]
    }


def test_a_change_reaches_the_nowcast_of_the_next_eleven_hours(spark, data_dir, readings):
    """Recompute the windows of a change and of the 11 hours after it (from the days around it), and
    nothing outside that set differs from a full recompute: the job's incremental set is enough."""
    changed = {**readings[20], "pm25": 480.0}  # 2013-03-01 12:00 UTC, far off its neighbours
    change = [("aotizhongxin", datetime(2013, 3, 1, 12))]
    assert {w[2] for w in A.nowcast_followers(change)} == {datetime(2013, 3, 1, 12 + k) for k in range(1, 12)}
    zones = {"aotizhongxin": ZoneInfo("Asia/Shanghai")}
    assert A.days_to_read(change) == {("aotizhongxin", date(2013, 3, 1) + timedelta(days=k)) for k in range(-2, 3)}
    before_rows = _readings_as_stored(spark, data_dir, readings)
    after_rows = _readings_as_stored(
        spark, data_dir, [changed if r["event_id"] == changed["event_id"] else r for r in readings]
    )
    windows = _all_windows(before_rows)
    before = A.window_rows(before_rows, windows, KAFKA_TS, zones)
    after = A.window_rows(after_rows, windows, KAFKA_TS, zones)
    differ = {(r["window_size"], r["window_start"]) for r in A.changed_rows(after, {_key(r): r for r in before})}
    assert differ & {("1h", w[2]) for w in A.nowcast_followers(change)}  # a later hour's NowCast moved
    assert differ <= {(w[1], w[2]) for w in A.windows_to_recompute(change, zones)}
    # and the recompute from the days it reads gives the full recompute's rows
    days = A.days_to_read(change)
    partial = [r for r in after_rows if (r["station_id"], r["ts"].date()) in days]
    recomputed = A.window_rows(partial, A.windows_to_recompute(change, zones), KAFKA_TS, zones)
    full = {_key(r): r for r in after}
    assert recomputed == [full[_key(r)] for r in recomputed]


def _key(row: dict) -> tuple:
    return row["station_id"], row["window_size"], row["window_start"]


def test_reading_rows_get_the_aqi_of_their_pollutants(spark, data_dir, readings):
    """Through the check the service tiers run on Cassandra's readings (the pure functions over the
    readings sent)."""
    from jobs.cdc_to_cassandra import reading_aqi

    f = EnvelopeFactory(data_dir, False)
    rows = to_reading_rows(last_changes(decode(spark, [f.change("c", r) for r in readings])), reading_aqi)
    assert rows.columns == [name for name, _ in readings_table_columns()]
    stored = {r.event_id: r.asDict() for r in rows.collect()}
    assert stored.keys() == {r["event_id"] for r in readings}
    assert reading_aqi_mismatches(stored, readings) == []
    assert sum(r["aqi_us"] is not None for r in stored.values()) > 40


def test_extended_json_encoder_matches_the_recorded_strict_form(data_dir):
    """Our encoder writes dates and longs as the recorded connector output does (strict v1)."""
    _, _, value, _ = recorded_events(data_dir)[0]
    recorded = json.loads(json.loads(value)["after"])
    ours = json.loads(
        extended_json({"updated_at": datetime.fromtimestamp(1739455297.970, tz=UTC), "sent_at": 1736207571013})
    )
    assert ours["updated_at"] == recorded["updated_at"] == {"$date": 1739455297970}
    assert ours["sent_at"] == recorded["created_at"] == {"$numberLong": "1736207571013"}


def test_changed_readings_are_the_event_ids_named_once_each_in_order_without_the_unroutable():
    doc_ids = [
        "openaq:s-2:20250101T010000Z",
        "openaq:s-1:20250101T000000Z",
        "openaq:s-2:20250101T010000Z",  # a patch after the upsert of the same reading
        "67ab25755c0d5ac87eb8c632",  # no event id: its event is quarantined, nothing to recompute
        None,
    ]
    assert A.changed_readings(doc_ids) == [("s-1", datetime(2025, 1, 1, 0)), ("s-2", datetime(2025, 1, 1, 1))]
