"""The read API against real Cassandra (an isolated keyspace), in-process through FastAPI's TestClient.

The rows are real: the first 60 hours of two UCI Beijing stations, read by the replay collector's own
row → reading function, their AQI by jobs.transforms.aqi, their 1 h / 1 d aggregates (with NowCast) by
jobs.transforms.aggregates.window_rows, written with cassandra-driver as the CDC job lays them out. The
alerts follow the tables' contract (an hour whose category differs from the hour before, per index). Every
expected answer is computed here from those rows, not read back from the service.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cassandra import InvalidRequest
from cassandra.query import BoundStatement
from fastapi.testclient import TestClient

from collectors import replay
from dashboard.app import create_app
from dashboard.health import pipeline_health
from dashboard.store import Store, connect
from jobs.config import load_config
from jobs.setup import apply_cql
from jobs.transforms.aggregates import window_rows, window_start
from jobs.transforms.aqi import AQI_OUTPUT_COLUMNS, aqi_values, us_aqi
from schemas.cassandra import (
    AGGREGATE_BUCKETS_TABLE,
    ALERTS_BY_DAY_TABLE,
    ALERTS_BY_STATION_TABLE,
    STATIONS_REGISTRY,
    STATIONS_TABLE,
)
from schemas.reading import POLLUTANT_FIELDS
from tests.support.cassandra import cassandra_session, stack_client_env
from tests.support.dashboard import epa_category
from tests.support.pipeline import REPO_ROOT, parse_ts

HOURS = 60  # 2013-02-28T16:00Z .. 2013-03-03T03:00Z: four UTC days of readings partitions
STATIONS = ("Dongsi", "Aotizhongxin")
REGISTERED_WITHOUT_DATA = "beijing-dingling"
UPDATED_AT = datetime(2026, 11, 30, 12, 0)
MAX_PAGE = 50
MAX_DAYS = 3
# a newest 1 h bucket listed for Dongsi whose windows were all deleted: the latest hour is in the one before
EMPTIED_BUCKET = "2013-04"


def iso(moment: datetime) -> str:
    return moment.isoformat() + "Z"


# --- the data ---------------------------------------------------------------------------------


def beijing_readings(data_dir: Path) -> list[dict]:
    mapping = replay.load_mapping(REPO_ROOT / "conf" / "mappings" / "beijing.json")
    readings = []
    for station in STATIONS:
        path = next((data_dir / "bench").glob(f"PRSA_Data_{station}_*.csv"))
        for index, row in zip(range(HOURS), replay.read_csv_rows(path), strict=False):
            reading = replay.reading_from_row(mapping, row, index, ingested_at=datetime.now(UTC))
            reading["ts"] = parse_ts(reading["ts"])
            readings.append(reading)
    return readings


def reading_row(reading: dict) -> dict:
    aqi = aqi_values({p: reading[p] for p in POLLUTANT_FIELDS})
    keep = ("station_id", "ts", "event_id", "source", "station_name", "city", "country", "lat", "lon", "flags")
    row = {k: reading[k] for k in keep} | {p: reading[p] for p in POLLUTANT_FIELDS}
    return (
        row
        | {"day": reading["ts"].date(), "temperature": reading["temperature"]}
        | dict(zip(AQI_OUTPUT_COLUMNS, aqi, strict=True))
    )


def us_category_of_nowcast(row: dict) -> str | None:
    return epa_category(row["aqi_us_nowcast"])


def alerts_of(hour_rows: list[dict]) -> list[dict]:
    """The alerts the tables' contract describes: per station and index, an hour whose category differs
    from the category of the hour before it (both known)."""
    by_key = {(r["station_id"], r["window_start"]): r for r in hour_rows}
    rules = {
        "us": (us_category_of_nowcast, "aqi_us_nowcast", lambda r: nowcast_pollutant(r)),
        "eea": (lambda r: r["eaqi_band"], "eaqi", lambda r: r["eaqi_dominant"]),
    }
    alerts = []
    for row in hour_rows:
        before = by_key.get((row["station_id"], row["window_start"] - timedelta(hours=1)))
        if before is None:
            continue
        for index, (category, aqi, pollutant) in rules.items():
            old, new = category(before), category(row)
            if old is not None and new is not None and old != new:
                alerts.append(
                    {
                        "station_id": row["station_id"],
                        "hour": row["window_start"],
                        "aqi_index": index,
                        "previous_category": old,
                        "category": new,
                        "aqi": row[aqi],
                        "pollutant": pollutant(row),
                        "updated_at": UPDATED_AT,
                    }
                )
    return alerts


def nowcast_pollutant(row: dict) -> str:
    return "pm25" if us_aqi("pm25", row["pm25_nowcast"], "24h") == row["aqi_us_nowcast"] else "pm10"


def insert(session, table: str, rows: list[dict]) -> None:
    for row in rows:
        columns = list(row)
        statement = session.prepare(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        )
        session.execute(statement, [row[c] for c in columns])


def month_or_year(window: dict) -> str:
    """The partition of an aggregate row: its window's UTC month (1 h) or year (1 d)."""
    return window["window_start"].strftime("%Y-%m" if window["window_size"] == "1h" else "%Y")


