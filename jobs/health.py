"""What ``python -m jobs.status`` decides, without I/O: a job's scrape text read back into figures per
query, the live lag, whether a lag is growing, what is unhealthy, the exit code, and the text and JSON.

:mod:`jobs.status` gathers the samples (the jobs' /metrics, their checkpoints when they are down, Kafka's
latest offsets, Kafka Connect); everything here is a function of those samples.

**Lag** is the records behind latest *now*: the topic's end offsets (Kafka, at the sample) minus the end
offsets of the query's latest batch (``aqstream_source_end_offset`` from a running job, its checkpoint's
last committed batch for a job that is down), summed over partitions. It is the figure the growth rule
needs: the ``aqstream_records_behind_latest`` gauge is fixed when a batch is planned and does not move
between batches.

**Lag growing** (two samples ``--interval`` seconds apart): a query's lag is growing when

1. its summed lag rose between the samples, and
2. it finished no batch between them (the same last batch id), and, for a running query,
3. records were already waiting at the first sample (lag > 0), and
4. the window was long enough for a batch: at least its trigger interval plus twice its latest batch's
   duration. A healthy query with records waiting starts a batch within one trigger interval and
   finishes it in about its usual duration; not finishing one in that time while the lag rises is a
   stall. A shorter window judges nothing (e.g. raw_to_mongo_bronze's 30 s trigger needs
   ``--interval`` of ~35 s or more).

So an idle job with lag 0 is healthy (rule 3: records that arrive during the window are not a stall), and
a job that keeps up under load is healthy however its lag moves (rule 2: it ran batches). A job that is
down cannot run a batch: rules 1 and 2 alone decide, and it is unhealthy anyway.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from jobs.checkpoint import CommittedBatch
from jobs.metrics import NAMESPACE
from jobs.progress import records_behind

RUNNING, STOPPED, NOT_STARTED, DOWN = "running", "stopped", "not started", "down"
NOT_IN_RUN = "not in this run"  # an availableNow run starts only the queries it needs
GROWING, STEADY, NOT_JUDGED = "growing", "steady", "not judged"
HEALTHY_EXIT, UNHEALTHY_EXIT = 0, 1

Offsets = dict[str, dict[int, int]]


# --- one job's scrape, read back ------------------------------------------------------------------


@dataclass
class QueryMetrics:
    """The ``aqstream_*`` series of one query (``query`` label) in one scrape of a job's /metrics."""

    active: bool = False
    idle: bool = False
    last_batch_id: int | None = None
    last_progress_at: float | None = None
    batch_seconds: float | None = None
    input_rate: float | None = None
    processing_rate: float | None = None
    trigger_seconds: float | None = None
    watermark: float | None = None
    batches_total: int = 0
    input_rows_total: int = 0
    end_offsets: Offsets = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)


_FIELDS = {
    "query_active": "active",
    "query_idle": "idle",
    "last_batch_id": "last_batch_id",
    "last_progress_timestamp_seconds": "last_progress_at",
    "batch_duration_seconds": "batch_seconds",
    "input_rows_per_second": "input_rate",
    "processed_rows_per_second": "processing_rate",
    "trigger_interval_seconds": "trigger_seconds",
    "watermark_timestamp_seconds": "watermark",
    "batches_total": "batches_total",
    "input_rows_total": "input_rows_total",
}
_FIELD_TYPES = {"active": bool, "idle": bool, "last_batch_id": int, "batches_total": int, "input_rows_total": int}


def parse_metrics(text: str) -> dict[str, QueryMetrics]:
    """A job's /metrics text (Prometheus' text format) → its queries' figures, by query name."""
    queries: dict[str, QueryMetrics] = {}
    prefix = f"{NAMESPACE}_"
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = sample.labels.get("query")
            if name is None or not sample.name.startswith(prefix):
                continue
            query = queries.setdefault(name, QueryMetrics())
            series = sample.name[len(prefix) :]
            if series in _FIELDS:
                attribute = _FIELDS[series]
                setattr(query, attribute, _FIELD_TYPES.get(attribute, float)(sample.value))
            elif series == "source_end_offset":
                topic, partition = sample.labels["topic"], int(sample.labels["partition"])
                query.end_offsets.setdefault(topic, {})[partition] = int(sample.value)
            elif series == "quarantined_records_total":
                query.quarantined[sample.labels["reason"]] = int(sample.value)
    return queries


