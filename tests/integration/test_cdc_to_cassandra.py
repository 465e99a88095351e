"""cdc_to_cassandra against the real stack (Kafka, Cassandra; Debezium where it runs).

The first tests produce Debezium change events into a unique Kafka topic: our reading documents in
the recorded real envelopes (``tests/support/cdc_events.py``), plus the recorded real events
verbatim. ``test_real_debezium_connector_end_to_end`` takes the real path MongoDB → Debezium →
Kafka → job → Cassandra; it needs the Debezium connector to run against the stack's MongoDB.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from jobs import cdc_to_cassandra as job
from jobs.kafka_auth import kafka_python_settings
from jobs.mongo_auth import mongo_client
from jobs.topics import read_topic, wait_for_cdc
from schemas.cassandra import AGGREGATE_BUCKETS_TABLE
from stack import connector
from tests.support.cdc_events import (
    EnvelopeFactory,
    assert_aggregates_equal,
    beijing_readings,
    local_day_bounds,
    mongo_document,
    oracle_alert_changes,
    pandas_aggregates,
    pandas_alerts,
    reading_aqi_mismatches,
    recorded_events,
)
from tests.support.flow import bucket_mismatches, debezium_connector, run_available_now
from tests.support.pipeline import REPO_ROOT, isolated_cdc, parse_ts, produce

COMPARED = ("event_id", "source", "station_name", "city", "country", "pm25", "pm10", "no2", "so2", "co", "o3")


@pytest.fixture
def cdc_env(stack, tmp_path):
    """A config of its own (topics, keyspace, checkpoints), the CQL applied; the keyspace dropped after."""
    with isolated_cdc(stack, tmp_path) as cdc:
        yield cdc


def cassandra_readings(session, config) -> dict[str, dict]:
    rows = session.execute(f"SELECT * FROM {config.cassandra.keyspace}.{config.cassandra.readings_table}")
    return {r.event_id: r._asdict() for r in rows}


def cassandra_aggregates(session, config) -> pd.DataFrame:
    rows = session.execute(f"SELECT * FROM {config.cassandra.keyspace}.{config.cassandra.aggregates_table}")
    return pd.DataFrame([r._asdict() for r in rows])


def assert_buckets_stored(session, config, readings: list[dict]) -> None:
    """Every aggregate row sits in its window's UTC month (1 h) or year (1 d) partition, and the buckets
    table lists exactly the buckets the readings' windows fall in."""
    assert bucket_mismatches(cassandra_aggregates(session, config)) == []
    utc = [parse_ts(r["ts"]) for r in readings]
    expected = {(r["station_id"], "1h", ts.strftime("%Y-%m")) for r, ts in zip(readings, utc, strict=True)}
    # a 1 d window starts at its local midnight: for Beijing, 16:00 UTC the day before (a year's first day: the last)
    days, _ = local_day_bounds(pd.DataFrame({"ts": utc, "timezone": [r.get("timezone") for r in readings]}))
    expected |= {(r["station_id"], "1d", start.strftime("%Y")) for r, start in zip(readings, days, strict=True)}
    table = f"{config.cassandra.keyspace}.{AGGREGATE_BUCKETS_TABLE}"
    assert {tuple(r) for r in session.execute(f"SELECT station_id, window_size, bucket FROM {table}")} == expected


def writetimes(session, config) -> dict:
    """When each aggregate row was last written (µs), by window. (A replay upserts the readings again,
    with the same values; the aggregates it must not write at all.)"""
    table = f"{config.cassandra.keyspace}.{config.cassandra.aggregates_table}"
    query = f"SELECT station_id, window_size, window_start, writetime(updated_at) AS w FROM {table}"
    return {(r.station_id, r.window_size, r.window_start): r.w for r in session.execute(query)}


# --- the alerts and the station registry ------------------------------------------------------------------