class Data:
    def __init__(self, readings: list[dict], windows: list[dict], stations: list[dict], alerts: list[dict]):
        self.readings, self.windows, self.stations, self.alerts = readings, windows, stations, alerts

    def of(self, station_id: str, size: str) -> list[dict]:
        return sorted(
            (w for w in self.windows if w["station_id"] == station_id and w["window_size"] == size),
            key=lambda w: w["window_start"],
        )


@pytest.fixture(scope="module")
def keyspace(stack, data_dir) -> Iterator[tuple]:
    """An isolated keyspace holding the Beijing rows; yields (config, data, cassandra session)."""
    env = {
        "AQSTREAM__CASSANDRA__HOST": stack.cfg.host,
        "AQSTREAM__CASSANDRA__PORT": str(stack.cfg.cassandra_port),
        "AQSTREAM__CASSANDRA__KEYSPACE": f"aq_{uuid.uuid4().hex[:8]}",
        "AQSTREAM__KAFKA__BOOTSTRAP_SERVERS": stack.kafka_bootstrap,
        "AQSTREAM__DASHBOARD__MAX_PAGE_SIZE": str(MAX_PAGE),
        "AQSTREAM__DASHBOARD__MAX_RANGE_DAYS": str(MAX_DAYS),
        "AQSTREAM__DASHBOARD__TREND_HOURS": "24",
        "AQSTREAM__DASHBOARD__PROMETHEUS_URL": stack.cfg.prometheus_url,
        **stack_client_env(stack),
    }
    config = load_config(environ=env)
    apply_cql(config)
    readings = [reading_row(r) for r in beijing_readings(data_dir)]
    everything = {(r["station_id"], size, window_start(r["ts"], size)) for r in readings for size in ("1h", "1d")}
    windows = window_rows(readings, everything, UPDATED_AT, {})
    one_reading_each = {r["station_id"]: r for r in readings}
    stations = [
        {
            "registry": STATIONS_REGISTRY,
            **{k: r[k] for k in ("station_id", "source", "station_name", "city", "country", "lat", "lon")},
            "updated_at": UPDATED_AT,
        }
        for r in one_reading_each.values()
    ]
    stations.append({"registry": STATIONS_REGISTRY, "station_id": REGISTERED_WITHOUT_DATA, "station_name": "Dingling"})
    alerts = alerts_of([w for w in windows if w["window_size"] == "1h"])
    assert {a["aqi_index"] for a in alerts} == {"us", "eea"}, "the data should hold crossings of both indexes"

    cluster, session = cassandra_session(config, keyspace=config.cassandra.keyspace)
    try:
        insert(session, config.cassandra.readings_table, readings)
        insert(session, config.cassandra.aggregates_table, windows)
        buckets = {(w["station_id"], w["window_size"], month_or_year(w)) for w in windows}
        buckets.add(("beijing-dongsi", "1h", EMPTIED_BUCKET))
        insert(
            session,
            AGGREGATE_BUCKETS_TABLE,
            [dict(zip(("station_id", "window_size", "bucket"), b, strict=True)) for b in buckets],
        )
        insert(session, STATIONS_TABLE, stations)
        insert(session, ALERTS_BY_STATION_TABLE, alerts)
        insert(session, ALERTS_BY_DAY_TABLE, [a | {"day": a["hour"].date()} for a in alerts])
        yield config, Data(readings, windows, stations, alerts), session
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {config.cassandra.keyspace}", timeout=60)
        cluster.shutdown()


