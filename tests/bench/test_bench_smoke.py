"""The benchmark harness on a few thousand readings, every case: figures produced, counts exact.

No speed is asserted here (speed lives in `make bench`); this keeps the harness from rotting.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from pymongo import MongoClient

from tests.bench import harness as H
from tests.bench.__main__ import chart, run_bench, table

READINGS = 3000


def expected_windows(bench: H.Bench, database: str, collection: str) -> int:
    """The oracle for the aggregate rows: distinct (station, hour) and (station, day) of the documents."""
    client = MongoClient(bench.mongo_uri)
    try:
        documents = client[database][collection].find({}, {"station_id": 1, "ts": 1})
        windows: dict[str, set] = defaultdict(set)
        for doc in documents:
            ts: datetime = doc["ts"]
            windows["1h"].add((doc["station_id"], ts.replace(minute=0, second=0, microsecond=0)))
            windows["1d"].add((doc["station_id"], ts.date()))
        return sum(len(w) for w in windows.values())
    finally:
        client.close()


def test_every_case_produces_figures_and_the_counts_match_the_input(stack, spark, data_dir, tmp_path):
    bench = H.Bench(stack, spark, data_dir, tmp_path, limit=READINGS)
    try:
        result = run_bench(bench, runs=1, seed_limit=None, latency_rate=10, latency_seconds=6)
        windows = expected_windows(bench, result["debezium"]["database"], result["debezium"]["collection"])
    finally:
        bench.cleanup()

    assert result["prepare"]["records"] == READINGS
    cases = result["cases"]
    for name in ("raw_ceiling", "raw_to_mongo", "seeds_insert_one", "cdc_ceiling", "cdc_to_cassandra"):
        assert cases[name]["records_per_s_median"] > 0, name
    [raw] = cases["raw_to_mongo"]["landed"]
    assert raw["mongo_documents"] == raw["bronze_rows"]
    assert raw["mongo_documents"] + raw["quarantine_rows"] == READINGS
    assert cases["seeds_insert_one"]["landed"] == [{"mongo_documents": READINGS}]
    assert result["debezium"]["records"] == raw["mongo_documents"]
    [cdc] = cases["cdc_to_cassandra"]["landed"]
    assert cdc == {"cassandra_readings": raw["mongo_documents"], "cassandra_aggregates": windows}
    latency = result["latency"]
    assert latency["samples"] == 60
    assert 0 < latency["p50_s"] <= latency["p95_s"] <= latency["p99_s"] <= latency["max_s"]
    assert set(result["targets"]) >= {"raw_to_mongo / raw ceiling", "end-to-end p95 (s)"}
    assert "| raw_to_mongo" in table(result)
    chart(result, tmp_path / "chart.png")
    assert (tmp_path / "chart.png").stat().st_size > 0
