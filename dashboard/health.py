"""The pipeline's health for the page's strip: :mod:`jobs.status`'s sample (each job's /metrics, Kafka's
latest offsets, the Debezium connector) judged by :mod:`jobs.health`, with no Spark session.

``python -m jobs.status`` reads a stopped job's last batch from its checkpoint with a local Spark session;
a web server should not start a JVM per look, so here a stopped job's last batch, its end offsets and
watermark come from what Prometheus last scraped of it (``last_over_time`` over
``dashboard.prometheus_lookback``), and the lag is counted from those offsets as jobs.status counts it.
Nothing that does not answer (a job, Kafka, Kafka Connect, Prometheus) fails the answer: it is reported.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import requests

from jobs.checkpoint import CommittedBatch
from jobs.config import JOBS, PipelineConfig, interval_seconds
from jobs.health import assess, report_json
from jobs.status import TIMEOUT_S, describe, take_sample

# (series, extra labels kept): what a stopped query's last batch is made of
PROMETHEUS_SERIES = {
    "last_batch_id": "",
    "last_progress_timestamp_seconds": "",
    "watermark_timestamp_seconds": "",
    "source_end_offset": ", topic, partition",
}
PROMETHEUS_SOURCE = "prometheus"

Series = list[tuple[dict[str, str], float]]


def committed_batches(series: Mapping[str, Series]) -> dict[str, CommittedBatch]:
    """Each query's last batch from Prometheus' answers (by series name), as jobs.status takes a checkpoint's."""
    batches: dict[str, CommittedBatch] = {}
    values: dict[str, dict[str, float]] = {}
    for name in ("last_batch_id", "last_progress_timestamp_seconds", "watermark_timestamp_seconds"):
        for labels, value in series.get(name, []):
            values.setdefault(labels["query"], {})[name] = value
    offsets: dict[str, dict[str, dict[int, int]]] = {}
    for labels, value in series.get("source_end_offset", []):
        offsets.setdefault(labels["query"], {}).setdefault(labels["topic"], {})[int(labels["partition"])] = int(value)
    for query, figures in values.items():
        if "last_batch_id" not in figures:
            continue
        watermark = figures.get("watermark_timestamp_seconds")
        batches[query] = CommittedBatch(
            batch_id=int(figures["last_batch_id"]),
            committed_at=figures.get("last_progress_timestamp_seconds", 0.0),
            end_offsets=offsets.get(query),
            watermark=None if not watermark else datetime.fromtimestamp(watermark, tz=UTC).replace(tzinfo=None),
        )
    return batches


def prometheus_query(url: str, promql: str, timeout_s: float = TIMEOUT_S) -> Series:
    response = requests.get(f"{url}/api/v1/query", params={"query": promql}, timeout=timeout_s)
    response.raise_for_status()
    return [(r["metric"], float(r["value"][1])) for r in response.json()["data"]["result"]]


class PrometheusBatches:
    """Stands in for jobs.status.Checkpoints: a query's last batch as Prometheus last scraped it.

    Asked only for queries whose job did not answer (or ran no batch since it started). Prometheus not
    answering is kept in ``prometheus_error``, not ``error`` (jobs.health words that one as a checkpoint's).
    """

    error: str | None = None

    def __init__(self, url: str, lookback: str):
        self.url = url
        self.lookback_s = int(interval_seconds(lookback))
        self.prometheus_error: str | None = None
        self._batches: dict[str, CommittedBatch] | None = None

    def committed(self, query: str) -> CommittedBatch | None:
        if self._batches is None:
            self._batches = self._fetch()
        return self._batches.get(query)

    def _fetch(self) -> dict[str, CommittedBatch]:
        try:
            series = {
                name: prometheus_query(
                    self.url, f"max by (query{labels}) (last_over_time(aqstream_{name}[{self.lookback_s}s]))"
                )
                for name, labels in PROMETHEUS_SERIES.items()
            }
        except (requests.RequestException, ValueError, KeyError) as exc:
            self.prometheus_error = describe(exc)
            return {}
        return committed_batches(series)

    def close(self) -> None:
        """Nothing to close (jobs.status closes its Spark session here)."""


def pipeline_health(config: PipelineConfig) -> dict[str, Any]:
    """jobs.status's report (one sample) as JSON, a stopped job's batches from Prometheus, and whether
    Prometheus answered."""
    dashboard = config.dashboard
    batches = PrometheusBatches(dashboard.prometheus_url, dashboard.prometheus_lookback)
    sample = take_sample(config, list(JOBS), batches, check_connector=True)
    report = report_json(assess(None, sample))
    for job in report["jobs"]:
        for query in job["queries"]:
            if query["batch_from"] == "checkpoint":  # what with_committed calls a batch it did not scrape
                query["batch_from"] = PROMETHEUS_SOURCE
    report["prometheus"] = {"url": dashboard.prometheus_url, "error": batches.prometheus_error}
    return report


class Cached:
    """A slow answer computed at most once per ``ttl_s``; concurrent askers wait for the one computing it."""

    def __init__(self, compute: Callable[[], Any], ttl_s: float, clock: Callable[[], float] = time.monotonic):
        self._compute = compute
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._value: Any = None
        self._at: float | None = None

    def get(self) -> Any:
        with self._lock:
            if self._at is None or self._clock() - self._at >= self._ttl_s:
                self._value = self._compute()
                self._at = self._clock()
            return self._value
