"""The dashboard (``python -m dashboard``) over the demo's stores: looked at in a real headless Chromium, then
put under a bounded load. Every expected figure is read from Cassandra here, not from the service.

Screenshots: .runs/screenshots/dashboard.png (US EPA) and dashboard-eea.png (docs/images/dashboard.png is a
copy of the first from such a run). The load test's figures: .runs/loadtest/loadtest.json.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from selenium.webdriver.common.by import By

from jobs.cassandra_client import connect
from jobs.config import load_config
from schemas.cassandra import ALERTS_BY_STATION_TABLE, STATIONS_REGISTRY, STATIONS_TABLE
from tests.load.__main__ import load_test, report
from tests.support.browser import console_errors, headless_chrome, wait_until
from tests.support.dashboard import EPA_CATEGORY_RGB, epa_category, served_dashboard
from tests.support.pipeline import REPO_ROOT

SCREENSHOTS = REPO_ROOT / ".runs" / "screenshots"
TREND_STATION = "beijing-dongsi"
WINDOW = (1440, 1300)


def registered_and_read_stations(session, config) -> tuple[set[str], set[str]]:
    """The stations the CDC job registered, and those that have readings (a scan: tests only)."""
    registered = {
        r["station_id"]
        for r in session.execute(f"SELECT station_id FROM {STATIONS_TABLE} WHERE registry = %s", (STATIONS_REGISTRY,))
    }
    with_readings = {
        r["station_id"]
        for r in session.execute(f"SELECT DISTINCT station_id, day FROM {config.cassandra.readings_table}", timeout=60)
    }
    return registered, with_readings


@pytest.fixture(scope="module")
def demo_store(demo) -> Iterator[tuple]:
    """(config, Cassandra session) of the demo's keyspace (conf/pipeline.toml, as `make demo` runs)."""
    config = load_config()
    cluster, session = connect(config, "reader", keyspace=config.cassandra.keyspace)  # rows as dicts
    registered, with_readings = registered_and_read_stations(session, config)
    assert registered == with_readings, "the CDC job's stations registry differs from the stations with readings"
    try:
        yield config, session
    finally:
        cluster.shutdown()


@pytest.fixture(scope="module")
def dashboard_url(demo_store) -> Iterator[str]:
    with served_dashboard({}, REPO_ROOT / ".runs" / "dashboard" / "e2e.log") as url:
        yield url


def latest_hour(session, config, station_id: str) -> dict | None:
    """The station's newest 1 h row, over all its month partitions (a filtered scan: tests only)."""
    hours = session.execute(
        f"SELECT * FROM {config.cassandra.aggregates_table} WHERE station_id = %s AND window_size = '1h'"
        " ALLOW FILTERING",
        (station_id,),
    )
    return max(hours, key=lambda h: h["window_start"], default=None)


def expected_figure(hour: dict | None, index: str) -> tuple:
    """(value, category) the page must show for a station's latest 1 h row."""
    if hour is None:
        return None, None
    if index == "eea":
        return hour["eaqi"], hour["eaqi_band"]
    if hour["aqi_us_nowcast"] is not None:
        return hour["aqi_us_nowcast"], epa_category(hour["aqi_us_nowcast"])
    return hour["aqi_us"], hour["aqi_us_category"]


def shown_figures(driver, index: str) -> dict[str, tuple]:
    figures = {}
    for row in driver.find_elements(By.CSS_SELECTOR, "#stations tbody tr"):
        cell = row.find_element(By.CSS_SELECTOR, "td.aqi")
        assert cell.get_attribute("data-index") == index
        value = cell.get_attribute("data-value")
        figures[row.get_attribute("data-station-id")] = (
            int(value) if value else None,
            cell.get_attribute("data-category") or None,
            cell.value_of_css_property("background-color"),
            cell.text,
        )
    return figures