ALERT_FIELDS = ("station_id", "hour", "aqi_index", "previous_category", "category", "aqi", "pollutant")


def cassandra_alerts(session, config, table: str) -> dict[tuple, dict]:
    """An alerts table's rows by (station_id, aqi_index, hour)."""
    rows = session.execute(f"SELECT * FROM {config.cassandra.keyspace}.{table}")
    return {(r.station_id, r.aqi_index, r.hour): r._asdict() for r in rows}


def assert_alerts_stored(session, config, expected: dict[tuple, dict]) -> None:
    """Both alerts tables hold exactly the oracle's alerts (alerts_by_day under the UTC day of the hour)."""
    by_station = cassandra_alerts(session, config, "alerts_by_station")
    by_day = cassandra_alerts(session, config, "alerts_by_day")
    assert {k: {f: row[f] for f in ALERT_FIELDS} for k, row in by_station.items()} == expected
    assert {k: {f: row[f] for f in ALERT_FIELDS} for k, row in by_day.items()} == expected
    assert all(str(row["day"]) == row["hour"].date().isoformat() for row in by_day.values())


def alert_writetimes(session, config) -> dict:
    """When each alert row and registry row was last written (µs), by table and key."""
    keys = {"alerts_by_station": "station_id, aqi_index, hour", "alerts_by_day": "station_id, aqi_index, hour"}
    times = {}
    for table, key in {**keys, "stations": "station_id"}.items():
        query = f"SELECT {key}, writetime(updated_at) AS w FROM {config.cassandra.keyspace}.{table}"
        times.update({(table, *row[:-1]): row.w for row in session.execute(query)})
    return times


def expected_record(status: str, alert: dict) -> tuple[str, dict]:
    """The Kafka key and JSON value docs/alerts.md specifies for an alert change."""
    hour = alert["hour"].strftime("%Y-%m-%dT%H:%M:%SZ")
    fields = {f: alert[f] for f in ALERT_FIELDS if f != "hour"}
    return f"{alert['station_id']}|{alert['aqi_index']}|{hour}", {**fields, "hour": hour, "status": status}


def alert_records(config) -> list:
    """Every record of the alerts topic: (partition, offset, key, value as JSON), in offset order per partition."""
    records = read_topic(kafka_python_settings(config, "admin"), config.kafka.alerts_topic)
    return [(r.partition, r.offset, r.key.decode(), json.loads(r.value)) for r in records]


def latest_alerts(records: list) -> dict[str, dict]:
    """The topic as compaction leaves it: the last record of each key (one key, one partition), retractions dropped."""
    latest = {key: value for _, _, key, value in sorted(records, key=lambda r: (r[0], r[1]))}
    return {key: value for key, value in latest.items() if value["status"] != "retracted"}


def assert_latest_alerts_are(records: list, expected: dict[tuple, dict]) -> None:
    """The topic's latest record of each key that is not a retraction says the alert ``expected`` holds."""

    def fields(value: dict) -> dict:
        return {f: v for f, v in value.items() if f != "status"}

    want = {key: fields(value) for key, value in (expected_record("", a) for a in expected.values())}
    assert {key: fields(value) for key, value in latest_alerts(records).items()} == want


def assert_registry(session, config, readings: list[dict]) -> None:
    """The stations table's one partition lists every station of ``readings`` with its metadata."""
    rows = session.execute(f"SELECT * FROM {config.cassandra.keyspace}.stations WHERE registry = 'all'")
    fields = ("source", "station_name", "city", "country", "lat", "lon", "timezone")
    got = {r.station_id: {f: getattr(r, f) for f in fields} for r in rows}
    assert got == {r["station_id"]: {f: r[f] for f in fields} for r in readings}


