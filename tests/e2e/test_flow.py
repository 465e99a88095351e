"""The whole flow on the real stack: collectors → Kafka → raw_to_mongo → MongoDB → Debezium → Kafka
→ cdc_to_cassandra → Cassandra, on a slice of the recorded data, with an exact end state: once with both jobs
in this process's local Spark session, once with both submitted to the stack's Spark standalone master."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import pytest

from jobs import cdc_to_cassandra, raw_to_mongo
from jobs.kafka_auth import kafka_python_settings
from jobs.mongo_auth import mongo_client
from jobs.report import store_counts
from jobs.topics import wait_for_cdc
from jobs.transforms import raw_readings as T
from tests.support.cdc_events import reading_aqi_mismatches
from tests.support.flow import (
    POISON,
    aggregate_mismatches,
    cassandra_aggregates,
    cassandra_reading_rows,
    close,
    isolated_flow,
    out_of_range,
    run_available_now,
)
from tests.support.pipeline import REPO_ROOT, bronze_contents, collect_to_kafka, parse_ts, produce, replay_to_kafka
from tests.support.recordings import recording
from tests.support.spark_cluster import master_state, submit_to_the_cluster

# OpenAQ: sensor 3's first measurements page (5 raw 30-minute pm25 rows) and the locations page naming its location
OPENAQ_PAGE = "openaqr_v3_sensors_3_measurements_limit5_page1.json"
OPENAQ_LOCATIONS = "openaqr_v3_locations_page1.json"
OPENAQ_SENSOR = 3


@pytest.fixture
def flow(stack, tmp_path):
    """An isolated pipeline: its own topics, database, keyspace, Delta paths and Debezium connector."""
    with isolated_flow(stack, tmp_path) as flow:
        yield flow


def test_every_valid_reading_lands_everywhere_and_aggregates_equal_pandas(spark, data_dir, tmp_path, flow, monkeypatch):
    """Both jobs in this process's local Spark session; then the report and the notebook over the stores."""
    config, env, _ = flow
    end = run_the_flow_to_its_exact_end_state(
        flow, spark, data_dir, tmp_path, lambda job: run_available_now(job, spark, config)
    )

    # the report (what make demo prints) agrees with direct queries of each store
    counts = store_counts(config, spark)
    assert counts["mongo_documents"] == len(end.valid) == counts["bronze_rows"] == counts["cassandra_readings"]
    assert counts["cassandra_aggregates"] == end.aggregate_windows
    assert counts["quarantine_rows"] == end.quarantined
    json.dumps({k: v for k, v in counts.items() if k != "latest_per_city"}, default=str)  # printable

    # the exploration notebook runs against these stores and sees the same counts
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    printed = execute_notebook(REPO_ROOT / "notebooks" / "explore.ipynb")
    assert f"bronze rows: {len(end.valid)}" in printed
    assert f"mongo documents: {len(end.valid)}" in printed
    assert f"cassandra readings: {len(end.valid)}" in printed


def test_both_jobs_submitted_to_the_standalone_master_end_in_the_same_exact_state(
    spark_cluster, spark, data_dir, tmp_path, flow
):
    """Both jobs submitted to the stack's standalone master (client deploy mode, one after the other, each
    granted the worker's cores): the same inputs end in the same exact state, and the master lists both
    applications finished with executors on the worker."""
    _, env, _ = flow
    applications = []

    def submit(job) -> None:
        applications.append(submit_to_the_cluster(spark_cluster, job.__name__.rpartition(".")[2], env))

    run_the_flow_to_its_exact_end_state(flow, spark, data_dir, tmp_path, submit)

    finished = {a["id"]: (a["name"], a["state"]) for a in master_state(spark_cluster.cfg)["completedapps"]}
    assert [finished.get(app.app_id) for app in applications] == [
        ("aqstream-raw_to_mongo", "FINISHED"),
        ("aqstream-cdc_to_cassandra", "FINISHED"),
    ]
    # so the reading AQIs checked above were computed by Python workers of the CDC job's executors on the worker
    # (mapInPandas runs them through Arrow), with the jobs' code from --py-files
    assert "ArrowPythonRunner" in applications[1].executor_logs()


@dataclass(frozen=True)
class FlowEnd:
    valid: dict[str, dict]  # the readings sent that must land, by event_id
    quarantined: int  # the Kafka records raw_to_mongo must quarantine
    aggregate_windows: int  # the pandas oracle's windows, equal to Cassandra's aggregate rows