@pytest.fixture(scope="module")
def service(keyspace) -> Iterator[tuple]:
    """The app over a real Store, and every request its session sends to Cassandra."""
    config, data, _ = keyspace
    cluster, session = connect(config)
    sent: list = []
    session.add_request_init_listener(lambda future: sent.append(future.query))
    store = Store(session, config)
    app = create_app(config, store, lambda: pipeline_health(config))
    try:
        with TestClient(app) as client:
            yield client, store, data, sent, session
    finally:
        cluster.shutdown()


# --- the endpoints ----------------------------------------------------------------------------


def test_stations_with_their_latest_reading_and_current_aqi(service):
    client, _, data, _, _ = service
    answer = client.get("/api/stations")
    assert answer.status_code == 200
    stations = answer.json()["stations"]
    assert [s["station_id"] for s in stations] == sorted(s["station_id"] for s in data.stations)
    for station in stations:
        if station["station_id"] == REGISTERED_WITHOUT_DATA:
            assert station["latest_hour"] is None and station["latest_reading"] is None
            assert station["current"]["us"]["value"] is None and station["current"]["eea"]["category"] is None
            continue
        hours = data.of(station["station_id"], "1h")
        latest = hours[-1]
        newest_reading = max(
            (r for r in data.readings if r["station_id"] == station["station_id"]), key=lambda r: r["ts"]
        )
        assert station["latest_hour"]["window_start"] == iso(latest["window_start"])
        assert station["latest_hour"]["pm25_nowcast"] == pytest.approx(latest["pm25_nowcast"])
        assert station["latest_reading"]["ts"] == iso(newest_reading["ts"])
        assert station["latest_reading"]["pm25"] == newest_reading["pm25"]
        assert station["lat"] == newest_reading["lat"] and station["station_name"] == newest_reading["station_name"]
        assert latest["aqi_us_nowcast"] is not None  # 60 hours of PM: the latest hour has its NowCast
        us, eea = station["current"]["us"], station["current"]["eea"]
        assert (us["value"], us["category"], us["basis"]) == (
            latest["aqi_us_nowcast"],
            epa_category(latest["aqi_us_nowcast"]),
            "nowcast",
        )
        assert (eea["value"], eea["category"]) == (latest["eaqi"], latest["eaqi_band"])


def test_a_stations_readings_over_a_range_of_several_days(service):
    client, _, data, _, _ = service
    start, end = datetime(2013, 2, 28, 20, 30), datetime(2013, 3, 2, 5, 0)  # three UTC days' partitions
    answer = client.get(
        "/api/stations/beijing-dongsi/readings", params={"start": iso(start), "end": "2013-03-02T13:00:00+08:00"}
    )
    assert answer.status_code == 200, answer.text
    expected = sorted(
        (r for r in data.readings if r["station_id"] == "beijing-dongsi" and start <= r["ts"] < end),
        key=lambda r: r["ts"],
    )
    body = answer.json()
    assert (body["start"], body["end"], body["count"]) == (iso(start), iso(end), len(expected))
    assert len(expected) == 32  # 21:00-23:00, the 24 hours of 1 March, 00:00-04:00
    assert [r["ts"] for r in body["readings"]] == [iso(r["ts"]) for r in expected]
    assert [r["pm25"] for r in body["readings"]] == [r["pm25"] for r in expected]
    assert [r["aqi_us"] for r in body["readings"]] == [r["aqi_us"] for r in expected]


def test_a_page_of_readings_is_the_newest_of_the_range(service):
    client, _, data, _, _ = service
    params = {"start": "2013-02-28T00:00:00Z", "end": "2013-03-03T00:00:00Z", "limit": 10}
    body = client.get("/api/stations/beijing-aotizhongxin/readings", params=params).json()
    expected = sorted(r["ts"] for r in data.readings if r["station_id"] == "beijing-aotizhongxin" and r["ts"].day != 3)
    assert [r["ts"] for r in body["readings"]] == [iso(t) for t in expected[-10:]]
    assert body["count"] == body["limit"] == 10


