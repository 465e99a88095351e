"""Is the pipeline healthy? Each job's state, last batch and its age, rates, lag, watermark and quarantine
counts, the Debezium connector's state; the exit status says it for scripts and health checks.

Usage:
    python -m jobs.status [--config conf/pipeline.toml] [--interval 10] [--json] [--job JOB ...] [--no-connector]

Each job is asked at its own metrics endpoint (``monitoring.metrics_host``/``metrics_port_<job>``,
jobs/metrics.py); one that does not answer is **down**, and its queries' last committed batches come
from their checkpoints. The lag is counted against Kafka's latest offsets, so Kafka must answer.
Two samples ``--interval`` seconds apart tell whether a lag is growing (the rule: jobs/health.py);
``--interval 0`` takes one. The connector (``monitoring.connector_name``, default the one in
conf/debezium/mongodb-readings.json, at ``monitoring.connect_url``) is checked with cdc_to_cassandra.

Exit status: 0 healthy; 1 a job or query down, a lag growing, Kafka not answering, the connector not
RUNNING; 2 a bad config or usage.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request

from jobs import cdc_to_cassandra, raw_to_mongo
from jobs.checkpoint import CommittedBatch, last_committed_batch
from jobs.config import JOBS, ConfigError, PipelineConfig, load_config_or_report
from jobs.health import (
    DOWN,
    ConnectorProbe,
    JobSample,
    KafkaProbe,
    QuerySample,
    Sample,
    assess,
    live_lag,
    parse_metrics,
    queries_from_metrics,
    render,
    report_json,
    with_committed,
)
from jobs.kafka_auth import kafka_python_settings
from jobs.paths import local_path

JOB_QUERIES = {
    raw_to_mongo.QUERY_NAME: raw_to_mongo.QUERY_NAMES,
    cdc_to_cassandra.QUERY_NAME: cdc_to_cassandra.QUERY_NAMES,
}
TIMEOUT_S = 5.0


def job_topic(config: PipelineConfig, job: str) -> str:
    return config.kafka.raw_topic if job == raw_to_mongo.QUERY_NAME else config.kafka.cdc_topic


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
        return response.read().decode()


def describe(exc: BaseException) -> str:
    """An exception as ``Type: message``, its cause's rather than the wrappers' HTTP clients put around it
    (urllib's URLError, requests' ConnectionError around urllib3's MaxRetryError)."""
    while True:
        inner = getattr(exc, "reason", None)
        if not isinstance(inner, BaseException) and exc.args and isinstance(exc.args[0], BaseException):
            inner = exc.args[0]
        if not isinstance(inner, BaseException):
            break
        exc = inner
    message = str(exc)
    return type(exc).__name__ if message in ("", type(exc).__name__) else f"{type(exc).__name__}: {message}"


class Checkpoints:
    """The queries' checkpoints, read with a local Spark session started on first use (only when a job
    is down or has run no batch since it started: Spark takes seconds to start)."""

    def __init__(self, config: PipelineConfig):
        self.config = config
        self._spark = None
        self.error: str | None = None

    def committed(self, query: str) -> CommittedBatch | None:
        checkpoint = self.config.paths.checkpoint(query)
        local = local_path(checkpoint)
        if local is not None and not local.exists():
            return None  # a local checkpoint that is not there: no Spark needed to say so
        try:
            if self._spark is None:
                from jobs.session import tool_session

                self._spark = tool_session(self.config, "aqstream-status")
            return last_committed_batch(self._spark, checkpoint)
        except Exception as exc:  # noqa: BLE001 - reported as a problem, the rest of the status still shown
            self.error = describe(exc)
            return None

    def close(self) -> None:
        if self._spark is not None:
            self._spark.stop()


def job_sample(config: PipelineConfig, job: str, checkpoints: Checkpoints) -> JobSample:
    monitoring = config.monitoring
    url = f"http://{monitoring.metrics_host}:{monitoring.metrics_port(job)}/metrics"
    try:
        metrics, error = parse_metrics(scrape(url)), None
    except (OSError, ValueError) as exc:  # refused, timed out, HTTP error (URLError is an OSError)
        metrics, error = None, describe(exc)
    names = JOB_QUERIES[job]
    queries = queries_from_metrics(names, metrics) if metrics is not None else [QuerySample(n, DOWN) for n in names]
    queries = [q if q.last_batch_id is not None else with_committed(q, checkpoints.committed(q.name)) for q in queries]
    return JobSample(job, url, error, queries)


def kafka_probe(config: PipelineConfig, topics: set[str]) -> KafkaProbe:
    """The topics' latest offsets, read as the monitor principal, which may only describe the pipeline's topics
    (a secret it cannot read is the probe's error)."""
    from kafka.errors import KafkaError

    from jobs.topics import latest_offsets

    bootstrap = config.kafka.bootstrap_servers
    try:
        client = kafka_python_settings(config, "monitor")
        return KafkaProbe(bootstrap, latest_offsets(client, sorted(topics), timeout_s=TIMEOUT_S))
    except ConfigError as exc:
        return KafkaProbe(bootstrap, None, str(exc))
    except (KafkaError, OSError) as exc:
        return KafkaProbe(bootstrap, None, describe(exc))


def connector_probe(config: PipelineConfig) -> ConnectorProbe:
    import requests

    from stack import connector

    name = config.monitoring.connector_name or connector.load_connector()["name"]
    url = config.monitoring.connect_url
    try:
        return ConnectorProbe(name, url, connector.status(url, name))
    except requests.RequestException as exc:
        return ConnectorProbe(name, url, None, describe(exc))


def take_sample(config: PipelineConfig, jobs: list[str], checkpoints: Checkpoints, check_connector: bool) -> Sample:
    job_samples = [job_sample(config, job, checkpoints) for job in jobs]
    queries = [query for job in job_samples for query in job.queries]
    topics = {job_topic(config, job) for job in jobs} | {t for q in queries for t in (q.end_offsets or {})}
    kafka = kafka_probe(config, topics)
    for query in queries:
        query.lag = live_lag(query.end_offsets, kafka.latest)
    connector = connector_probe(config) if check_connector else None
    return Sample(time.time(), job_samples, kafka, connector, checkpoints.error)


def _interval(text: str) -> float:
    seconds = float(text)
    if seconds < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, got {text}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jobs.status", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default=None, help="pipeline config TOML (default conf/pipeline.toml)")
    parser.add_argument(
        "--interval", type=_interval, default=10.0, help="seconds between the two samples (0: one sample)"
    )
    parser.add_argument("--json", action="store_true", help="the report as JSON on stdout")
    parser.add_argument("--job", action="append", choices=JOBS, help="check only this job (repeatable)")
    parser.add_argument("--no-connector", action="store_true", help="do not check the Debezium connector")
    args = parser.parse_args(argv)
    config = load_config_or_report(args.config)
    if config is None:
        return 2
    jobs = [job for job in JOBS if job in (args.job or JOBS)]
    disabled = [f"monitoring.metrics_port_{job}" for job in jobs if not config.monitoring.metrics_port(job)]
    if disabled:
        print(f"{', '.join(disabled)}: 0 disables the job's metrics endpoint, which jobs.status asks", file=sys.stderr)
        return 2
    check_connector = cdc_to_cassandra.QUERY_NAME in jobs and not args.no_connector
    checkpoints = Checkpoints(config)
    try:
        first = take_sample(config, jobs, checkpoints, check_connector)
        if args.interval > 0:
            print(f"jobs.status: second sample in {args.interval:g} s (--interval 0: one sample)", file=sys.stderr)
            time.sleep(args.interval)
            second = take_sample(config, jobs, checkpoints, check_connector)
        else:
            first, second = None, first
    finally:
        checkpoints.close()
    report = assess(first, second)
    print(json.dumps(report_json(report), indent=2) if args.json else render(report))
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
