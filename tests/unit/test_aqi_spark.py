"""The Spark AQI expressions agree with the pure functions: on every boundary case, and on every
row of the six recorded UCI Beijing stations (a property test over 210,384 real readings)."""

from __future__ import annotations

import csv
import math
from datetime import datetime, timedelta

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    DoubleType,
    IntegerType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from jobs.transforms import aqi as A
from tests.unit.test_aqi import EAQI_CASES, EPA_BOUNDARIES, EPA_INTERIOR, to_ugm3

pytestmark = pytest.mark.unit

POLLUTANT_COLUMNS = ("pm25", "pm10", "no2", "so2", "co", "o3")
READINGS_SCHEMA = StructType(
    [StructField("station", StringType(), False), StructField("no", IntegerType(), False)]
    + [StructField(p, DoubleType(), True) for p in POLLUTANT_COLUMNS]
)
BEIJING_HEADER = {"PM2.5": "pm25", "PM10": "pm10", "NO2": "no2", "SO2": "so2", "CO": "co", "O3": "o3"}


def readings_df(spark, rows):
    """A DataFrame of (station, no, pm25, pm10, no2, so2, co, o3) with the explicit schema."""
    return spark.createDataFrame(rows, READINGS_SCHEMA)


def pure_row(values: dict) -> tuple:
    us = A.us_aqi_overall(values)
    eu = A.eaqi_overall(values)
    return (*us, *eu)


def spark_rows(df) -> dict:
    out = df.select("station", "no", *A.AQI_OUTPUT_COLUMNS).collect()
    return {(r["station"], r["no"]): tuple(r[c] for c in A.AQI_OUTPUT_COLUMNS) for r in out}


CASE_SCHEMA = StructType(
    [
        StructField("i", IntegerType(), False),
        StructField("p", StringType(), False),
        StructField("avg", StringType(), True),
        StructField("c", DoubleType(), True),
    ]
)


def test_sub_index_columns_match_pure_functions_on_every_boundary(spark):
    cases = []
    for p, avg, c, _ in EPA_BOUNDARIES + EPA_INTERIOR:
        usable = c is not None and not math.isnan(c)
        cases.append((p, avg, float(to_ugm3(p, avg, c)) if usable else c))
    df = spark.createDataFrame([(i, p, avg, c) for i, (p, avg, c) in enumerate(cases)], CASE_SCHEMA)
    expr = F.lit(None).cast("int")
    for key in A.US_TABLES:
        p, avg = key.split("/")
        expr = F.when((F.col("p") == p) & (F.col("avg") == avg), A.us_aqi_col(p, "c", avg)).otherwise(expr)
    got = {r["i"]: r["aqi"] for r in df.select("i", expr.alias("aqi")).collect()}
    got = [got[i] for i in range(len(cases))]
    assert got == [A.us_aqi(p, c, avg) for p, avg, c in cases]
    assert got == [e for *_, e in EPA_BOUNDARIES + EPA_INTERIOR]


def test_eaqi_columns_match_pure_functions_on_every_band_edge(spark):
    df = spark.createDataFrame([(i, p, None, c) for i, (p, c, _) in enumerate(EAQI_CASES)], CASE_SCHEMA)
    expr = F.lit(None).cast("int")
    for p in A.EAQI_UPPER:
        expr = F.when(F.col("p") == p, A.eaqi_col(p, "c")).otherwise(expr)
    got = {r["i"]: r["level"] for r in df.select("i", expr.alias("level")).collect()}
    assert [got[i] for i in range(len(EAQI_CASES))] == [level for *_, level in EAQI_CASES]
    assert [got[i] for i in range(len(EAQI_CASES))] == [A.eaqi(p, c) for p, c, _ in EAQI_CASES]


def test_with_aqi_on_hand_made_readings(spark):
    o3_080 = to_ugm3("o3", "8h", 0.080)
    rows = [
        ("hand", 1, 35.0, 100.0, 100.0, None, 1000.0, None),
        ("hand", 2, None, None, None, None, None, o3_080),
        ("hand", 3, None, None, None, None, None, None),
        ("hand", 4, 9.0, 54.0, None, None, None, None),
        ("hand", 5, 9.09, None, None, None, None, None),
        ("hand", 6, 9.1, None, None, None, None, None),
        ("hand", 7, 1000.0, None, None, None, None, None),
    ]
    got = spark_rows(A.with_aqi(readings_df(spark, rows)))
    # EAQI: pm25 35 → 3, pm10 100 → 3, no2 100 → 4 (60-100 Poor): NO2 is the worst band
    assert got[("hand", 1)] == (99, "Moderate", "pm25", 4, "Poor", "no2")
    # O3 0.080 ppm = 157.05 µg/m³: EAQI 120-160 → Poor
    assert got[("hand", 2)] == (133, "Unhealthy for Sensitive Groups", "o3", 4, "Poor", "o3")
    assert got[("hand", 3)] == (None, None, None, None, None, None)
    # EAQI: pm25 9 → 2 (5-15), pm10 54 → 3 (45-120)
    assert got[("hand", 4)] == (50, "Good", "pm25", 3, "Moderate", "pm10")
    assert got[("hand", 5)][0] == 50
    assert got[("hand", 6)][0] == 51
    assert got[("hand", 7)] == (500, "Hazardous", "pm25", 6, "Extremely poor", "pm25")
    for r in rows:
        assert got[(r[0], r[1])] == pure_row(dict(zip(POLLUTANT_COLUMNS, r[2:], strict=True)))


