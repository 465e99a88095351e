"""What every aqstream entry point does the same way: start a foreachBatch query, run a job's main.

A job module keeps its own source, transforms and batch writer; this module only wires them:
trigger (``--available-now`` or the configured interval), one checkpoint per query, logging, the
config error at start, and a query that is stopped on the way out.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from jobs import metrics, progress
from jobs.config import CassandraRole, PipelineConfig, interval_seconds, load_config_or_report
from jobs.group_offsets import committer_for
from jobs.kafka_auth import kafka_python_settings, spark_kafka_options
from jobs.session import build_spark

StartQueries = Callable[[SparkSession, PipelineConfig, bool], list[StreamingQuery]]


class StepTimes:
    """Wall time of each step of one micro-batch, for its log line (where a slow batch spends its time)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.steps: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        begun = time.perf_counter()
        try:
            yield
        finally:
            self.steps[name] = self.steps.get(name, 0.0) + time.perf_counter() - begun

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started

    def __str__(self) -> str:
        parts = ", ".join(f"{name} {seconds:.1f}" for name, seconds in self.steps.items())
        return f"{self.seconds:.1f} s ({parts})"


@contextmanager
def persisted(df: DataFrame) -> Iterator[DataFrame]:
    """``df`` cached for the block's several reads of it (a batch's writes and tallies), released after it,
    whatever its outcome: a failed batch must not leave its records on the executors' storage."""
    cached = df.persist()
    try:
        yield cached
    finally:
        cached.unpersist()


BATCH_LOG = logging.getLogger("aqstream.batches")
LATENCY_POOL, BACKGROUND_POOL = "latency", "background"


def log_batch(query: str, batch_id: int, rows: int | None, times: StepTimes, **counts: int | dict[str, int]) -> None:
    """One JSON line per micro-batch on ``aqstream.batches``: what the bench and monitoring read.

    The same figures go to :data:`jobs.progress.REGISTRY` (latest batch and totals per query), which
    the progress listener joins to Spark's progress and :mod:`jobs.metrics` exports."""
    seconds = round(times.seconds, 4)
    steps = {name: round(step_seconds, 4) for name, step_seconds in times.steps.items()}
    record = {"query": query, "batch_id": batch_id, "rows": rows, "seconds": seconds, "steps": steps, **counts}
    BATCH_LOG.info(json.dumps(record, sort_keys=True))
    progress.REGISTRY.record_batch(query, batch_id, rows, seconds, steps, counts)


def kafka_source_options(config: PipelineConfig, who: str, topic: str, max_offsets_per_trigger: int) -> dict[str, str]:
    """The Kafka source's options for one topic, read as principal ``who``: what both jobs' readers share."""
    kafka = config.kafka
    options = {
        **spark_kafka_options(config, who),
        "subscribe": topic,
        "startingOffsets": kafka.starting_offsets,
        "maxOffsetsPerTrigger": str(max_offsets_per_trigger),
        "failOnDataLoss": str(kafka.fail_on_data_loss).lower(),
    }
    if kafka.min_partitions is not None:
        options["minPartitions"] = str(kafka.min_partitions)
    return options


def read_kafka_topic(
    spark: SparkSession, config: PipelineConfig, who: str, topic: str, max_offsets_per_trigger: int
) -> DataFrame:
    options = kafka_source_options(config, who, topic, max_offsets_per_trigger)
    return spark.readStream.format("kafka").options(**options).load()


def start_foreach_batch(
    stream: DataFrame,
    name: str,
    write_batch: Callable[[DataFrame, int], None],
    config: PipelineConfig,
    available_now: bool,
    trigger_interval: str | None = None,
    pool: str = LATENCY_POOL,
) -> StreamingQuery:
    """Start ``stream`` → ``write_batch`` with its checkpoint at ``<checkpoint_root>/<name>``
    (trigger: ``availableNow``, else ``trigger_interval`` or ``streaming.trigger_interval``), its
    Spark jobs in the FAIR scheduler ``pool`` (``conf/fairscheduler.xml``)."""

    def in_pool(batch: DataFrame, batch_id: int) -> None:
        # the batch function's Spark calls run on the query's own JVM thread: its jobs go to the pool
        batch.sparkSession.sparkContext.setLocalProperty("spark.scheduler.pool", pool)
        write_batch(batch, batch_id)

    writer = (
        stream.writeStream.queryName(name)
        .foreachBatch(in_pool)
        .option("checkpointLocation", config.paths.checkpoint(name))
    )
    if available_now:
        writer = writer.trigger(availableNow=True)
        progress.REGISTRY.set_trigger(name, None)
    else:
        interval = trigger_interval or config.streaming.trigger_interval
        writer = writer.trigger(processingTime=interval)
        progress.REGISTRY.set_trigger(name, interval_seconds(interval))
    query = writer.start()
    _BATCH_WRITERS[query.id] = write_batch
    return query