@pytest.mark.parametrize("size", ["1h", "1d"])
def test_a_stations_aggregates_over_a_range_with_the_nowcast(service, size):
    client, _, data, _, _ = service
    start, end = datetime(2013, 3, 1), datetime(2013, 3, 2, 12)
    params = {"window": size, "start": iso(start), "end": iso(end)}
    body = client.get("/api/stations/beijing-dongsi/aggregates", params=params).json()
    expected = [w for w in data.of("beijing-dongsi", size) if start <= w["window_start"] < end]
    assert len(expected) == (36 if size == "1h" else 2)
    rows = body["aggregates"]
    assert [r["window_start"] for r in rows] == [iso(w["window_start"]) for w in expected]
    for row, window in zip(rows, expected, strict=True):
        assert row["window_end"] == iso(window["window_end"])
        assert row["pm25_count"] == window["pm25_count"]
        assert row["pm25_mean"] == pytest.approx(window["pm25_mean"])
        assert row["aqi_us"] == window["aqi_us"] and row["eaqi_band"] == window["eaqi_band"]
        if size == "1h":
            assert row["pm25_nowcast"] == pytest.approx(window["pm25_nowcast"])
            assert row["aqi_us_nowcast"] == window["aqi_us_nowcast"]
        else:
            assert row["pm25_nowcast"] is None and row["aqi_us_nowcast"] is None


@pytest.mark.parametrize("limit", [MAX_PAGE, 8, 4])
def test_hourly_aggregates_over_a_months_end_come_from_both_months_partitions(service, limit):
    client, store, data, sent, _ = service
    start, end = datetime(2013, 2, 28, 20), datetime(2013, 3, 1, 6)
    sent.clear()
    params = {"window": "1h", "start": iso(start), "end": iso(end), "limit": limit}
    body = client.get("/api/stations/beijing-dongsi/aggregates", params=params).json()
    expected = [w for w in data.of("beijing-dongsi", "1h") if start <= w["window_start"] < end]
    assert len(expected) == 10  # 20:00-23:00 of February, 00:00-05:00 of March
    assert [r["window_start"] for r in body["aggregates"]] == [iso(w["window_start"]) for w in expected[-limit:]]
    assert [r["pm25_mean"] for r in body["aggregates"]] == pytest.approx([w["pm25_mean"] for w in expected[-limit:]])
    # the March partition answers first; with a page it fills, February's is never asked
    windows = store.prepared["windows"]
    buckets = [query.values[2].decode() for query in sent if query.prepared_statement is windows]
    assert buckets == (["2013-03", "2013-02"] if limit > 6 else ["2013-03"])


ALERT_FIELDS = ("station_id", "hour", "aqi_index", "previous_category", "category", "aqi", "pollutant")


def expected_alert(alert: dict) -> dict:
    return {
        "station_id": alert["station_id"],
        "hour": iso(alert["hour"]),
        "aqi_index": alert["aqi_index"],
        "previous_category": alert["previous_category"],
        "category": alert["category"],
        "aqi": alert["aqi"],
        "pollutant": alert["pollutant"],
    }


def newest_first(alerts: list[dict]) -> list[dict]:
    ordered = sorted(alerts, key=lambda a: (a["station_id"], a["aqi_index"]))
    return sorted(ordered, key=lambda a: a["hour"], reverse=True)


def test_a_stations_latest_alerts(service):
    client, _, data, _, _ = service
    body = client.get("/api/stations/beijing-dongsi/alerts", params={"limit": 5}).json()
    expected = newest_first([a for a in data.alerts if a["station_id"] == "beijing-dongsi"])[:5]
    assert len(expected) == 5
    assert [{k: a[k] for k in ALERT_FIELDS} for a in body["alerts"]] == [expected_alert(a) for a in expected]


def test_the_latest_alerts_of_every_station_and_of_a_day(service):
    client, _, data, _, _ = service
    body = client.get("/api/alerts", params={"limit": 7}).json()
    expected = newest_first(data.alerts)[:7]
    assert {a["station_id"] for a in expected} == {"beijing-dongsi", "beijing-aotizhongxin"}
    assert [{k: a[k] for k in ALERT_FIELDS} for a in body["alerts"]] == [expected_alert(a) for a in expected]

    day = sorted({a["hour"].date() for a in data.alerts})[1]
    body = client.get("/api/alerts", params={"day": day.isoformat(), "limit": MAX_PAGE}).json()
    expected = newest_first([a for a in data.alerts if a["hour"].date() == day])
    assert len(expected) > 1
    assert [{k: a[k] for k in ALERT_FIELDS} for a in body["alerts"]] == [expected_alert(a) for a in expected]


