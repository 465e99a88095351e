"""Replay of the Kaggle and UCI Beijing CSVs: deterministic ids, units, missing and bad values."""

from __future__ import annotations

import csv
import itertools
import json
import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest

from collectors import cli, replay
from collectors.cli import REPO_ROOT
from collectors.metrics import CollectorMetrics
from jobs.config import load_config
from schemas.reading import parse_event_id

pytestmark = pytest.mark.unit

MAPPINGS = REPO_ROOT / "conf" / "mappings"


def _kaggle(data_dir):
    return data_dir / "kaggle" / "air_quality_pollution_assessment.csv"


def _run(files, mapping, **kwargs):
    out = []
    replay.replay(files, mapping, out.append, **kwargs)
    return out


def test_kaggle_rows_get_deterministic_station_and_time(data_dir):
    mapping = replay.load_mapping(MAPPINGS / "kaggle.json")
    first = _run([_kaggle(data_dir)], mapping)
    second = _run([_kaggle(data_dir)], mapping)
    assert len(first) == 5000
    assert [r["event_id"] for r in first] == [r["event_id"] for r in second]
    assert len({r["event_id"] for r in first}) == 5000
    assert first[0]["event_id"] == "kaggle:kaggle-s00:20240101T000000Z"
    assert first[13]["event_id"] == "kaggle:kaggle-s03:20240101T010000Z"
    assert first[-1]["event_id"] == "kaggle:kaggle-s09:20240121T190000Z"  # row 4999: hour 499


def test_kaggle_first_row_values_and_units(data_dir):
    mapping = replay.load_mapping(MAPPINGS / "kaggle.json")
    [reading] = _run([_kaggle(data_dir)], mapping, limit=1)
    # CSV row 1: 29.8,59.1,5.2,17.9,18.9,9.2,1.72,6.3,319,Moderate
    assert (reading["temperature"], reading["humidity"], reading["pm25"], reading["pm10"]) == (29.8, 59.1, 5.2, 17.9)
    assert reading["no2"] == pytest.approx(18.9 * 46.0055 / 24.45)  # ppb → 35.56 µg/m³
    assert reading["so2"] == pytest.approx(9.2 * 64.066 / 24.45)  # ppb → 24.11 µg/m³
    assert reading["co"] == pytest.approx(1720 * 28.010 / 24.45)  # ppm → 1970.44 µg/m³
    assert reading["extra"] == {"proximity_to_industrial_areas_km": 6.3, "population_density_per_km2": 319.0}
    assert json.loads(reading["raw"])["Air Quality"] == "Moderate"


def test_kaggle_invalid_values_are_kept_and_flagged_never_zeroed(data_dir):
    mapping = replay.load_mapping(MAPPINGS / "kaggle.json")
    readings = _run([_kaggle(data_dir)], mapping)
    with open(_kaggle(data_dir), newline="") as handle:
        rows = list(csv.DictReader(handle))
    negative_pm10 = [i for i, row in enumerate(rows) if float(row["PM10"]) < 0]
    wet = [i for i, row in enumerate(rows) if float(row["Humidity"]) > 100]
    assert negative_pm10 and wet
    for i in negative_pm10:
        assert readings[i]["pm10"] == float(rows[i]["PM10"]) and "pm10:negative" in readings[i]["flags"]
    for i in wet:
        assert readings[i]["humidity"] == float(rows[i]["Humidity"]) and "humidity:out_of_range" in readings[i]["flags"]


def test_beijing_local_time_units_and_na(data_dir):
    mapping = replay.load_mapping(MAPPINGS / "beijing.json")
    path = data_dir / "bench" / "PRSA_Data_Dongsi_20130301-20170228.csv"
    readings = _run([path], mapping, limit=3000)
    first = readings[0]
    # "1,2013,3,1,0,9,9,3,17,300,89,-0.5,1024.5,-21.4,0,"NNW",5.7,"Dongsi"": Beijing midnight = 16:00Z the day before
    assert first["event_id"] == "uci-beijing:beijing-dongsi:20130228T160000Z"
    assert (first["pm25"], first["pm10"], first["so2"], first["no2"], first["co"], first["o3"]) == (
        9.0,
        9.0,
        3.0,
        17.0,
        300.0,
        89.0,
    )
    assert first["temperature"] == -0.5
    # the stations' zone, as the mapping names it: their local days bound the 1 d aggregates
    assert {r["timezone"] for r in readings} == {json.loads((MAPPINGS / "beijing.json").read_text())["timezone"]}
    assert first["extra"] == {"pres_hpa": 1024.5, "dewp_c": -21.4, "rain_mm": 0.0, "wd_deg": 337.5, "wspm_ms": 5.7}
    with open(path, newline="") as handle:
        rows = list(itertools.islice(csv.DictReader(handle), 3000))
    na_rows = [i for i, row in enumerate(rows) if row["PM2.5"] == "NA"]
    assert na_rows
    for i in na_rows:
        assert readings[i]["pm25"] is None and not any(f.startswith("pm25:") for f in readings[i]["flags"])


