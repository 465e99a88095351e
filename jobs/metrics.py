"""The jobs' own metrics in Prometheus' text format, under the ``aqstream_`` namespace.

Read at scrape time from :data:`jobs.progress.REGISTRY` (what the progress listener and
:func:`jobs.runner.log_batch` keep), so a batch pays nothing for them. Each job serves them on its
own port (``monitoring.metrics_port_<job>`` in conf/pipeline.toml, 0 disables) at ``/metrics``.
Every series carries the streaming query's name as ``query``; Prometheus adds ``job`` and
``instance`` from conf/prometheus/prometheus.yml. The names are listed in docs/monitoring.md.

Counters count since the job's process started (a restart resets them, which ``rate()`` and
``increase()`` handle).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from jobs import metrics_endpoint
from jobs.metrics_endpoint import NAMESPACE, MetricsServer
from jobs.progress import REGISTRY, Registry

# log_batch counts with a meaning of their own, by the query that logs them: (count key, metric, help)
QUARANTINE_KEYS = ("quarantined", "quarantine")  # raw_to_mongo's, cdc_to_cassandra's
REASONS_KEY = "quarantine_reasons"  # {reason code: n}, when the job tells them apart
NAMED_COUNTS = {
    "late": ("late_changes", "changes older than the aggregates' watermark (applied, windows recomputed)"),
}
AGGREGATES_QUERY_SUFFIX = "_aggregates"


def _family(kind: type, name: str, doc: str, labels: list[str]) -> Any:
    return kind(f"{NAMESPACE}_{name}", doc, labels=labels)


class RegistryCollector(Collector):
    """A prometheus-client collector that turns a :class:`jobs.progress.Registry` snapshot into series."""

    def __init__(self, registry: Registry = REGISTRY):
        self.registry = registry

    def collect(self) -> Iterator[Any]:
        snapshot = self.registry.snapshot()
        q = ["query"]
        active = _family(GaugeMetricFamily, "query_active", "1 while the streaming query runs", q)
        idle = _family(GaugeMetricFamily, "query_idle", "1 when the query's last trigger found no new data", q)
        batches = _family(CounterMetricFamily, "batches", "micro-batches run (progress events)", q)
        rows = _family(CounterMetricFamily, "input_rows", "rows read from the query's sources", q)
        batch_id = _family(GaugeMetricFamily, "last_batch_id", "id of the latest micro-batch", q)
        last_progress = _family(
            GaugeMetricFamily, "last_progress_timestamp_seconds", "when the latest progress event arrived", q
        )
        duration = _family(
            GaugeMetricFamily, "batch_duration_seconds", "the latest batch's duration (durationMs.triggerExecution)", q
        )
        input_rate = _family(GaugeMetricFamily, "input_rows_per_second", "the latest batch's input rate", q)
        processing_rate = _family(
            GaugeMetricFamily, "processed_rows_per_second", "the latest batch's processing rate", q
        )
        trigger = _family(
            GaugeMetricFamily, "trigger_interval_seconds", "the query's processing-time trigger interval", q
        )
        watermark = _family(
            GaugeMetricFamily, "watermark_timestamp_seconds", "the query's event-time watermark (unix seconds)", q
        )
        behind = _family(
            GaugeMetricFamily,
            "records_behind_latest",
            "records in the Kafka topic past the latest batch's end offsets (summed over partitions)",
            [*q, "topic"],
        )
        end_offset = _family(
            GaugeMetricFamily,
            "source_end_offset",
            "the latest batch's end offset per Kafka partition (what the query has read up to)",
            [*q, "topic", "partition"],
        )
        step = _family(GaugeMetricFamily, "batch_step_seconds", "the latest batch's wall time per step", [*q, "step"])
        counts = _family(
            CounterMetricFamily, "batch_records", "every count a job logs per batch, summed", [*q, "count"]
        )
        quarantined = _family(
            CounterMetricFamily, "quarantined_records", "records quarantined, by reason code", [*q, "reason"]
        )
        duplicates = _family(
            CounterMetricFamily, "duplicates_dropped", "valid readings dropped as duplicates within a batch", q
        )
        named = {key: _family(CounterMetricFamily, name, doc, q) for key, (name, doc) in NAMED_COUNTS.items()}
        aggregates = _family(
            CounterMetricFamily, "aggregate_rows", "aggregate rows written or emptied", [*q, "outcome"]
        )
        for name, state in sorted(snapshot.items()):
            active.add_metric([name], 1.0 if state["active"] else 0.0)
            idle.add_metric([name], 1.0 if state["idle"] else 0.0)
            batches.add_metric([name], state["batches_total"])
            rows.add_metric([name], state["input_rows_total"])
            if state["trigger_seconds"] is not None:
                trigger.add_metric([name], state["trigger_seconds"])
            progress = state["progress"]
            if progress is not None:
                batch_id.add_metric([name], progress["batch_id"])
                last_progress.add_metric([name], state["progress_at"])
                _maybe(duration, name, progress["batch_seconds"])
                _maybe(input_rate, name, progress["input_rows_per_second"])
                _maybe(processing_rate, name, progress["processed_rows_per_second"])
                _maybe(watermark, name, progress["watermark_seconds"])
                for topic, n in _records_behind(progress).items():
                    behind.add_metric([name, topic], n)
                for source in progress["sources"]:
                    for topic, parts in (source["end_offset"] or {}).items():
                        for partition, offset in sorted(parts.items()):
                            end_offset.add_metric([name, topic, str(partition)], offset)
            batch = state["batch"]
            if batch is not None:
                for step_name, seconds in sorted(batch["steps"].items()):
                    step.add_metric([name, step_name], seconds)
            totals: Mapping[str, int] = state["counts_total"]
            for key, value in sorted(totals.items()):
                if "." not in key:
                    counts.add_metric([name, key], value)
            _quarantine(quarantined, name, totals)
            if "valid" in totals and "written" in totals and not name.endswith(AGGREGATES_QUERY_SUFFIX):
                duplicates.add_metric([name], max(totals["valid"] - totals["written"], 0))
            for key, family in named.items():
                if key in totals:
                    family.add_metric([name], totals[key])
            if name.endswith(AGGREGATES_QUERY_SUFFIX):
                for outcome in ("written", "emptied"):
                    if outcome in totals:
                        aggregates.add_metric([name, outcome], totals[outcome])
        yield from (active, idle, batches, rows, batch_id, last_progress, duration, input_rate, processing_rate)
        yield from (trigger, watermark, behind, end_offset, step, counts, quarantined, duplicates)
        yield from (*named.values(), aggregates)


def _maybe(family: GaugeMetricFamily, name: str, value: float | None) -> None:
    if value is not None:
        family.add_metric([name], value)


def _records_behind(progress: Mapping[str, Any]) -> dict[str, int]:
    """Per topic over the query's Kafka sources (a query reads each topic through one source)."""
    behind: dict[str, int] = {}
    for source in progress["sources"]:
        for topic, n in (source["records_behind"] or {}).items():
            behind[topic] = behind.get(topic, 0) + n
    return behind