def test_the_pipeline_health_reports_what_is_down_without_failing(service, keyspace, stack):
    client, _, _, _, _ = service
    body = client.get("/api/health").json()
    # no job runs in this test: both are reported down, Kafka and Prometheus (the stack's) answered
    assert [(j["name"], j["state"]) for j in body["jobs"]] == [("raw_to_mongo", "down"), ("cdc_to_cassandra", "down")]
    assert body["healthy"] is False and any("raw_to_mongo is down" in p for p in body["problems"])
    assert body["kafka"]["error"] is None and body["prometheus"] == {"url": stack.cfg.prometheus_url, "error": None}

    # Prometheus and Kafka not answering (nothing listens on port 9): reported, still a 200
    config = keyspace[0]
    nowhere = config.model_copy(
        update={
            "dashboard": config.dashboard.model_copy(update={"prometheus_url": "http://127.0.0.1:9"}),
            "kafka": config.kafka.model_copy(update={"bootstrap_servers": "127.0.0.1:9"}),
        }
    )
    app = create_app(nowhere, service[1], lambda: pipeline_health(nowhere))
    with TestClient(app) as other:
        answer = other.get("/api/health")
    assert answer.status_code == 200
    body = answer.json()
    assert body["prometheus"]["error"] and body["kafka"]["error"]
    assert any(p.startswith("kafka (127.0.0.1:9) did not answer") for p in body["problems"])


def test_openapi_and_the_page_are_served_without_a_cdn(service):
    client, _, _, _, _ = service
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths) == {
        "/api/stations",
        "/api/stations/{station_id}/readings",
        "/api/stations/{station_id}/aggregates",
        "/api/stations/{station_id}/alerts",
        "/api/alerts",
        "/api/health",
    }
    docs = client.get("/docs").text
    page = client.get("/").text
    for html in (docs, page):
        assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html
    assert client.get("/vendor/swagger-ui/swagger-ui-bundle.js").status_code == 200
    plotly_js = client.get("/vendor/plotly.min.js")
    assert plotly_js.status_code == 200 and plotly_js.text.lstrip().startswith("/**\n* plotly.js v")
    assert 'data-refresh-seconds="30"' in page and 'data-trend-hours="24"' in page


# --- bad input: a 4xx naming the parameter, never a 500 ---------------------------------------


DAY = {"start": "2013-03-01T00:00:00Z", "end": "2013-03-02T00:00:00Z"}


@pytest.mark.parametrize(
    ("path", "params", "status", "parameter"),
    [
        ("/api/stations/nowhere/readings", DAY, 404, None),
        ("/api/stations/nowhere/aggregates", DAY, 404, None),
        ("/api/stations/nowhere/alerts", {}, 404, None),
        ("/api/stations/beijing-dongsi/readings", {**DAY, "end": "2013-02-28T00:00:00Z"}, 422, "end"),  # reversed
        ("/api/stations/beijing-dongsi/aggregates", {**DAY, "end": DAY["start"]}, 422, "end"),  # empty
        ("/api/stations/beijing-dongsi/readings", {**DAY, "end": "2013-03-04T00:00:01Z"}, 422, "end"),  # > 3 days
        ("/api/stations/beijing-dongsi/aggregates", {**DAY, "end": "2014-03-01T00:00:00Z"}, 422, "end"),
        ("/api/stations/beijing-dongsi/aggregates", {**DAY, "window": "2h"}, 422, "window"),
        ("/api/stations/beijing-dongsi/readings", {**DAY, "limit": MAX_PAGE + 1}, 422, "limit"),
        ("/api/stations/beijing-dongsi/readings", {**DAY, "limit": 0}, 422, "limit"),
        ("/api/stations/beijing-dongsi/readings", {**DAY, "start": "yesterday"}, 422, "start"),
        ("/api/stations/beijing-dongsi/readings", {"end": DAY["end"]}, 422, "start"),
        ("/api/stations/beijing-dongsi/aggregates", {"start": DAY["start"]}, 422, "end"),
        ("/api/alerts", {"limit": 10_000}, 422, "limit"),
        ("/api/alerts", {"day": "2013-02-30"}, 422, "day"),
        ("/api/stations/beijing-dongsi/alerts", {"limit": -1}, 422, "limit"),
    ],
)
def test_bad_input_gets_a_4xx_naming_the_parameter(service, path, params, status, parameter):
    client = service[0]
    answer = client.get(path, params=params)
    assert answer.status_code == status, answer.text
    detail = answer.json()["detail"]
    if parameter is None:
        assert "unknown station_id 'nowhere'" in detail
    else:
        assert [d["loc"] for d in detail] == [["query", parameter]]


# --- reads by partition key only --------------------------------------------------------------


