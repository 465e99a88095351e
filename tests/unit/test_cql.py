"""The CQL files against the Python definition of the rows (they must not drift)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from jobs.config import load_config
from jobs.setup import schema_cql
from schemas import cassandra as cs

pytestmark = pytest.mark.unit


def _tables(statements: list[str]) -> dict[str, dict]:
    """Each table as the statements leave it: its CREATE's columns, then those an ALTER … ADD adds."""
    tables = {}
    for statement in statements:
        added = re.fullmatch(r"ALTER TABLE (\w+)\.(\w+)\s+ADD IF NOT EXISTS \((.+)\)", statement, re.S)
        if added:
            _, table, columns = added.groups()
            for column in columns.split(","):
                name, cql = column.split(None, 1)
                if name not in {n for n, _ in tables[table]["columns"]}:  # as Cassandra: an existing one is skipped
                    tables[table]["columns"].append((name, re.sub(r"\s+", " ", cql.strip())))
            continue
        match = re.match(r"CREATE TABLE IF NOT EXISTS (\w+)\.(\w+) \((.*?)\n\)(.*)$", statement, re.S)
        if not match:
            continue
        _, table, body, options = match.groups()
        columns, primary_key = [], None
        for line in (part.strip() for part in body.split("\n")):
            line = line.rstrip(",")
            if not line:
                continue
            if line.startswith("PRIMARY KEY"):
                primary_key = line
                continue
            name, cql = line.split(None, 1)
            columns.append((name, re.sub(r"\s+", " ", cql.strip())))
        tables[table] = {"columns": columns, "primary_key": primary_key, "options": options}
    return tables


@pytest.fixture(scope="module")
def tables():
    return _tables(cs.cql_statements())


def test_keyspace_statement_carries_the_replication():
    statements = cs.cql_statements(keyspace="aq_test", replication={"class": "SimpleStrategy", "replication_factor": 3})
    assert statements[0] == (
        "CREATE KEYSPACE IF NOT EXISTS aq_test\n"
        "  WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}"
    )
    assert all("$" not in s for s in statements)
    assert all("aq_test." in s for s in statements[1:])


@pytest.mark.parametrize(
    ("environ", "replication"),
    [
        ({}, "{'class': 'SimpleStrategy', 'replication_factor': 1}"),
        ({"REPLICATION_FACTOR": "3"}, "{'class': 'SimpleStrategy', 'replication_factor': 3}"),
        (
            {"REPLICATION_STRATEGY": "NetworkTopologyStrategy", "DATACENTERS": "datacenter1:3,dc2:2"},
            "{'class': 'NetworkTopologyStrategy', 'datacenter1': 3, 'dc2': 2}",
        ),
    ],
)
def test_jobs_setup_creates_the_keyspace_with_the_configured_replication(environ, replication):
    """schema_cql is what jobs.setup's apply_cql executes: the committed files, the config's keyspace and map."""
    config = load_config(environ={f"AQSTREAM__CASSANDRA__{key}": value for key, value in environ.items()})
    statements = schema_cql(config)
    assert statements[0] == f"CREATE KEYSPACE IF NOT EXISTS airquality\n  WITH replication = {replication}"
    assert statements[1:] == cs.cql_statements()[1:]


@pytest.mark.parametrize(
    ("table", "columns"),
    [
        (cs.READINGS_TABLE, cs.readings_table_columns),
        (cs.AGGREGATES_TABLE, cs.aggregates_table_columns),
        (cs.UNBUCKETED_AGGREGATES_TABLE, lambda: [c for c in cs.aggregates_table_columns() if c[0] != "bucket"]),
        (cs.AGGREGATE_BUCKETS_TABLE, lambda: cs.AGGREGATE_BUCKETS_COLUMNS),
        (cs.STATIONS_TABLE, lambda: cs.STATION_COLUMNS),
        (cs.ALERTS_BY_STATION_TABLE, lambda: cs.ALERTS_BY_STATION_COLUMNS),
        (cs.ALERTS_BY_DAY_TABLE, lambda: cs.ALERTS_BY_DAY_COLUMNS),
    ],
)
def test_cql_columns_match_python(tables, table, columns):
    """Names and types; not their order, which means nothing to Cassandra (a column added later comes last)."""
    expected = [(name, cs.cql_type(kind)) for name, kind in columns()]
    assert sorted(tables[table]["columns"]) == sorted(expected)
    assert len({name for name, _ in tables[table]["columns"]}) == len(expected), "a column twice"