def assert_readings_landed(stored: dict[str, dict], readings: list[dict]) -> None:
    assert set(stored) == {r["event_id"] for r in readings}
    for reading in readings:
        row = stored[reading["event_id"]]
        for field in COMPARED:
            assert row[field] == reading[field], (reading["event_id"], field)
        assert row["ts"] == parse_ts(reading["ts"])
        assert str(row["day"]) == reading["ts"][:10] and row["station_id"] == reading["station_id"]
    assert reading_aqi_mismatches(stored, readings) == []  # each reading's AQI, from its pollutants


def test_recorded_envelopes_flow_to_cassandra_update_delete_and_replay(stack, spark, cdc_env, data_dir, tmp_path):
    config, _, session = cdc_env
    readings = beijing_readings(data_dir, "Aotizhongxin", 48) + beijing_readings(data_dir, "Dongsi", 48)
    plain, wrapped = EnvelopeFactory(data_dir, False), EnvelopeFactory(data_dir, True)
    messages = [(plain if i % 2 else wrapped).change("r" if i < 10 else "c", r) for i, r in enumerate(readings)]
    recorded = [(k and k.encode(), v.encode()) for _, _, v, k in recorded_events(data_dir)]
    heartbeat = (b'{"serverName": "aqcdc"}', b'{"ts_ms": 1767225600000}')
    produce(kafka_python_settings(config, "admin"), config.kafka.cdc_topic, [*messages, *recorded, heartbeat])

    started = time.monotonic()
    run_available_now(job, spark, config)
    print(f"first run: {time.monotonic() - started:.1f}s")
    assert_readings_landed(cassandra_readings(session, config), readings)
    assert_aggregates_equal(cassandra_aggregates(session, config), pandas_aggregates(readings))
    assert_buckets_stored(session, config, readings)
    quarantine = spark.read.format("delta").load(str(config.paths.cdc_quarantine)).collect()
    assert len(quarantine) == len(recorded) and {q.reason_code for q in quarantine} == {"unroutable_key"}
    # every category crossing of the oracle is an alert in both tables, and one "raised" record in Kafka
    first_alerts = pandas_alerts(readings)
    assert_alerts_stored(session, config, first_alerts)
    first_records = alert_records(config)
    assert sorted((k, v) for _, _, k, v in first_records) == sorted(
        expected_record("raised", a) for a in first_alerts.values()
    )
    assert_registry(session, config, readings)

    # an update changes the row and its windows; a delete removes the row (and recomputes its windows);
    # the alerts they move are raised, corrected or retracted (Dongsi 2013-03-01 10:00 UTC's delete
    # takes away a crossing)
    changed = {**readings[3], "pm25": 555.0, "o3": 1.5}
    deleted = (readings[60], readings[66])
    produce(
        kafka_python_settings(config, "admin"),
        config.kafka.cdc_topic,
        # each change keyed as its reading's first event (the same partition: Kafka order within a batch)
        [plain.change("u", changed), *[m for r in deleted for m in wrapped.delete(r["event_id"])]],
    )
    run_available_now(job, spark, config)
    expected = [changed if r is readings[3] else r for r in readings if r not in deleted]
    stored = cassandra_readings(session, config)
    assert_readings_landed(stored, expected)
    assert (stored[changed["event_id"]]["pm25"], stored[changed["event_id"]]["o3"]) == (555.0, 1.5)
    after_changes = cassandra_aggregates(session, config)
    assert_aggregates_equal(after_changes, pandas_aggregates(expected))
    after_alerts = pandas_alerts(expected)
    assert_alerts_stored(session, config, after_alerts)
    records = alert_records(config)
    sent = [(k, v) for p, o, k, v in records if (p, o) not in {(r[0], r[1]) for r in first_records}]
    statuses = oracle_alert_changes(first_alerts, after_alerts)
    assert all(statuses.values()), statuses  # the changes raise, correct and retract
    assert sorted(sent) == sorted(
        expected_record(status, (first_alerts if status == "retracted" else after_alerts)[key])
        for status, keys in statuses.items()
        for key in keys
    )
    assert_latest_alerts_are(records, after_alerts)

    # rerun over the whole topic from a fresh checkpoint: nothing changes, not even updated_at
    before_times = writetimes(session, config)
    before_alert_times = alert_writetimes(session, config)
    fresh = config.model_copy(
        update={"paths": config.paths.model_copy(update={"checkpoint_root": str(tmp_path / "checkpoints-rerun")})}
    )
    run_available_now(job, spark, fresh)
    assert cassandra_readings(session, config) == stored
    assert writetimes(session, config) == before_times  # no aggregate row rewritten
    assert alert_writetimes(session, config) == before_alert_times  # no alert or registry row rewritten
    assert alert_records(config) == records  # and no alert sent again
    rerun = cassandra_aggregates(session, config)
    keys = ["station_id", "window_size", "window_start"]
    pd.testing.assert_frame_equal(
        rerun.sort_values(keys).reset_index(drop=True), after_changes.sort_values(keys).reset_index(drop=True)
    )


