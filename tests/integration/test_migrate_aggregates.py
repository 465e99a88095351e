"""jobs.setup moves the aggregates of the unbucketed layout (002/003) into the bucketed table (005),
against the real Cassandra of the stack."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest

from jobs import setup
from jobs.config import load_config
from jobs.transforms.aggregates import window_rows, window_start
from schemas.cassandra import (
    AGGREGATE_BUCKETS_TABLE,
    DAILY_COLUMNS,
    UNBUCKETED_AGGREGATES_TABLE,
    cql_files,
    cql_statements,
)
from tests.support.cassandra import cassandra_session, stack_client_env
from tests.support.cdc_events import beijing_readings
from tests.support.pipeline import parse_ts

pytestmark = pytest.mark.integration

WRITTEN_AT = datetime(2026, 1, 2, 3, 4, 5)
# what a Cassandra write time is in: microseconds since the epoch
OLD_WRITETIME = 1_700_000_000_000_000
NEWER_WRITETIME = OLD_WRITETIME + 1


@pytest.fixture
def old_layout(stack, data_dir, monkeypatch):
    """A keyspace as a deployment before the buckets left it: the committed CQL up to 004, and
    aggregates rows (real Beijing windows over a month's end, nulls included) in ``aggregates_by_station``."""
    keyspace = f"aq_{uuid.uuid4().hex[:8]}"
    env = {
        "AQSTREAM__CASSANDRA__HOST": stack.cfg.host,
        "AQSTREAM__CASSANDRA__PORT": str(stack.cfg.cassandra_port),
        "AQSTREAM__CASSANDRA__KEYSPACE": keyspace,
        **stack_client_env(stack),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = load_config(environ=env)
    cluster, session = cassandra_session(config)
    try:
        before = [path for path in cql_files() if path.name < "005"]
        assert [p.name[:3] for p in before] == ["001", "002", "003", "004"]
        for statement in cql_statements(keyspace, files=before):
            session.execute(statement, timeout=60)
        readings = beijing_readings_utc(data_dir)
        windows = {(r["station_id"], size, window_start(r["ts"], size)) for r in readings for size in ("1h", "1d")}
        # the old table's columns (no bucket; 006's daily ozone maximum came later)
        later = {"bucket", *(name for name, _ in DAILY_COLUMNS)}
        rows = [
            {k: v for k, v in row.items() if k not in later} for row in window_rows(readings, windows, WRITTEN_AT, {})
        ]
        columns = list(rows[0])
        insert = session.prepare(
            f"INSERT INTO {keyspace}.{UNBUCKETED_AGGREGATES_TABLE} ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' for _ in columns)}) USING TIMESTAMP ?"
        )
        for row in rows:
            session.execute(insert, [*(row[c] for c in columns), OLD_WRITETIME])
        yield config, session, rows
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
        cluster.shutdown()


def beijing_readings_utc(data_dir) -> list[dict]:
    """Two stations' first 60 hours (from 2013-02-28 16:00 UTC: February's end and March's start), ts in
    naive UTC as the jobs read them."""
    readings = beijing_readings(data_dir, "Aotizhongxin", 60) + beijing_readings(data_dir, "Dongsi", 60)
    return [{**r, "ts": parse_ts(r["ts"])} for r in readings]


def expected_bucket(row: dict) -> str:
    return row["window_start"].strftime("%Y-%m" if row["window_size"] == "1h" else "%Y")


def table_rows(session, keyspace: str, table: str) -> dict[tuple, dict]:
    result = session.execute(f"SELECT * FROM {keyspace}.{table}", timeout=60)
    return {(r.station_id, r.window_size, r.window_start): r._asdict() for r in result}


def writetimes(session, keyspace: str, table: str) -> dict[tuple, int]:
    query = f"SELECT station_id, window_size, window_start, writetime(updated_at) AS w FROM {keyspace}.{table}"
    return {(r.station_id, r.window_size, r.window_start): r.w for r in session.execute(query, timeout=60)}


def test_setup_moves_the_old_tables_rows_into_their_buckets_once(old_layout, capsys):
    config, session, old = old_layout
    ks, new = config.cassandra.keyspace, config.cassandra.aggregates_table
    assert {expected_bucket(r) for r in old} == {"2013-02", "2013-03", "2013"}  # both sides of the month's end
    assert any(r["pm25_nowcast"] is None for r in old) and any(r["pm25_nowcast"] is not None for r in old)

    # the CDC job on the new layout already rewrote one window before setup ran: its newer row must stay
    rewritten = next(r for r in old if r["window_size"] == "1h")
    for statement in cql_statements(ks, config.cassandra.replication()):
        session.execute(statement, timeout=60)
    session.execute(
        f"INSERT INTO {ks}.{new} (station_id, window_size, bucket, window_start, pm25_mean, updated_at) "
        "VALUES (%s, %s, %s, %s, %s, %s) USING TIMESTAMP %s",
        (
            rewritten["station_id"],
            "1h",
            expected_bucket(rewritten),
            rewritten["window_start"],
            -1.0,
            WRITTEN_AT,
            NEWER_WRITETIME,
        ),
    )

    assert setup.main(["cassandra"]) == 0
    assert f"cassandra: {len(old)} aggregate rows moved to {new}" in capsys.readouterr().out

    moved = table_rows(session, ks, new)
    rewritten_key = (rewritten["station_id"], "1h", rewritten["window_start"])
    assert moved.pop(rewritten_key)["pm25_mean"] == -1.0  # the newer write won
    expected = {
        (r["station_id"], r["window_size"], r["window_start"]): {
            **r,
            "bucket": expected_bucket(r),
            **{name: None for name, _ in DAILY_COLUMNS},  # a column the old rows never had
        }
        for r in old
        if (r["station_id"], r["window_size"], r["window_start"]) != rewritten_key
    }
    assert moved.keys() == expected.keys()
    for key, row in expected.items():
        assert moved[key] == row, key  # every column exactly, nulls as nulls
    stored_times = writetimes(session, ks, new)
    assert {k: w for k, w in stored_times.items() if k != rewritten_key} == dict.fromkeys(expected, OLD_WRITETIME)
    buckets = {
        tuple(r) for r in session.execute(f"SELECT station_id, window_size, bucket FROM {ks}.{AGGREGATE_BUCKETS_TABLE}")
    }
    assert buckets == {(r["station_id"], r["window_size"], expected_bucket(r)) for r in old}
    assert table_rows(session, ks, UNBUCKETED_AGGREGATES_TABLE) == {}  # moved, not copied

    # a second setup finds nothing to move and changes nothing
    before = table_rows(session, ks, new)
    assert setup.main(["cassandra"]) == 0
    assert "aggregate rows moved" not in capsys.readouterr().out
    assert table_rows(session, ks, new) == before
    assert writetimes(session, ks, new) == stored_times