def partition_keys(session, keyspace: str) -> dict[str, list[str]]:
    tables = session.cluster.metadata.keyspaces[keyspace].tables
    return {name: [c.name for c in table.partition_key] for name, table in tables.items()}


def test_routing_key_indexes_is_none_when_a_statement_lacks_its_partition_key(keyspace):
    """The claims the next test rests on, checked against cassandra-driver and Cassandra themselves."""
    config, _, session = keyspace
    table = config.cassandra.aggregates_table
    keyed = f"SELECT * FROM {table} WHERE station_id = ? AND window_size = ? AND bucket = ? LIMIT 1"
    assert session.prepare(keyed).routing_key_indexes == [0, 1, 2]
    station_only = f"SELECT * FROM {table} WHERE station_id = ? LIMIT 1"
    assert session.prepare(f"{station_only} ALLOW FILTERING").routing_key_indexes is None  # not one partition
    with pytest.raises(InvalidRequest, match="ALLOW FILTERING|partition key"):
        session.prepare(station_only)
    assert session.prepare(f"SELECT * FROM {table} LIMIT 5").routing_key_indexes is None  # a scan
    filtered = f"SELECT * FROM {table} WHERE window_size = ? ALLOW FILTERING"
    assert session.prepare(filtered).routing_key_indexes is None
    readings = config.cassandra.readings_table
    both = session.prepare(f"SELECT * FROM {readings} WHERE day = ? AND station_id = ? LIMIT 1")
    assert sorted(both.routing_key_indexes) == [0, 1]
    assert (
        session.prepare(f"SELECT * FROM {readings} WHERE station_id = ? LIMIT 1 ALLOW FILTERING").routing_key_indexes
        is None
    )
    # routing_key_indexes names the bound partition-key columns whatever their operator: a range of days over
    # several partitions has them too. Cassandra refuses such a read without ALLOW FILTERING, so "routing
    # key indexes cover the partition key" and "no ALLOW FILTERING" together mean one partition by equality.
    days = f"SELECT * FROM {readings} WHERE station_id = ? AND day > ? LIMIT 5"
    assert session.prepare(f"{days} ALLOW FILTERING").routing_key_indexes == [0, 1]
    with pytest.raises(InvalidRequest, match="ALLOW FILTERING|partition key"):
        session.prepare(days)


def test_every_statement_binds_its_whole_partition_key_and_none_filters(service, keyspace):
    _, store, _, _, session = service
    config = keyspace[0]
    keys = partition_keys(session, config.cassandra.keyspace)
    assert set(store.prepared) == {
        "stations",
        "station",
        "aggregate_buckets",
        "latest_window",
        "latest_reading",
        "readings",
        "windows",
        "station_alerts",
        "day_alerts",
    }
    for name, statement in store.prepared.items():
        text = statement.query_string.upper()
        assert "ALLOW FILTERING" not in text, name
        assert " LIMIT " in text, f"{name}: every read is bounded"
        table = statement.column_metadata[0].table_name
        assert statement.routing_key_indexes is not None, f"{name} does not bind the partition key of {table}"
        bound = [statement.column_metadata[i].name for i in statement.routing_key_indexes]
        assert bound == keys[table], f"{name} binds {bound}, {table}'s partition key is {keys[table]}"


def test_the_endpoints_execute_only_the_prepared_statements(service):
    client, store, _, sent, _ = service
    sent.clear()
    for path, params in [
        ("/api/stations", {}),
        ("/api/stations/beijing-dongsi/readings", {"start": "2013-02-28T00:00:00Z", "end": "2013-03-03T00:00:00Z"}),
        ("/api/stations/beijing-dongsi/aggregates", {"window": "1d", **DAY}),
        ("/api/stations/beijing-dongsi/alerts", {}),
        ("/api/alerts", {}),
        ("/api/alerts", {"day": "2013-03-01"}),
        ("/api/stations/nowhere/readings", DAY),
    ]:
        assert client.get(path, params=params).status_code in (200, 404)
    assert sent, "the listener saw no request"
    prepared = {id(s): name for name, s in store.prepared.items()}
    executed = []
    for query in sent:
        assert isinstance(query, BoundStatement), f"not a prepared statement: {query}"
        assert id(query.prepared_statement) in prepared, f"a statement prepared elsewhere: {query.prepared_statement}"
        executed.append(prepared[id(query.prepared_statement)])
    assert set(executed) == set(store.prepared)  # and each of them is used