# --- one sample of the pipeline -------------------------------------------------------------------


@dataclass
class QuerySample:
    """What one sample knows of one streaming query."""

    name: str
    state: str  # RUNNING, STOPPED (terminated in a live job), NOT_STARTED, NOT_IN_RUN, DOWN (the job is)
    idle: bool = False
    last_batch_id: int | None = None
    last_batch_at: float | None = None  # unix seconds: the progress event's arrival, or the commit file
    batch_from: str | None = None  # "metrics" or "checkpoint"
    batch_seconds: float | None = None
    input_rate: float | None = None
    processing_rate: float | None = None
    trigger_seconds: float | None = None
    watermark: float | None = None  # unix seconds
    end_offsets: Offsets | None = None
    quarantined: dict[str, int] | None = None  # None: not known (the counts live in the job's process)
    lag: dict[str, int] | None = None  # records behind latest per topic, at the sample


def query_from_metrics(name: str, metrics: QueryMetrics | None) -> QuerySample:
    """A query of a job whose endpoint answered (absent from it: not started yet)."""
    if metrics is None:
        return QuerySample(name, NOT_STARTED)
    has_batch = metrics.last_batch_id is not None
    return QuerySample(
        name,
        RUNNING if metrics.active else STOPPED,
        idle=metrics.idle,
        last_batch_id=metrics.last_batch_id,
        last_batch_at=metrics.last_progress_at,
        batch_from="metrics" if has_batch else None,
        batch_seconds=metrics.batch_seconds,
        input_rate=metrics.input_rate,
        processing_rate=metrics.processing_rate,
        trigger_seconds=metrics.trigger_seconds,
        watermark=metrics.watermark,
        end_offsets=metrics.end_offsets or None,
        quarantined=dict(metrics.quarantined),
    )


def queries_from_metrics(names: Iterable[str], metrics: Mapping[str, QueryMetrics]) -> list[QuerySample]:
    """The queries of a job whose endpoint answered. A query it has not started is NOT_STARTED, unless
    the job runs ``--available-now`` (its queries have no trigger interval), which starts only what it
    needs: cdc_to_cassandra then recomputes aggregates inline, without its aggregates query."""
    available_now = any(m.trigger_seconds is None for m in metrics.values())
    return [
        QuerySample(name, NOT_IN_RUN)
        if name not in metrics and available_now
        else query_from_metrics(name, metrics.get(name))
        for name in names
    ]


def with_committed(sample: QuerySample, committed: CommittedBatch | None) -> QuerySample:
    """The checkpoint's last committed batch where the metrics have none (a job that is down, or one
    that has run no batch since it started)."""
    if committed is None or sample.last_batch_id is not None:
        return sample
    watermark = None if committed.watermark is None else committed.watermark.replace(tzinfo=UTC).timestamp()
    return dataclasses.replace(
        sample,
        last_batch_id=committed.batch_id,
        last_batch_at=committed.committed_at,
        batch_from="checkpoint",
        end_offsets=committed.end_offsets,
        watermark=sample.watermark if watermark is None else watermark,
    )


def live_lag(end_offsets: Offsets | None, latest: Mapping[str, Mapping[int, int]] | None) -> dict[str, int] | None:
    """Records behind latest per topic the query reads (the topics of its end offsets); None when either
    side is unknown or Kafka does not have the topic."""
    if not end_offsets or latest is None or any(topic not in latest for topic in end_offsets):
        return None
    return records_behind(end_offsets, {topic: dict(latest[topic]) for topic in end_offsets})