def test_several_stations_merge_in_time_order(data_dir):
    mapping = replay.load_mapping(MAPPINGS / "beijing.json")
    files = sorted((data_dir / "bench").glob("PRSA_Data_*.csv"))[:3]
    readings = _run(files, mapping, limit=9)
    assert [r["ts"] for r in readings] == ["2013-02-28T16:00:00Z"] * 3 + ["2013-02-28T17:00:00Z"] * 3 + [
        "2013-02-28T18:00:00Z"
    ] * 3
    assert len({r["station_id"] for r in readings}) == 3


def test_restamp_puts_the_newest_at_now_and_keeps_spacing(data_dir):
    mapping = replay.load_mapping(MAPPINGS / "kaggle.json")
    now = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
    readings = _run([_kaggle(data_dir)], mapping, limit=30, restamp=True, now=lambda: now)
    stamps = [datetime.fromisoformat(r["ts"].replace("Z", "+00:00")) for r in readings]
    assert max(stamps) == now and min(stamps) == now - timedelta(hours=2)
    assert parse_event_id(readings[-1]["event_id"]).ts == now


def test_loop_stops_on_signal(data_dir):
    mapping = replay.load_mapping(MAPPINGS / "kaggle.json")
    stop = threading.Event()
    out = []

    def emit(reading):
        out.append(reading)
        if len(out) == 25:
            stop.set()

    replay.replay([_kaggle(data_dir)], mapping, emit, limit=10, loop=True, stop=stop)
    assert len(out) == 25 and out[10]["event_id"] == out[0]["event_id"]


def test_paced_replay_waits_between_event_times(data_dir):
    mapping = replay.load_mapping(MAPPINGS / "kaggle.json")
    waits = []

    class Clock:
        t = 0.0

    stop = threading.Event()
    stop.wait = lambda delay: waits.append(delay)  # record instead of sleeping
    pacer = replay.Pacer(3600.0, stop, clock=lambda: Clock.t)
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    for ts in (t0, t0, t0 + timedelta(hours=1), t0 + timedelta(hours=2)):
        pacer.wait_for(ts)
    assert waits == [1.0, 2.0]  # 1 h of event time = 1 s at 3600×
    assert mapping.station.round_robin == 10


def test_a_station_the_mapping_does_not_know_is_sent_flagged_with_null_coordinates(data_dir, tmp_path, caplog):
    """The real Beijing mapping without Dongsi's coordinates, over the real Dongsi and Aotizhongxin files:
    every Dongsi reading is sent, flagged ``station:unknown``, lat/lon null; counted, logged once, summed up."""
    mapping = json.loads((MAPPINGS / "beijing.json").read_text())
    del mapping["station"]["coordinates"]["Dongsi"]
    reduced = tmp_path / "beijing-without-dongsi.json"
    reduced.write_text(json.dumps(mapping))
    dongsi = data_dir / "bench" / "PRSA_Data_Dongsi_20130301-20170228.csv"
    aoti = data_dir / "bench" / "PRSA_Data_Aotizhongxin_20130301-20170228.csv"
    with open(dongsi, newline="") as handle:
        dongsi_rows = sum(1 for row in csv.DictReader(handle) if row["station"] == "Dongsi")
    with open(aoti, newline="") as handle:
        aoti_rows = sum(1 for _ in csv.DictReader(handle))
    assert dongsi_rows > 0 and aoti_rows > 0

    out = tmp_path / "readings.ndjson"
    argv = ["replay", "--dataset", "beijing", "--mapping", str(reduced), "--files", str(dongsi), str(aoti)]
    args = cli.build_parser().parse_args([*argv, "--out", str(out)])
    metrics = CollectorMetrics("replay")
    with caplog.at_level(logging.INFO, logger="collectors"):
        assert cli.run(args, cli.settings_from_args(args, load_config()), threading.Event(), metrics) == 0

    readings = [json.loads(line) for line in out.read_text().splitlines()]
    unknown = [r for r in readings if r["station_id"] == "beijing-dongsi"]
    known = [r for r in readings if r["station_id"] == "beijing-aotizhongxin"]
    assert len(unknown) == dongsi_rows and len(known) == aoti_rows and len(readings) == dongsi_rows + aoti_rows
    assert all(replay.UNKNOWN_STATION_FLAG in r["flags"] and r["lat"] is None and r["lon"] is None for r in unknown)
    assert all(replay.UNKNOWN_STATION_FLAG not in r["flags"] for r in known)
    assert {(r["lat"], r["lon"]) for r in known} == {tuple(mapping["station"]["coordinates"]["Aotizhongxin"])}
    flagged = metrics.registry.get_sample_value(
        "aqstream_collector_readings_flagged_total", {"source": "replay", "reason": "unknown_station"}
    )
    assert flagged == dongsi_rows
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "'Dongsi'" in warnings[0] and str(dongsi) in warnings[0]
    summary = [r.getMessage() for r in caplog.records if r.getMessage().startswith("replay beijing:")]
    assert summary and summary[-1].endswith(f"flagged: unknown_station {dongsi_rows}")