def _committed_batches(checkpoint: Path) -> int:
    commits = checkpoint / "commits"
    return len([p for p in commits.iterdir() if p.name.isdigit()]) if commits.is_dir() else 0


def test_sigkill_mid_stream_then_restart_ends_as_an_uninterrupted_run(stack, cdc_env, data_dir):
    config, env, session = cdc_env
    readings = beijing_readings(data_dir, "Guanyuan", 96)
    factory = EnvelopeFactory(data_dir, False)
    messages = [factory.change("c", r) for r in readings]
    messages += [factory.change("u", {**r, "pm10": 1.0}) for r in readings[:20]]
    messages += [m for r in readings[40:50] for m in factory.delete(r["event_id"])]
    produce(kafka_python_settings(config, "admin"), config.kafka.cdc_topic, messages)
    expected = [{**r, "pm10": 1.0} if i < 20 else r for i, r in enumerate(readings) if not 40 <= i < 50]

    run_env = {**os.environ, **env, "AQSTREAM__CDC__MAX_OFFSETS_PER_TRIGGER": "15"}
    command = [sys.executable, "-m", "jobs.submit", "cdc_to_cassandra", "--available-now"]
    checkpoint = Path(config.paths.checkpoint(job.QUERY_NAME))
    first = subprocess.Popen(command, cwd=REPO_ROOT, env=run_env, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while _committed_batches(checkpoint) < 2:
            assert first.poll() is None, "the job ended before it could be killed"
            assert time.monotonic() < deadline, "no batch committed in 300 s"
            time.sleep(0.5)
        os.killpg(first.pid, signal.SIGKILL)  # mid-stream: batch 2 or 3 is running
        first.wait(30)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(30)
    killed_after = _committed_batches(checkpoint)
    stored_at_kill = len(cassandra_readings(session, config))
    assert killed_after < 10, "the whole topic was done before the kill"

    subprocess.run(command, cwd=REPO_ROOT, env=run_env, check=True, timeout=900)
    print(f"killed after {killed_after} batches with {stored_at_kill} readings stored")
    assert_readings_landed(cassandra_readings(session, config), expected)
    assert_aggregates_equal(cassandra_aggregates(session, config), pandas_aggregates(expected))
    # a kill between an alert's send and its write sends it again: the topic's latest records still are the alerts
    alerts = pandas_alerts(expected)
    assert_alerts_stored(session, config, alerts)
    assert_latest_alerts_are(alert_records(config), alerts)


def test_streaming_readings_and_aggregates_queries_end_exact(stack, spark, cdc_env, data_dir):
    """The shipped streaming mode: the readings query on its short trigger, the aggregates query on
    its own, waiting for the readings of each of its batches; changes arrive while both run."""
    config, _, session = cdc_env
    config = config.model_copy(
        update={
            "streaming": config.streaming.model_copy(update={"trigger_interval": "200 milliseconds"}),
            "cdc": config.cdc.model_copy(update={"aggregates_trigger_interval": "2 seconds"}),
        }
    )
    readings = beijing_readings(data_dir, "Changping", 72)
    factory = EnvelopeFactory(data_dir, False)
    changed = {**readings[5], "pm25": 480.0}
    waves = [
        [factory.change("c", r) for r in readings[:36]],
        [factory.change("c", r) for r in readings[36:]],
        [factory.change("u", changed), *factory.delete(readings[50]["event_id"])],
    ]
    expected = [changed if r is readings[5] else r for r in readings if r is not readings[50]]
    queries = job.start(spark, config, available_now=False)
    try:
        assert [q.name for q in queries] == list(job.QUERY_NAMES)
        for wave in waves:
            produce(kafka_python_settings(config, "admin"), config.kafka.cdc_topic, wave)
            time.sleep(1)
        deadline = time.monotonic() + 300
        while True:
            for query in queries:
                assert query.exception() is None, query.exception()
            stored = cassandra_readings(session, config)
            aggregates = cassandra_aggregates(session, config)
            if len(stored) == len(expected) and not aggregates.empty and _aggregates_match(aggregates, expected):
                break
            assert time.monotonic() < deadline, f"{len(stored)} of {len(expected)} readings; aggregates not exact"
            time.sleep(1)
        for query in queries:
            query.processAllAvailable()  # nothing left behind either query
    finally:
        for query in queries:
            query.stop()
    assert_readings_landed(cassandra_readings(session, config), expected)
    assert_aggregates_equal(cassandra_aggregates(session, config), pandas_aggregates(expected))
    alerts = pandas_alerts(expected)  # the aggregates query's alerts, whatever the batches were
    assert_alerts_stored(session, config, alerts)
    assert_latest_alerts_are(alert_records(config), alerts)
    assert_registry(session, config, expected)


def _aggregates_match(actual: pd.DataFrame, readings: list[dict]) -> bool:
    try:
        assert_aggregates_equal(actual, pandas_aggregates(readings))
    except AssertionError:
        return False
    return True


# --- the real connector --------------------------------------------------------------------------------------


def test_real_debezium_connector_end_to_end(stack, spark, cdc_env, data_dir):
    """MongoDB → Debezium (the committed connector of conf/debezium/) → Kafka → job → Cassandra, with an
    update and a delete. A connector that cannot run fails the test, in every mode."""

    config, _, session = cdc_env
    prefix = f"cdc{config.mongo.database.removeprefix('aq_')}"
    definition = debezium_connector(stack, config, prefix)
    topic = f"{prefix}.{config.mongo.database}.{config.mongo.collection}"
    config = config.model_copy(update={"kafka": config.kafka.model_copy(update={"cdc_topic": topic})})
    bootstrap = kafka_python_settings(config, "admin")
    connector.register(stack.connect_url, definition)
    try:
        connector.wait_running(stack.connect_url, definition["name"])
        readings = beijing_readings(data_dir, "Changping", 48)
        client = mongo_client(config)
        coll = client[config.mongo.database][config.mongo.collection]
        coll.insert_many([mongo_document(r) for r in readings])
        wait_for_cdc(bootstrap, topic, [r["event_id"] for r in readings], timeout_s=180)
        run_available_now(job, spark, config)
        assert_readings_landed(cassandra_readings(session, config), readings)
        assert_aggregates_equal(cassandra_aggregates(session, config), pandas_aggregates(readings))

        changed = {**readings[7], "pm25": 321.0}
        coll.replace_one({"_id": changed["event_id"]}, mongo_document(changed))
        coll.delete_one({"_id": readings[8]["event_id"]})
        wait_for_cdc(bootstrap, topic, [changed["event_id"]], ops=("u",), timeout_s=180)
        wait_for_cdc(bootstrap, topic, [readings[8]["event_id"]], ops=("d",), timeout_s=180)
        run_available_now(job, spark, config)
        expected = [changed if i == 7 else r for i, r in enumerate(readings) if i != 8]
        stored = cassandra_readings(session, config)
        assert_readings_landed(stored, expected)
        assert stored[changed["event_id"]]["pm25"] == 321.0
        assert_aggregates_equal(cassandra_aggregates(session, config), pandas_aggregates(expected))
        client.drop_database(config.mongo.database)
        client.close()
    finally:
        connector.delete(stack.connect_url, definition["name"])


def test_cdc_messages_are_json(data_dir):
    """The factory's messages are what the JsonConverter writes: JSON objects (keys and values)."""
    factory = EnvelopeFactory(data_dir, True)
    key, value = factory.change("c", beijing_readings(data_dir, "Dongsi", 1)[0])
    assert json.loads(key)["payload"]["id"].startswith('"uci-beijing:dongsi:')
    assert json.loads(value)["payload"]["op"] == "c"


def test_every_keyed_statement_of_the_aggregates_side_names_its_whole_partition_key(cdc_env):
    """The recompute's driver-side reads and writes (``jobs.cdc_store``) each go to one partition: the driver
    can route every statement (``routing_key_indexes`` covers the table's partition key: see
    test_dashboard_api for what that attribute does and does not say) and none filters."""
    from jobs.cdc_store import CdcStore

    config, _, session = cdc_env
    tables = session.cluster.metadata.keyspaces[config.cassandra.keyspace].tables
    store = CdcStore.connect(config)
    try:
        assert store.prepared, "the store prepares its statements"
        for name, statement in store.prepared.items():
            text = statement.query_string
            assert "ALLOW FILTERING" not in text.upper(), name
            table = text.split(f"{config.cassandra.keyspace}.")[1].split()[0]
            partition_key = [c.name for c in tables[table].partition_key]
            bound = [statement.column_metadata[i].name for i in statement.routing_key_indexes or []]
            assert sorted(bound) == sorted(partition_key), (name, bound, partition_key)
    finally:
        store.close()


def test_a_write_of_many_rows_goes_in_single_partition_batches_and_lands_whole(cdc_env):
    """``CdcStore`` writes the bindings of one partition in unlogged batches of at most ``BATCH_ROWS``
    (no batch spans two partitions: that would cost the coordinator a fan-out), and every row lands."""
    from datetime import datetime, timedelta

    from jobs.cdc_store import BATCH_ROWS, CdcStore, partition_batches
    from schemas.cassandra import window_bucket

    config, _, session = cdc_env
    first = datetime(2014, 3, 1)
    hours = {"batch-a": BATCH_ROWS * 2 + 3, "batch-b": 1}  # one partition each: (station, 1h, bucket)
    assert len({window_bucket("1h", first + timedelta(hours=h)) for h in range(hours["batch-a"])}) == 1
    store = CdcStore.connect(config)
    try:
        statement = store.prepared["upsert_window"]
        columns = [c.name for c in statement.column_metadata]
        rows = [
            dict.fromkeys(columns)
            | {
                "station_id": station,
                "window_size": "1h",
                "window_start": first + timedelta(hours=h),
                "bucket": window_bucket("1h", first + timedelta(hours=h)),
            }
            for station, n in hours.items()
            for h in range(n)
        ]
        batches = partition_batches(statement, [[r[c] for c in columns] for r in rows])
        assert sorted(len(b._statements_and_parameters) for b in batches) == [1, 3, BATCH_ROWS, BATCH_ROWS]
        store.upsert_windows(rows)
        table = f"{config.cassandra.keyspace}.{config.cassandra.aggregates_table}"
        for station, n in hours.items():
            stored = session.execute(
                f"SELECT window_start FROM {table} WHERE station_id = %s AND window_size = '1h' AND bucket = %s",
                (station, window_bucket("1h", first)),
            )
            assert len(list(stored)) == n, station
    finally:
        store.close()