def test_with_aqi_reads_window_means_through_a_column_mapping(spark):
    schema = StructType([StructField("pm25_mean", DoubleType()), StructField("o3_mean", DoubleType())])
    df = spark.createDataFrame([(12.0, None)], schema)
    row = A.with_aqi(df, {"pm25": "pm25_mean", "o3": "o3_mean"}).first()
    assert (row["aqi_us"], row["aqi_us_dominant"], row["eaqi"], row["eaqi_dominant"]) == (
        56,
        "pm25",
        2,
        "pm25",
    )


@pytest.fixture(scope="module")
def beijing_rows(data_dir) -> list[tuple]:
    rows = []
    for path in sorted((data_dir / "bench").glob("PRSA_Data_*_20130301-20170228.csv")):
        with path.open(newline="") as fh:
            for rec in csv.DictReader(fh):
                values = [None if rec[h] == "NA" else float(rec[h]) for h in BEIJING_HEADER]
                rows.append((rec["station"], int(rec["No"]), *values))
    return rows


def test_spark_and_pure_functions_agree_on_every_beijing_reading(spark, beijing_rows):
    assert len(beijing_rows) == 6 * 35_064
    got = spark_rows(A.with_aqi(readings_df(spark, beijing_rows)))
    assert len(got) == len(beijing_rows)
    mismatches = []
    for r in beijing_rows:
        expected = pure_row(dict(zip(BEIJING_HEADER.values(), r[2:], strict=True)))
        if got[(r[0], r[1])] != expected:
            mismatches.append((r, got[(r[0], r[1])], expected))
    assert mismatches[:5] == []
    # the data set exercises the whole scale, not just one category
    categories = {v[1] for v in got.values()}
    assert {"Good", "Moderate", "Unhealthy", "Very Unhealthy", "Hazardous"} <= categories
    assert {v[2] for v in got.values()} >= {"pm25", "pm10", "o3", "co", "no2"}


def test_python_rows_and_spark_columns_agree_on_every_beijing_reading(spark, beijing_rows):
    """The jobs' mapInPandas version (pure functions in Python workers) = the Column version, row for row."""
    df = readings_df(spark, beijing_rows).localCheckpoint()
    assert_df_equality(A.with_aqi_python(df), A.with_aqi(df), ignore_row_order=True, ignore_nullable=True)


NOWCAST_CASES = [
    [13.0, 16.0, 10.0, 21.0, 74.0, 64.0, 53.0, 82.0, 90.0, 75.0, 80.0, 50.0],
    [10.0, 9.0, 8.0],
    [20.0, None, 10.0],
    [None, None, 12.0, 12.0],
    [12.0] * 12,
    [0.0, 0.0, 0.0],
    [None, 12.0, 14.0, None, 3.0],
]


def test_nowcast_column_matches_pure_function(spark):
    schema = StructType([StructField("i", IntegerType()), StructField("h", ArrayType(DoubleType(), True))])
    df = spark.createDataFrame(list(enumerate(NOWCAST_CASES)), schema)
    got = {r["i"]: r["n"] for r in df.select("i", A.nowcast_col(F.col("h")).alias("n")).collect()}
    assert [got[i] for i in range(len(NOWCAST_CASES))] == [A.nowcast(h) for h in NOWCAST_CASES]


def test_with_nowcast_over_a_readings_table_uses_clock_hours(spark, beijing_rows):
    station = [r for r in beijing_rows if r[0] == "Aotizhongxin"][:200]
    start = datetime(2013, 3, 1)
    # drop two hours to make gaps: the NowCast must see them as missing, not shift the window
    kept = [r for r in station if r[1] not in (50, 51)]
    schema = StructType(
        [
            StructField("station_id", StringType()),
            StructField("ts", TimestampType()),
            StructField("pm25", DoubleType()),
        ]
    )
    df = spark.createDataFrame([(r[0], start + timedelta(hours=r[1] - 1), r[2]) for r in kept], schema)
    got = {r["ts"]: r["nc"] for r in A.with_nowcast(df, "pm25", "nc").collect()}
    by_hour = {r[1]: r[2] for r in kept}
    for r in kept:
        history = [by_hour.get(r[1] - k) for k in range(12)]
        assert got[start + timedelta(hours=r[1] - 1)] == A.nowcast(history), r


def test_nowcast_aqi_column_matches_pure_function(spark):
    values = [None, 0.0, 9.0, 9.04, 9.1, 35.45, 54.0, 55.0, 125.4, 325.4, 900.0]
    cases = [(i, a, b) for i, (a, b) in enumerate((a, b) for a in values for b in values)]
    schema = StructType(
        [StructField("i", IntegerType()), StructField("pm25", DoubleType()), StructField("pm10", DoubleType())]
    )
    df = spark.createDataFrame(cases, schema)
    got = {r["i"]: r["a"] for r in df.select("i", A.nowcast_aqi_col("pm25", "pm10").alias("a")).collect()}
    assert [got[i] for i, _, _ in cases] == [A.nowcast_aqi(a, b) for _, a, b in cases]