@dataclass
class JobSample:
    name: str
    url: str  # its /metrics
    error: str | None  # None: the endpoint answered
    queries: list[QuerySample]

    @property
    def up(self) -> bool:
        return self.error is None


@dataclass
class KafkaProbe:
    bootstrap: str
    latest: Offsets | None  # None: Kafka did not answer
    error: str | None = None


@dataclass
class ConnectorProbe:
    name: str
    url: str
    status: dict[str, Any] | None  # Kafka Connect's /connectors/<name>/status; None: not registered or no answer
    error: str | None = None  # Kafka Connect did not answer


@dataclass
class Sample:
    at: float  # unix seconds
    jobs: list[JobSample]
    kafka: KafkaProbe
    connector: ConnectorProbe | None = None
    checkpoint_error: str | None = None  # a checkpoint that had to be read and could not be

    def query(self, name: str) -> QuerySample | None:
        return next((q for job in self.jobs for q in job.queries if q.name == name), None)


# --- judging two samples --------------------------------------------------------------------------


@dataclass
class Growth:
    verdict: str  # GROWING, STEADY, NOT_JUDGED
    reason: str
    first: int | None = None  # summed lag at each sample
    second: int | None = None


def lag_growth(first: QuerySample | None, second: QuerySample, window_s: float | None) -> Growth:
    """The growth rule of the module's docstring, for one query over two samples."""
    if first is None or window_s is None:
        return Growth(NOT_JUDGED, "one sample (--interval 0)")
    if first.lag is None or second.lag is None:
        return Growth(NOT_JUDGED, "lag unknown at a sample")
    a, b = sum(first.lag.values()), sum(second.lag.values())
    if first.last_batch_id != second.last_batch_id:
        return Growth(STEADY, f"batches {first.last_batch_id} → {second.last_batch_id} ran", a, b)
    if b <= a:
        return Growth(STEADY, "lag did not rise", a, b)
    if second.state == RUNNING:
        if a == 0:
            return Growth(STEADY, "nothing was waiting at the first sample", a, b)
        cadence = (second.trigger_seconds or 0.0) + 2 * (second.batch_seconds or 0.0)
        if window_s < cadence:
            return Growth(NOT_JUDGED, f"window {window_s:.0f} s < trigger + 2 × batch duration ({cadence:.0f} s)", a, b)
    return Growth(GROWING, f"{a:,} → {b:,} records behind in {window_s:.0f} s, no batch finished", a, b)


def connector_problem(probe: ConnectorProbe) -> str | None:
    """Why the Debezium connector is not healthy (None when it and every task are RUNNING)."""
    prefix = f"connector {probe.name} ({probe.url})"
    if probe.error is not None:
        return f"{prefix}: Kafka Connect did not answer: {probe.error}"
    if probe.status is None:
        return f"{prefix}: not registered"
    state = probe.status.get("connector", {}).get("state")
    tasks = probe.status.get("tasks", [])
    if state != "RUNNING":
        return f"{prefix}: connector {state}"
    if not tasks:
        return f"{prefix}: RUNNING with no task"
    bad = [f"task {t.get('id')} {t.get('state')}" for t in tasks if t.get("state") != "RUNNING"]
    return f"{prefix}: {', '.join(bad)}" if bad else None


@dataclass
class Report:
    sample: Sample  # the latest
    window_s: float | None  # between the two samples; None for one sample
    growth: dict[str, Growth]
    problems: list[str]

    @property
    def exit_code(self) -> int:
        return exit_code(self.problems)


def exit_code(problems: Iterable[str]) -> int:
    """0 when nothing is wrong; 1 when a job is down, a query stopped, a lag grows, Kafka or the
    connector is not healthy (a bad config or usage, 2, never gets this far)."""
    return UNHEALTHY_EXIT if list(problems) else HEALTHY_EXIT