def run_the_flow_to_its_exact_end_state(flow, spark, data_dir, tmp_path, run_job: Callable) -> FlowEnd:
    """Send the flow's inputs (CSV replays, an OpenAQ backfill page, poison records), run raw_to_mongo and then
    cdc_to_cassandra with ``run_job`` (each over what its topic holds, to the end), and assert the exact state
    of every store."""
    config, _, session = flow
    beijing = sorted((data_dir / "bench").glob("PRSA_Data_*.csv"))[:2]
    sent = replay_to_kafka(config, "beijing", beijing, limit=120, out=tmp_path / "beijing.ndjson")
    sent += replay_to_kafka(
        config,
        "kaggle",
        [data_dir / "kaggle" / "air_quality_pollution_assessment.csv"],
        limit=60,
        out=tmp_path / "kaggle.ndjson",
    )
    page = json.loads(recording(data_dir, OPENAQ_PAGE).read_text())["results"]
    openaq_sent = backfill_page_to_kafka(config, data_dir, page, tmp_path / "openaq.ndjson")
    sent += openaq_sent
    produce(
        kafka_python_settings(config, "admin"),
        config.kafka.raw_topic,
        [(b"poison", v) for values in POISON.values() for v in values],
    )
    valid = {r["event_id"]: r for r in sent if not out_of_range(r)}
    rejected = [r for r in sent if out_of_range(r)]

    run_job(raw_to_mongo)
    client = mongo_client(config)
    try:
        documents = {d["_id"]: d for d in client[config.mongo.database][config.mongo.collection].find()}
    finally:
        client.close()
    assert sorted(documents) == sorted(valid)
    for event_id, reading in valid.items():
        document = documents[event_id]
        assert (document["station_id"], document["ts"]) == (reading["station_id"], parse_ts(reading["ts"]))
        assert close(document["pm25"], reading["pm25"]) and close(document["pm10"], reading["pm10"])

    wait_for_cdc(kafka_python_settings(config, "admin"), config.kafka.cdc_topic, valid, timeout_s=180)
    run_job(cdc_to_cassandra)

    rows = cassandra_reading_rows(session, config)
    assert sorted(rows) == sorted(valid)
    for event_id, row in rows.items():
        assert close(row["pm25"], valid[event_id]["pm25"]) and close(row["pm10"], valid[event_id]["pm10"])
    assert reading_aqi_mismatches(rows, list(valid.values())) == []  # each reading's AQI, from its pollutants
    assert openaq_rows(rows, openaq_sent) == expected_openaq_rows(data_dir, page)
    assert bronze_contents(spark, str(config.paths.bronze))[0] == sorted(valid)

    quarantine = spark.read.format("delta").load(str(config.paths.quarantine))
    reasons = Counter(r.reason_code for r in quarantine.select("reason_code").collect())
    expected_reasons = Counter({code: len(values) for code, values in POISON.items()})
    expected_reasons[T.OUT_OF_RANGE] += len(rejected)
    assert reasons == +expected_reasons

    aggregates = cassandra_aggregates(session, config)
    assert aggregate_mismatches(list(valid.values()), aggregates) == []
    return FlowEnd(valid, sum(expected_reasons.values()), len(aggregates))


def backfill_page_to_kafka(config, data_dir, page: list[dict], out) -> list[dict]:
    """The OpenAQ measurements page through the real backfill collector (its recorded-pages mode) into Kafka,
    over a range that holds every row of the page (from the first period's start to the last one's end)."""
    args = ["openaq", "backfill", "--sensor", str(OPENAQ_SENSOR)]
    args += ["--datetime-from", min(r["period"]["datetimeFrom"]["utc"] for r in page)]
    args += ["--datetime-to", max(r["period"]["datetimeTo"]["utc"] for r in page)]
    for name in (OPENAQ_LOCATIONS, OPENAQ_PAGE):
        args += ["--from-file", str(recording(data_dir, name))]
    return collect_to_kafka(config, args, out)


OPENAQ_COLUMNS = ("station_id", "ts", "lat", "lon", "pm25", "pm10", "aqi_us", "aqi_us_category", "aqi_us_dominant")
OPENAQ_COLUMNS += ("eaqi", "eaqi_band", "eaqi_dominant")


def openaq_rows(rows: dict[str, dict], sent: list[dict]) -> list[tuple]:
    """Cassandra's rows of the OpenAQ readings sent, oldest first, as (column values in OPENAQ_COLUMNS order)."""
    stored = [rows[r["event_id"]] for r in sent if r["event_id"] in rows]
    return sorted(tuple(row[c] for c in OPENAQ_COLUMNS) for row in stored)


def expected_openaq_rows(data_dir, page: list[dict]) -> list[tuple]:
    """What Cassandra must hold for the page, read off the recordings: one row per measurement of the location
    that owns the sensor, at its period's end, with its pm25 and the AQIs of that pm25 worked out here.

    US AQI (EPA, 2024 PM2.5 table): 0.0-9.0 µg/m³ (truncated to 0.1) is Good, 0-50, linear; EAQI (EEA, 2024
    bands): PM2.5 0-5 µg/m³ is level 1, Good. The page's values are all in those first bands (checked)."""
    locations = json.loads(recording(data_dir, OPENAQ_LOCATIONS).read_text())["results"]
    location = next(loc for loc in locations if OPENAQ_SENSOR in {s["id"] for s in loc["sensors"]})
    expected = []
    for r in page:
        pm25 = float(r["value"])
        assert r["parameter"]["name"] == "pm25" and r["parameter"]["units"] == "µg/m³" and pm25 <= 5.0
        aqi_us = math.floor(50 / 9.0 * (math.floor(pm25 * 10) / 10) + 0.5)
        when: datetime = parse_ts(r["period"]["datetimeTo"]["utc"])
        coordinates = location["coordinates"]
        expected.append(
            (f"openaq-{location['id']}", when, coordinates["latitude"], coordinates["longitude"], pm25, None)
            + (aqi_us, "Good", "pm25", 1, "Good", "pm25")
        )
    return sorted(expected)


def execute_notebook(path) -> str:
    """Run every cell in a fresh kernel (inheriting this process's environment); return all text output."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", "") or "".join(output.get("data", {}).get("text/plain", "")))
    return "\n".join(texts)