def plot_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def test_the_page_shows_what_cassandra_holds(demo_store, dashboard_url):
    config, session = demo_store
    registry = list(session.execute(f"SELECT * FROM {STATIONS_TABLE} WHERE registry = %s", (STATIONS_REGISTRY,)))
    assert len(registry) >= 6, "the demo's stations (six Beijing ones among them) are in the registry"
    hours = {s["station_id"]: latest_hour(session, config, s["station_id"]) for s in registry}
    assert hours[TREND_STATION] is not None

    with headless_chrome(window_size=WINDOW) as driver:
        driver.get(f"{dashboard_url}/#station={TREND_STATION}")

        def loaded(d) -> bool:
            rows = d.find_elements(By.CSS_SELECTOR, "#stations tbody tr")
            trend = d.execute_script("return document.getElementById('trend').dataset.stationId")
            return d.execute_script("return document.body.dataset.refreshedAt") and len(rows) == len(registry) and trend

        wait_until(driver, loaded, timeout=60)

        # every station's AQI (US EPA: the NowCast AQI of its latest hour) and category, coloured
        shown = shown_figures(driver, "us")
        assert sorted(shown) == sorted(hours)
        for station_id, hour in hours.items():
            value, category, background, text = shown[station_id]
            assert (value, category) == expected_figure(hour, "us"), station_id
            assert text == ("—" if value is None else str(value))
            if category is not None:
                assert background == "rgba({}, {}, {}, 1)".format(*EPA_CATEGORY_RGB[category]), station_id

        # the map: one marker per station with coordinates
        located = sorted(s["station_id"] for s in registry if s["lat"] is not None and s["lon"] is not None)
        markers = driver.execute_script("return document.getElementById('map').data[0].customdata")
        assert sorted(markers) == located

        # the trend: one point per hour of the range ending with the station's latest hour, its NowCast, the daily means
        trend = driver.execute_script(
            "const t = document.getElementById('trend');"
            "return {start: t.dataset.start, end: t.dataset.end, traces: t.data.map(d => [d.name, d.x, d.y])};"
        )
        end = hours[TREND_STATION]["window_start"] + timedelta(hours=1)
        start = end - timedelta(hours=config.dashboard.trend_hours)
        assert (trend["start"], trend["end"]) == (start.isoformat() + "Z", end.isoformat() + "Z")
        rows = {
            r["window_start"]: r
            for r in session.execute(
                f"SELECT window_start, pm25_mean, pm25_nowcast FROM {config.cassandra.aggregates_table}"
                " WHERE station_id = %s AND window_size = '1h' AND window_start >= %s AND window_start < %s"
                " ALLOW FILTERING",  # over the month partitions of the range: tests only
                (TREND_STATION, start, end),
            )
        }
        assert len(rows) > config.dashboard.trend_hours / 2
        every_hour = [start + timedelta(hours=k) for k in range(config.dashboard.trend_hours)]
        traces = {name: (x, y) for name, x, y in trend["traces"]}
        for name, column in (("PM2.5 hourly mean", "pm25_mean"), ("PM2.5 NowCast", "pm25_nowcast")):
            x, y = traces[name]
            assert x == [plot_time(t) for t in every_hour], name  # one point per hour, in order
            expected = [rows[t][column] if t in rows else None for t in every_hour]
            assert y == [pytest.approx(v) if v is not None else None for v in expected], name
        days = sorted(
            session.execute(
                f"SELECT window_start, pm25_mean FROM {config.cassandra.aggregates_table}"
                " WHERE station_id = %s AND window_size = '1d' AND window_start >= %s AND window_start < %s"
                " ALLOW FILTERING",
                (TREND_STATION, start.replace(hour=0), end),
            ),
            key=lambda d: d["window_start"],
        )
        x, y = traces["PM2.5 daily mean"]
        assert x[:-1] == [plot_time(d["window_start"]) for d in days]
        assert y[:-1] == [pytest.approx(d["pm25_mean"]) for d in days]

        # the latest alerts: the newest 20 Cassandra holds, across stations (a scan here: tests only)
        alerts = list(session.execute(f"SELECT * FROM {ALERTS_BY_STATION_TABLE}", timeout=60))
        alerts.sort(key=lambda a: (a["station_id"], a["aqi_index"]))
        alerts.sort(key=lambda a: a["hour"], reverse=True)
        assert alerts, "the flow produced no alert"
        shown_alerts = [
            (
                tr.get_attribute("data-station-id"),
                tr.get_attribute("data-hour"),
                tr.get_attribute("data-index"),
                tr.find_element(By.CSS_SELECTOR, "td.category").text,
            )
            for tr in driver.find_elements(By.CSS_SELECTOR, "#alerts tbody tr[data-station-id]")
        ]
        expected_alerts = [
            (a["station_id"], a["hour"].isoformat() + "Z", a["aqi_index"], a["category"]) for a in alerts
        ]
        assert shown_alerts == expected_alerts[:20]

        # the health strip: every query of both jobs; the jobs have stopped, their last batches come from Prometheus
        wait_until(driver, "#health .item[data-query='cdc_to_cassandra']", timeout=60)
        strip = driver.find_element(By.ID, "health").text
        for query in ("raw_to_mongo", "raw_to_mongo_bronze", "cdc_to_cassandra", "cdc_to_cassandra_aggregates"):
            assert f"{query}: down" in strip
        for query in ("raw_to_mongo", "cdc_to_cassandra"):
            item = driver.find_element(By.CSS_SELECTOR, f"#health .item[data-query='{query}']").text
            # what Prometheus last scraped (every 5 s) of a job that has since stopped
            assert re.search(r"down · batch \d+ \(prometheus\), [\d.]+ (s|min|h) ago · lag \d+$", item), item
        assert "prometheus ok" in strip and "kafka ok" in strip

        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(SCREENSHOTS / "dashboard.png"))

        # switched to the European index: each station's EAQI band of its latest hour
        driver.find_element(By.CSS_SELECTOR, "#index-switch input[value='eea']").click()
        shown = shown_figures(driver, "eea")
        for station_id, hour in hours.items():
            assert shown[station_id][:2] == expected_figure(hour, "eea"), station_id
        assert driver.save_screenshot(str(SCREENSHOTS / "dashboard-eea.png"))

        errors = console_errors(driver)
        assert errors == [], errors

        # the API docs are served from the app too: no console error there either
        driver.get(f"{dashboard_url}/docs")
        wait_until(driver, ".swagger-ui .info .title", timeout=30)
        assert "aqstream" in driver.find_element(By.CSS_SELECTOR, ".swagger-ui .info .title").text
        errors = console_errors(driver)
        assert errors == [], errors
    assert (SCREENSHOTS / "dashboard.png").stat().st_size > 50_000


def test_the_demo_says_where_the_dashboard_is(demo):
    settings = load_config().dashboard
    assert f"make serve, then http://{settings.host}:{settings.port}/" in demo.stdout


def test_fifty_clients_for_thirty_seconds_get_no_error(demo_store, dashboard_url):
    config = demo_store[0]
    out = REPO_ROOT / ".runs" / "loadtest" / "loadtest.json"
    result = load_test(dashboard_url, clients=50, seconds=30, trend_hours=config.dashboard.trend_hours, out=out)
    print(report(result))
    assert result["errors"] == 0, result
    for endpoint in ("stations", "trend"):
        assert result["endpoints"][endpoint]["requests"] >= 100, result
    assert out.is_file()
