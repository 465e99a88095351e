"""The jobs' Prometheus endpoint: a registry fed as the jobs feed it, scraped over HTTP."""

from __future__ import annotations

import json
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from jobs.metrics import collector_registry, serve
from jobs.metrics_endpoint import MetricsServer
from jobs.progress import Registry, progress_record


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_the_endpoint_serves_the_registry(kafka_progress):
    registry = Registry()
    registry.record_started("raw-id", "raw_to_mongo")
    registry.set_trigger("raw_to_mongo", 1.0)
    registry.record_batch("raw_to_mongo", 0, 10, 0.5, {"mongo": 0.4}, {"valid": 8, "quarantined": 2, "written": 7})
    registry.record_batch(
        "raw_to_mongo",
        1,
        5,
        0.25,
        {"mongo": 0.2, "quarantine": 0.05},
        {"valid": 4, "quarantined": 1, "written": 4, "quarantine_reasons": {"missing_field": 1}},
    )
    registry.record_progress(progress_record(kafka_progress))
    registry.record_batch("cdc_to_cassandra", 0, 6, 0.3, {}, {"upsert": 5, "quarantine": 1, "late": 2})
    registry.record_batch("cdc_to_cassandra_aggregates", 0, 5, 0.3, {}, {"written": 9, "emptied": 1})

    server = MetricsServer("127.0.0.1", 0, collector_registry(registry))  # an ephemeral port, never a stack port
    assert server.port > 0
    try:
        got = scrape(server.url)
    finally:
        server.close()

    raw, cdc, agg = (
        (("query", "raw_to_mongo"),),
        (("query", "cdc_to_cassandra"),),
        (("query", "cdc_to_cassandra_aggregates"),),
    )
    assert got[("aqstream_query_active", raw)] == 1
    assert got[("aqstream_batches_total", raw)] == 1
    assert got[("aqstream_input_rows_total", raw)] == kafka_progress["numInputRows"]
    assert got[("aqstream_last_batch_id", raw)] == kafka_progress["batchId"]
    assert got[("aqstream_batch_duration_seconds", raw)] == kafka_progress["durationMs"]["triggerExecution"] / 1000
    assert got[("aqstream_trigger_interval_seconds", raw)] == 1.0
    behind = (("query", "raw_to_mongo"), ("topic", "t2f3d6b0d.raw"))
    assert got[("aqstream_records_behind_latest", behind)] == (50000 - 16666) + (10000 - 3333)
    for partition, offset in {"0": 16666, "1": 3333, "2": 0}.items():  # batch 0's end (raw_to_mongo.0)
        end = (("partition", partition), ("query", "raw_to_mongo"), ("topic", "t2f3d6b0d.raw"))
        assert got[("aqstream_source_end_offset", end)] == offset
    assert got[("aqstream_watermark_timestamp_seconds", raw)] == progress_record(kafka_progress)["watermark_seconds"]
    assert got[("aqstream_batch_step_seconds", (("query", "raw_to_mongo"), ("step", "quarantine")))] == 0.05
    count = (("count", "valid"), ("query", "raw_to_mongo"))
    assert got[("aqstream_batch_records_total", count)] == 12
    # quarantine by reason where the job told it; the rest unclassified, so the sum is the whole
    reason = (("query", "raw_to_mongo"), ("reason", "missing_field"))
    assert got[("aqstream_quarantined_records_total", reason)] == 1
    assert got[("aqstream_quarantined_records_total", (("query", "raw_to_mongo"), ("reason", "unclassified")))] == 2
    assert got[("aqstream_duplicates_dropped_total", raw)] == 1
    assert got[("aqstream_quarantined_records_total", (("query", "cdc_to_cassandra"), ("reason", "unclassified")))] == 1
    assert got[("aqstream_late_changes_total", cdc)] == 2
    assert got[("aqstream_aggregate_rows_total", (("outcome", "written"), *agg))] == 9
    assert got[("aqstream_aggregate_rows_total", (("outcome", "emptied"), *agg))] == 1
    assert ("aqstream_duplicates_dropped_total", agg) not in got


def test_port_zero_in_the_config_disables_and_a_taken_port_does_not_stop_the_job():
    registry = Registry()
    assert serve("127.0.0.1", 0, registry) is None
    first = MetricsServer("127.0.0.1", 0, collector_registry(registry))
    try:
        assert serve("127.0.0.1", first.port, registry) is None  # taken: warned, not raised
    finally:
        first.close()


def test_the_progress_line_is_json(kafka_progress):
    assert json.loads(json.dumps(progress_record(kafka_progress)))["sources"][0]["records_behind"]