def test_readings_table_holds_every_reading_field_but_raw(tables):
    from schemas.reading import READING_FIELD_NAMES

    names = {name for name, _ in tables[cs.READINGS_TABLE]["columns"]}
    assert names >= set(READING_FIELD_NAMES) - {"raw"}
    assert "raw" not in names
    for aqi in ("aqi_us", "aqi_us_category", "aqi_us_dominant", "eaqi", "eaqi_band", "eaqi_dominant"):
        assert aqi in names


def test_keys_and_order(tables):
    readings = tables[cs.READINGS_TABLE]
    assert readings["primary_key"] == "PRIMARY KEY ((station_id, day), ts)"
    assert "CLUSTERING ORDER BY (ts DESC)" in readings["options"]
    aggregates = tables[cs.AGGREGATES_TABLE]
    assert aggregates["primary_key"] == "PRIMARY KEY ((station_id, window_size, bucket), window_start)"
    assert "CLUSTERING ORDER BY (window_start DESC)" in aggregates["options"]
    buckets = tables[cs.AGGREGATE_BUCKETS_TABLE]
    assert buckets["primary_key"] == "PRIMARY KEY ((station_id), window_size, bucket)"
    assert "bucket DESC" in buckets["options"]
    # the layout before buckets, as 002 created it (jobs.migrate_aggregates moves its rows)
    unbucketed = tables[cs.UNBUCKETED_AGGREGATES_TABLE]
    assert unbucketed["primary_key"] == "PRIMARY KEY ((station_id), window_size, window_start)"
    assert tables[cs.STATIONS_TABLE]["primary_key"] == "PRIMARY KEY ((registry), station_id)"
    assert tables[cs.ALERTS_BY_STATION_TABLE]["primary_key"] == "PRIMARY KEY ((station_id), hour, aqi_index)"
    assert tables[cs.ALERTS_BY_DAY_TABLE]["primary_key"] == "PRIMARY KEY ((day), hour, station_id, aqi_index)"
    assert "hour DESC" in tables[cs.ALERTS_BY_STATION_TABLE]["options"]


def test_row_spark_schemas_follow_the_column_lists():
    assert cs.readings_row_spark_schema().fieldNames() == [n for n, _ in cs.readings_table_columns()]
    assert cs.aggregates_row_spark_schema().fieldNames() == [n for n, _ in cs.aggregates_table_columns()]
    assert not cs.aggregates_row_spark_schema()["bucket"].nullable
    assert cs.aggregate_buckets_spark_schema().fieldNames() == ["station_id", "window_size", "bucket"]
    assert not cs.readings_row_spark_schema()["day"].nullable
    assert cs.stations_row_spark_schema().fieldNames() == [n for n, _ in cs.STATION_COLUMNS]
    assert cs.alerts_by_station_spark_schema().fieldNames() == [n for n, _ in cs.ALERTS_BY_STATION_COLUMNS]
    assert cs.alerts_by_day_spark_schema().fieldNames() == [n for n, _ in cs.ALERTS_BY_DAY_COLUMNS]
    assert not cs.alerts_by_day_spark_schema()["day"].nullable and cs.alerts_by_day_spark_schema()["aqi"].nullable


def test_the_python_primary_keys_are_the_cql_ones(tables):
    for table, key in (
        (cs.AGGREGATES_TABLE, cs.AGGREGATES_PRIMARY_KEY),
        (cs.AGGREGATE_BUCKETS_TABLE, cs.AGGREGATE_BUCKETS_PRIMARY_KEY),
        (cs.STATIONS_TABLE, cs.STATIONS_PRIMARY_KEY),
        (cs.ALERTS_BY_STATION_TABLE, cs.ALERTS_BY_STATION_PRIMARY_KEY),
        (cs.ALERTS_BY_DAY_TABLE, cs.ALERTS_BY_DAY_PRIMARY_KEY),
    ):
        partition, clustering = key
        assert tables[table]["primary_key"] == f"PRIMARY KEY (({', '.join(partition)}), {', '.join(clustering)})"


def test_an_older_aggregates_table_gets_the_nowcast_columns():
    """002 creates them in a new table; 003 adds exactly them to a table created before them."""
    alter = [
        s
        for s in cs.cql_statements()
        if s.startswith(f"ALTER TABLE airquality.{cs.UNBUCKETED_AGGREGATES_TABLE}") and "nowcast" in s
    ]
    assert len(alter) == 1
    added = re.sub(r"\s+", " ", alter[0].split("ADD IF NOT EXISTS", 1)[1]).strip()
    assert added.startswith("(") and added.endswith(")")  # Cassandra 5 wants a column list in parentheses
    assert added[1:-1] == ", ".join(f"{name} {cs.cql_type(kind)}" for name, kind in cs.NOWCAST_COLUMNS)


