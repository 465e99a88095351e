"""The CQL files against the Python definition of the rows (they must not drift)."""

from __future__ import annotations

import re

import pytest

from jobs.config import load_config
from jobs.setup import schema_cql
from schemas import cassandra as cs

pytestmark = pytest.mark.unit


def _tables(statements: list[str]) -> dict[str, dict]:
    tables = {}
    for statement in statements:
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
        (cs.STATIONS_TABLE, lambda: cs.STATION_COLUMNS),
        (cs.ALERTS_BY_STATION_TABLE, lambda: cs.ALERTS_BY_STATION_COLUMNS),
        (cs.ALERTS_BY_DAY_TABLE, lambda: cs.ALERTS_BY_DAY_COLUMNS),
    ],
)
def test_cql_columns_match_python(tables, table, columns):
    expected = [(name, cs.cql_type(kind)) for name, kind in columns()]
    assert tables[table]["columns"] == expected


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
    assert aggregates["primary_key"] == "PRIMARY KEY ((station_id), window_size, window_start)"
    assert "window_start DESC" in aggregates["options"]
    assert tables[cs.STATIONS_TABLE]["primary_key"] == "PRIMARY KEY ((registry), station_id)"
    assert tables[cs.ALERTS_BY_STATION_TABLE]["primary_key"] == "PRIMARY KEY ((station_id), hour, aqi_index)"
    assert tables[cs.ALERTS_BY_DAY_TABLE]["primary_key"] == "PRIMARY KEY ((day), hour, station_id, aqi_index)"
    assert "hour DESC" in tables[cs.ALERTS_BY_STATION_TABLE]["options"]


def test_row_spark_schemas_follow_the_column_lists():
    assert cs.readings_row_spark_schema().fieldNames() == [n for n, _ in cs.readings_table_columns()]
    assert cs.aggregates_row_spark_schema().fieldNames() == [n for n, _ in cs.aggregates_table_columns()]
    assert not cs.readings_row_spark_schema()["day"].nullable
    assert cs.stations_row_spark_schema().fieldNames() == [n for n, _ in cs.STATION_COLUMNS]
    assert cs.alerts_by_station_spark_schema().fieldNames() == [n for n, _ in cs.ALERTS_BY_STATION_COLUMNS]
    assert cs.alerts_by_day_spark_schema().fieldNames() == [n for n, _ in cs.ALERTS_BY_DAY_COLUMNS]
    assert not cs.alerts_by_day_spark_schema()["day"].nullable and cs.alerts_by_day_spark_schema()["aqi"].nullable


def test_the_python_primary_keys_are_the_cql_ones(tables):
    for table, key in (
        (cs.STATIONS_TABLE, cs.STATIONS_PRIMARY_KEY),
        (cs.ALERTS_BY_STATION_TABLE, cs.ALERTS_BY_STATION_PRIMARY_KEY),
        (cs.ALERTS_BY_DAY_TABLE, cs.ALERTS_BY_DAY_PRIMARY_KEY),
    ):
        partition, clustering = key
        assert tables[table]["primary_key"] == f"PRIMARY KEY (({', '.join(partition)}), {', '.join(clustering)})"


def test_an_older_aggregates_table_gets_the_nowcast_columns():
    """002 creates them in a new table; 003 adds exactly them to a table created before them."""
    alter = [s for s in cs.cql_statements() if s.startswith("ALTER TABLE")]
    assert len(alter) == 1 and alter[0].startswith(f"ALTER TABLE airquality.{cs.AGGREGATES_TABLE}")
    added = re.sub(r"\s+", " ", alter[0].split("ADD IF NOT EXISTS", 1)[1]).strip()
    assert added.startswith("(") and added.endswith(")")  # Cassandra 5 wants a column list in parentheses
    assert added[1:-1] == ", ".join(f"{name} {cs.cql_type(kind)}" for name, kind in cs.NOWCAST_COLUMNS)