# each running query's batch function, closed by await_all once the query has stopped: a writer that holds
# a connection (the CDC job's Cassandra session) shuts it down then, not at interpreter exit, where the
# driver's scheduler thread would outlive the thread pools it submits to
_BATCH_WRITERS: dict[str, Callable[[DataFrame, int], None]] = {}


def _close_writer(query: StreamingQuery) -> None:
    close = getattr(_BATCH_WRITERS.pop(query.id, None), "close", None)
    if close is not None:
        close()


def await_all(queries: list[StreamingQuery], timeout_s: float | None = None) -> None:
    """Wait until every query has terminated; the first that fails stops the others and is raised.

    A query that ends on its own (``availableNow``) is fine; one that dies takes the job down
    loudly, so a restart resumes every query from its checkpoint.
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    try:
        while any(q.isActive for q in queries):
            for query in queries:
                if query.exception() is not None:
                    raise query.exception()
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"queries still running after {timeout_s:.0f}s: {[q.name for q in queries]}")
            active = next(q for q in queries if q.isActive)
            active.awaitTermination(timeout=1)
        for query in queries:
            if query.exception() is not None:
                raise query.exception()
    finally:
        for query in queries:
            query.stop()
            _close_writer(query)


def run_job(
    name: str,
    usage: str | None,
    start: StartQueries,
    argv: list[str] | None = None,
    cassandra_role: CassandraRole | None = None,
) -> int:
    """Parse ``--config``/``--available-now``, build the session, start the query, wait for it.
    ``cassandra_role``: the role the job's Spark Cassandra Connector logs in as (None: it uses none)."""
    parser = argparse.ArgumentParser(prog=name, description=usage, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, help="pipeline config TOML (default conf/pipeline.toml)")
    parser.add_argument("--available-now", action="store_true", help="process what is in the topic, then stop")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    logging.getLogger("kafka").setLevel(logging.WARNING)  # kafka-python logs each connection at INFO
    config = load_config_or_report(args.config)
    if config is None:
        return 2
    spark = build_spark(
        config, f"aqstream-{name}", ui_port=config.monitoring.ui_port(name), cassandra_role=cassandra_role
    )
    log = logging.getLogger(f"aqstream.{name}")
    ui = spark.sparkContext.uiWebUrl
    log.info("Spark UI at %s (Spark's metrics: %s/metrics/prometheus)", ui, ui)
    monitoring = config.monitoring
    # each batch's end offsets to the consumer group <prefix><query>, for kafka-consumer-groups.sh
    group_offsets = committer_for(kafka_python_settings(config, name), monitoring)
    # one JSON line per progress/idle event on aqstream.progress
    progress.register(spark, group_offsets=group_offsets)
    server = metrics.serve(monitoring.metrics_host, monitoring.metrics_port(name))
    if server is not None:
        log.info("metrics at %s", server.url)
    queries: list[StreamingQuery] = []
    try:
        queries = start(spark, config, args.available_now)
        for query in queries:
            log.info("query %s running (id %s)", query.name, query.id)
        if group_offsets is not None:
            groups = ", ".join(monitoring.consumer_group(query.name) for query in queries)
            log.info("committed offsets reported to the consumer groups %s", groups)
        await_all(queries)  # raises if a batch failed: the job exits non-zero, loudly
    finally:
        if group_offsets is not None:
            # the listener may not get the last progress events before the process exits
            group_offsets.commit_last(queries)
            group_offsets.close()
        if server is not None:
            server.close()
    return 0