def assess(first: Sample | None, second: Sample) -> Report:
    """The report of the latest sample, with each query's growth since the first."""
    window_s = None if first is None else second.at - first.at
    growth: dict[str, Growth] = {}
    problems: list[str] = []
    kafka = second.kafka
    if kafka.error is not None:
        problems.append(f"kafka ({kafka.bootstrap}) did not answer: {kafka.error}; the lag is unknown")
    if second.checkpoint_error is not None:
        problems.append(f"checkpoints not read: {second.checkpoint_error}")
    for job in second.jobs:
        if not job.up:
            problems.append(f"{job.name} is down: {job.url} did not answer ({job.error})")
        for query in job.queries:
            if job.up and query.state not in (RUNNING, NOT_IN_RUN):
                problems.append(f"{job.name}: query {query.name} is {query.state}")
            growth[query.name] = lag_growth(None if first is None else first.query(query.name), query, window_s)
            if growth[query.name].verdict == GROWING:
                problems.append(f"{query.name}: lag growing, {growth[query.name].reason}")
    if second.connector is not None:
        problem = connector_problem(second.connector)
        if problem is not None:
            problems.append(problem)
    return Report(second, window_s, growth, problems)


# --- output ---------------------------------------------------------------------------------------


def age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _timestamp(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _lag(lag: dict[str, int] | None) -> str:
    if lag is None:
        return "?"
    return ", ".join(f"{topic} {n:,}" for topic, n in sorted(lag.items()))


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


def render(report: Report) -> str:
    """The report as text for a terminal."""
    sample = report.sample
    kafka = sample.kafka
    lines = [f"kafka {kafka.bootstrap}: " + ("ok" if kafka.error is None else f"NOT ANSWERING ({kafka.error})")]
    if sample.connector is not None:
        problem = connector_problem(sample.connector)
        lines.append(problem or f"connector {sample.connector.name}: RUNNING (every task RUNNING)")
    for job in sample.jobs:
        lines.append("")
        lines.append(f"{job.name}: " + (f"running ({job.url})" if job.up else f"DOWN ({job.url}: {job.error})"))
        rows = [["query", "state", "last batch", "age", "in rows/s", "processed/s", "lag (records behind latest)"]]
        rows[0] += ["lag growth", "watermark"]
        for query in job.queries:
            state = query.state if not (query.state == RUNNING and query.idle) else "running (idle)"
            batch = "-" if query.last_batch_id is None else str(query.last_batch_id)
            if query.batch_from == "checkpoint":
                batch += " (checkpoint)"
            batch_age = None if query.last_batch_at is None else sample.at - query.last_batch_at
            growth = report.growth.get(query.name)
            rows.append(
                [
                    query.name,
                    state,
                    batch,
                    age(batch_age),
                    _rate(query.input_rate),
                    _rate(query.processing_rate),
                    _lag(query.lag),
                    "-" if growth is None else growth.verdict,
                    _timestamp(query.watermark),
                ]
            )
        lines += _table(rows)
        for query in job.queries:
            if query.quarantined:
                counts = ", ".join(f"{reason} {n:,}" for reason, n in sorted(query.quarantined.items()))
                lines.append(f"  quarantined by {query.name} since the job started: {counts}")
        if not job.up:
            lines.append("  quarantine counts: unknown while the job is down (they live in its process)")
    lines.append("")
    if report.problems:
        lines.append(f"UNHEALTHY (exit {report.exit_code}):")
        lines += [f"  - {problem}" for problem in report.problems]
    else:
        lines.append("healthy")
    return "\n".join(lines)


def report_json(report: Report) -> dict[str, Any]:
    """The report for scripts (``--json``): every figure of the latest sample, the growth, the problems."""
    sample = json.loads(json.dumps(dataclasses.asdict(report.sample)))  # partitions (int keys) as strings
    for job, data in zip(report.sample.jobs, sample["jobs"], strict=True):
        data["state"] = RUNNING if job.up else DOWN
    return {
        "healthy": not report.problems,
        "exit_code": report.exit_code,
        "window_seconds": report.window_s,
        "problems": report.problems,
        "growth": {name: dataclasses.asdict(growth) for name, growth in report.growth.items()},
        **sample,
    }