def _quarantine(family: CounterMetricFamily, name: str, totals: Mapping[str, int]) -> None:
    """By reason where the job counted them (``quarantine_reasons``); the rest as ``unclassified``,
    so ``sum by (query)`` is always the query's whole quarantine."""
    total = sum(totals.get(key, 0) for key in QUARANTINE_KEYS)
    prefix = f"{REASONS_KEY}."
    by_reason = {key[len(prefix) :]: n for key, n in totals.items() if key.startswith(prefix)}
    for reason, n in sorted(by_reason.items()):
        family.add_metric([name, reason], n)
    if any(key in totals for key in QUARANTINE_KEYS):
        rest = total - sum(by_reason.values())
        if rest > 0 or not by_reason:
            family.add_metric([name, "unclassified"], max(rest, 0))


def collector_registry(registry: Registry = REGISTRY) -> CollectorRegistry:
    """A prometheus-client registry with the jobs' collector (and nothing else: no process metrics of
    the driver's Python, which Spark's own /metrics/prometheus covers for the JVM)."""
    exported = CollectorRegistry(auto_describe=False)
    exported.register(RegistryCollector(registry))
    return exported


def serve(host: str, port: int, registry: Registry = REGISTRY) -> MetricsServer | None:
    """Start a job's metrics endpoint (:func:`jobs.metrics_endpoint.serve`: None when disabled or taken)."""
    return metrics_endpoint.serve(host, port, collector_registry(registry))