def test_older_tables_get_the_timezone_and_the_daily_ozone_columns():
    """Tables created before local days get their columns in place (006)."""
    alters = {
        m[1]: re.sub(r"\s+", " ", m[2]).strip()
        for s in cs.cql_statements()
        if (m := re.fullmatch(r"ALTER TABLE airquality\.(\w+)\s+ADD IF NOT EXISTS \((.+)\)", s, re.S))
    }
    assert alters[cs.READINGS_TABLE] == alters[cs.STATIONS_TABLE] == "timezone text"
    assert alters[cs.AGGREGATES_TABLE] == ", ".join(f"{n} {cs.cql_type(k)}" for n, k in cs.DAILY_COLUMNS)
    assert ("timezone", "string") in cs.STATION_COLUMNS and ("timezone", "string") in cs.readings_table_columns()


def test_the_config_writes_the_bucketed_aggregates_table():
    assert load_config().cassandra.aggregates_table == cs.AGGREGATES_TABLE == "aggregates_by_station_bucket"


# --- the aggregates' buckets ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "start", "bucket"),
    [
        ("1h", datetime(2024, 1, 31, 23), "2024-01"),  # the month's last hour
        ("1h", datetime(2024, 2, 1, 0), "2024-02"),  # the next month's first
        ("1h", datetime(2024, 2, 29, 23), "2024-02"),  # a leap day
        ("1h", datetime(2024, 12, 31, 23), "2024-12"),
        ("1h", datetime(2025, 1, 1, 0), "2025-01"),
        ("1d", datetime(2024, 12, 31), "2024"),  # a year's last day
        ("1d", datetime(2025, 1, 1), "2025"),
        ("1d", datetime(2025, 6, 30), "2025"),  # a mid-year day: one partition per year, not per month
        ("1h", datetime(999, 3, 1), "0999-03"),  # zero-padded, so buckets sort as text
    ],
)
def test_a_windows_bucket_is_its_utc_month_or_year(size, start, bucket):
    assert cs.window_bucket(size, start) == bucket


def test_an_aware_window_start_is_bucketed_in_utc():
    # 2024-03-01 01:00 at +02:00 is 2024-02-29 23:00 UTC
    assert cs.window_bucket("1h", datetime(2024, 3, 1, 1, tzinfo=timezone(timedelta(hours=2)))) == "2024-02"
    assert cs.window_bucket("1d", datetime(2025, 1, 1, 0, tzinfo=UTC)) == "2025"


def test_an_unknown_window_size_has_no_bucket():
    with pytest.raises(ValueError, match="'1w'"):
        cs.window_bucket("1w", datetime(2024, 1, 1))


def test_an_hourly_partition_holds_at_most_a_months_hours():
    """The bound the buckets are for: a month's hours (744) and a year's days (366) per partition."""
    hours = [datetime(2024, 1, 1) + timedelta(hours=k) for k in range(366 * 24)]
    per_bucket: dict[str, int] = {}
    for hour in hours:
        per_bucket[cs.window_bucket("1h", hour)] = per_bucket.get(cs.window_bucket("1h", hour), 0) + 1
    assert len(per_bucket) == 12 and max(per_bucket.values()) == 31 * 24
    days = {cs.window_bucket("1d", datetime(2024, 1, 1) + timedelta(days=k)) for k in range(366)}
    assert days == {"2024"}


@pytest.mark.parametrize(
    ("size", "start", "end", "buckets"),
    [
        ("1h", datetime(2013, 3, 1), datetime(2013, 3, 2, 12), ["2013-03"]),
        ("1h", datetime(2013, 2, 28, 20, 30), datetime(2013, 3, 2, 5), ["2013-03", "2013-02"]),
        ("1h", datetime(2013, 2, 1), datetime(2013, 3, 1), ["2013-02"]),  # end excluded: March not asked
        ("1h", datetime(2012, 11, 15), datetime(2013, 2, 1, 0, 0, 1), ["2013-02", "2013-01", "2012-12", "2012-11"]),
        ("1d", datetime(2012, 12, 31), datetime(2013, 1, 2), ["2013", "2012"]),
        ("1d", datetime(2013, 1, 1), datetime(2014, 1, 1), ["2013"]),
        ("1d", datetime(2011, 6, 1), datetime(2013, 2, 1), ["2013", "2012", "2011"]),
    ],
)
def test_the_buckets_of_a_range_newest_first(size, start, end, buckets):
    assert cs.buckets_newest_first(size, start, end) == buckets
