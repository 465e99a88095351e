"""The benchmark harness on a few thousand readings, every case: figures produced, counts exact.

No speed is asserted here (speed lives in `make bench`); this keeps the harness from rotting.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from tests.bench import harness as H
from tests.bench.__main__ import chart, run_bench, table

READINGS = 3000
LATENCY_RATE, LATENCY_SECONDS = 10, 6
SMALL_BATCH_READINGS, SMALL_BATCH_SIZE = 250, 50


def expected_windows(bench: H.Bench, database: str, collection: str) -> int:
    """The oracle for the aggregate rows: distinct (station, UTC hour) and (station, local calendar day in the
    document's ``timezone``) of the documents."""
    client = bench.stack.mongo_client()
    try:
        documents = client[database][collection].find({}, {"station_id": 1, "ts": 1, "timezone": 1})
        windows: dict[str, set] = defaultdict(set)
        for doc in documents:
            ts: datetime = doc["ts"]
            windows["1h"].add((doc["station_id"], ts.replace(minute=0, second=0, microsecond=0)))
            zone = ZoneInfo(doc.get("timezone") or "UTC")
            windows["1d"].add((doc["station_id"], ts.replace(tzinfo=UTC).astimezone(zone).date()))
        return sum(len(w) for w in windows.values())
    finally:
        client.close()


def test_every_case_produces_figures_and_the_counts_match_the_input(stack, spark, data_dir, tmp_path):
    bench = H.Bench(stack, spark, data_dir, tmp_path, limit=READINGS)
    try:
        result = run_bench(
            bench,
            runs=1,
            seed_limit=None,
            latency_rates=[LATENCY_RATE],
            latency_seconds=LATENCY_SECONDS,
            small_batch_readings=SMALL_BATCH_READINGS,
            small_batch_size=SMALL_BATCH_SIZE,
        )
        windows = expected_windows(bench, result["debezium"]["database"], result["debezium"]["collection"])
    finally:
        bench.cleanup()

    assert result["prepare"]["records"] == READINGS
    cases = result["cases"]
    for name in (
        "raw_ceiling",
        "raw_to_mongo",
        "seeds_insert_one",
        "mongo_bulk_upsert",
        "mongo_sink_peer",
        "cdc_ceiling",
        "cdc_to_cassandra",
        "cassandra_plain_write",
    ):
        assert cases[name]["records_per_s_median"] > 0, name
    [raw] = cases["raw_to_mongo"]["landed"]
    assert raw["mongo_documents"] == raw["bronze_rows"] == raw["bronze_records"]  # each reading sent once
    assert raw["mongo_documents"] + raw["quarantine_rows"] == READINGS
    assert cases["raw_to_mongo"]["first_batch_seconds_median"] > 0
    assert cases["seeds_insert_one"]["landed"] == [{"mongo_documents": READINGS}]

    # the server's own bulk rate: the same documents the job wrote, each once
    assert bench.raw_valid == raw["mongo_documents"]
    assert cases["mongo_bulk_upsert"]["records"] == raw["mongo_documents"]
    assert cases["mongo_bulk_upsert"]["landed"] == [{"mongo_documents": raw["mongo_documents"]}]

    # the peer: every record of the topic written (it has no checks), none dead-lettered
    [sink] = cases["mongo_sink_peer"]["details"]
    assert sink["raw_distinct"] == READINGS
    assert cases["mongo_sink_peer"]["landed"] == [{"mongo_documents": READINGS}]
    assert sink["complete"] and sink["not_written"] == 0 and sink["dead_letter_records"] == 0, sink
    assert sink["error"] is None

    assert result["debezium"]["records"] == raw["mongo_documents"]
    [cdc] = cases["cdc_to_cassandra"]["landed"]
    assert cdc == {"cassandra_readings": raw["mongo_documents"], "cassandra_aggregates": windows}
    assert cases["cassandra_plain_write"]["records"] == cdc["cassandra_readings"]
    assert cases["cassandra_plain_write"]["landed"] == [{"cassandra_readings": cdc["cassandra_readings"]}]

    small = result["small_batches"]
    assert small["landed"]["cassandra_readings"] == small["landed"]["mongo_documents"] == small["cdc_records"] > 0
    for job in ("raw_to_mongo", "cdc_to_cassandra"):
        main = small[job]["queries"][job]
        assert small[job]["source"] == "batch log", job
        assert main["batches"] >= SMALL_BATCH_READINGS // SMALL_BATCH_SIZE, (job, main)
        assert main["measured_batches"] == main["batches"] - small["skipped_batches"] > 0, (job, main)
        assert 0 < main["median_rows"] <= SMALL_BATCH_SIZE, (job, main)
        assert main["median_seconds"] > 0 and main["median_step_seconds"], (job, main)

    [latency] = result["latency"]
    trickle = LATENCY_RATE * LATENCY_SECONDS
    assert latency["complete"] and latency["samples"] == trickle
    for hop, figures in latency["hops"].items():
        assert figures["samples"] == trickle, hop
    assert latency["mongo_write_clock"] == {"wallTime": trickle}
    assert 0 < latency["p50_s"] <= latency["p95_s"] <= latency["p99_s"] <= latency["max_s"]
    fresh = latency["freshness_1h"]
    assert fresh["samples"] == fresh["readings_sent"] == trickle and fresh["never_seen"] == 0, fresh
    assert 0 < fresh["p50_s"] <= fresh["p95_s"]

    assert set(result["targets"]) >= {
        "raw_to_mongo / mongo bulk upsert",
        "cdc_to_cassandra / cassandra plain write",
        f"end-to-end p95 at {LATENCY_RATE}/s (s)",
        f"1 h aggregate freshness p95 at {LATENCY_RATE}/s (s)",
    }
    text = table(result)
    assert "| raw_to_mongo" in text and "| peer: Kafka Connect MongoDB sink" in text and "Small batches" in text
    chart(result, tmp_path / "chart.png")
    assert (tmp_path / "chart.png").stat().st_size > 0
