"""The benchmark's cases: each one a function that runs once and returns what it measured.

Every throughput case reads the same topic contents: the six UCI Beijing stations replayed once,
as fast as the real collector goes, into one raw topic (and the CDC topic the real Debezium
connector makes of the raw→Mongo job's writes). A Spark case runs in this process's SparkSession
with ``availableNow`` and the shipped source options (``maxOffsetsPerTrigger`` and the rest), so a
case and its ceiling differ only in what they write. Beside each job stand the store's own rate
for the same records (pymongo bulk upserts; a plain Spark Cassandra Connector ``df.write``) and the
peer a user would deploy instead of Spark for raw → MongoDB (a Kafka Connect MongoDB sink). The
latency case runs both jobs as shipped (``python -m jobs.submit``, default processing-time
triggers) with Debezium in between and splits each reading's latency by hop; the small-batch case
runs each job in-process on batches of ~50 readings and reads their per-step times.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient
from pymongo import ReplaceOne
from pyspark import StorageLevel
from pyspark.errors import AnalysisException
from pyspark.sql import SparkSession

from jobs import cdc_to_cassandra, metrics, progress, raw_to_mongo
from jobs.config import PipelineConfig, load_config
from jobs.kafka_acls import SINK_DLQ_SUFFIX, apply_acls
from jobs.kafka_auth import kafka_python_settings
from jobs.metrics_endpoint import MetricsServer
from jobs.mongo_auth import mongo_client
from jobs.setup import apply_cql, create_mongo_indexes, create_topics
from jobs.topics import (
    cdc_document_id,
    cdc_envelope,
    latest_offsets,
    read_topic,
    topic_records,
    topic_size,
    wait_for_cdc,
)
from jobs.transforms.raw_readings import bronze_readings
from schemas.cassandra import AGGREGATE_BUCKETS_TABLE, buckets_newest_first
from schemas.reading import READING_FIELDS, reading_to_mongo_document
from stack import connector
from stack.core import Stack
from tests.support.cassandra import cassandra_session, stack_config
from tests.support.flow import debezium_connector, submit_job
from tests.support.pipeline import REPO_ROOT, isolated_config

BEIJING_GLOB = "PRSA_Data_*.csv"
BEIJING_STATIONS = 6  # one reading per station per hour of event time
BATCH_LOGGER = "aqstream.batches"  # the jobs' one JSON line per micro-batch
MONGO_SINK_FILE = REPO_ROOT / "conf" / "connect" / "mongodb-sink.json"
MONGO_BULK_BATCH = 512  # documents per pymongo bulk_write (the job's mongo.max_batch_size)
CASSANDRA_FORMAT = "org.apache.spark.sql.cassandra"
VALUE_RANGES = {f.name: f.valid_range for f in READING_FIELDS if f.valid_range is not None}


@dataclass
class Run:
    """One run of one case. ``batches``: per query, the first batch apart from the rest (batch_profile)."""

    records: int
    seconds: float
    heap_peak_bytes: int | None = None
    landed: dict[str, int] = field(default_factory=dict)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


def summarize(runs: list[Run], main_query: str | None = None) -> dict[str, Any]:
    rates = [r.rate for r in runs]
    heaps = [r.heap_peak_bytes for r in runs if r.heap_peak_bytes is not None]
    summary: dict[str, Any] = {
        "runs": len(runs),
        "records": runs[0].records if runs else 0,
        "records_per_s_median": statistics.median(rates) if rates else None,
        "records_per_s_min": min(rates) if rates else None,
        "records_per_s_max": max(rates) if rates else None,
        "seconds_median": statistics.median(r.seconds for r in runs) if runs else None,
        "driver_heap_peak_bytes": max(heaps) if heaps else None,
        "landed": [r.landed for r in runs],
    }
    if any(r.batches for r in runs):
        summary["batches"] = [r.batches for r in runs]
        mains = [_main_profile(r.batches, main_query) for r in runs if r.batches]
        firsts = [m["first_batch_seconds"] for m in mains]
        steady = [m["steady_records_per_s"] for m in mains if m["steady_records_per_s"] is not None]
        summary["first_batch_seconds_median"] = statistics.median(firsts)
        summary["first_batch_rows"] = mains[0]["first_batch_rows"]
        summary["steady_records_per_s_median"] = statistics.median(steady) if steady else None
    if any(r.details for r in runs):
        summary["details"] = [r.details for r in runs]
    return summary


def _main_profile(batches: dict[str, dict[str, Any]], main_query: str | None) -> dict[str, Any]:
    """The profile of the job's main query (its QUERY_NAME), else of the query that read the most rows."""
    if main_query in batches:
        return batches[main_query]
    return max(batches.values(), key=lambda p: p["rows"])


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil
    return ordered[int(rank) - 1]


def distribution(values: list[float]) -> dict[str, Any]:
    """p50/p95/p99/max of ``values`` (seconds), and how many there were."""
    if not values:
        return {"samples": 0, "p50_s": None, "p95_s": None, "p99_s": None, "max_s": None}
    return {
        "samples": len(values),
        "p50_s": percentile(values, 50),
        "p95_s": percentile(values, 95),
        "p99_s": percentile(values, 99),
        "max_s": max(values),
    }


# --- driver heap ---------------------------------------------------------------------------


class HeapSampler:
    """The driver JVM's used heap, sampled every ``interval_s`` while a case runs; ``peak`` is the largest."""

    def __init__(self, spark: SparkSession, interval_s: float = 0.25):
        self._memory = spark._jvm.java.lang.management.ManagementFactory.getMemoryMXBean()  # noqa: SLF001
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.peak = 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._memory.getHeapMemoryUsage().getUsed())
            self._stop.wait(self._interval_s)

    def __enter__(self) -> HeapSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()


def heap_max(spark: SparkSession) -> int:
    return spark._jvm.java.lang.Runtime.getRuntime().maxMemory()  # noqa: SLF001


def stack_rss(stack: Stack) -> dict[str, int]:
    return {s.name: s.rss_bytes for s in stack.status()}


# --- the jobs' batch log lines ---------------------------------------------------------------


class BatchLog(logging.Handler):
    """Collects the jobs' per-micro-batch JSON lines (logger ``aqstream.batches``) while a job runs in-process.

    A line: ``{"query": ..., "batch_id": ..., "rows": ..., "seconds": ..., "steps": {"step": seconds}}``.
    """

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.batches: list[dict[str, Any]] = []
        self.unparsed: list[str] = []
        self._logger = logging.getLogger(BATCH_LOGGER)
        self._level = logging.NOTSET

    def emit(self, record: logging.LogRecord) -> None:  # called on the py4j callback thread of foreachBatch
        message = record.getMessage()
        try:
            line = json.loads(message)
        except ValueError:
            self.unparsed.append(message[:200])
            return
        if isinstance(line, dict) and "seconds" in line:
            self.batches.append(line)
        else:
            self.unparsed.append(message[:200])

    def __enter__(self) -> BatchLog:
        self._level = self._logger.level
        if not self._logger.isEnabledFor(logging.INFO):
            self._logger.setLevel(logging.INFO)
        self._logger.addHandler(self)
        return self

    def __exit__(self, *exc_info) -> None:
        self._logger.removeHandler(self)
        self._logger.setLevel(self._level)


def batches_by_query(batches: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Batch log lines grouped by query, each group in batch order."""
    by_query: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for batch in batches:
        by_query[str(batch.get("query"))].append(batch)
    for lines in by_query.values():
        lines.sort(key=lambda b: b.get("batch_id", 0))
    return dict(by_query)


def batch_profile(batches: list[dict[str, Any]], source: str) -> dict[str, dict[str, Any]]:
    """Per query: the first batch apart (JVM warm-up, first plans, first connections) from the steady state.

    ``steady_records_per_s`` = rows of batches 2.. / their summed seconds. ``batches`` are batch log
    lines, or progress reports reshaped to them (``source`` says which).
    """
    profiles = {}
    for query, lines in batches_by_query(batches).items():
        first, rest = lines[0], lines[1:]
        rows = sum(b.get("rows") or 0 for b in rest)
        seconds = sum(b["seconds"] for b in rest)
        profiles[query] = {
            "source": source,
            "batches": len(lines),
            "rows": sum(b.get("rows") or 0 for b in lines),
            "first_batch_rows": first.get("rows"),
            "first_batch_seconds": first["seconds"],
            "steady_batches": len(rest),
            "steady_rows": rows,
            "steady_seconds": seconds,
            "steady_records_per_s": rows / seconds if rest and seconds > 0 else None,
        }
    return profiles


def progress_batches(progress: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Spark's progress reports as batch lines (rows = numInputRows, seconds = triggerExecution)."""
    return [
        {
            "query": name,
            "batch_id": p.get("batchId"),
            "rows": p.get("numInputRows", 0),
            "seconds": p.get("durationMs", {}).get("triggerExecution", 0) / 1000,
        }
        for name, reports in progress.items()
        for p in reports
        if p.get("numInputRows", 0) > 0
    ]


def job_batches(log: BatchLog, progress: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The batch log's profile; Spark's progress when the job logged no batch line."""
    if log.batches:
        return batch_profile(log.batches, "batch log")
    return batch_profile(progress_batches(progress), "progress")


# --- the bench's topics and stores ----------------------------------------------------------


@dataclass
class Bench:
    """What every case shares: the stack, a scratch folder, the raw topic and its size."""

    stack: Stack
    spark: SparkSession
    data_dir: Path
    work_dir: Path
    limit: int | None = None
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    raw_topic: str = ""
    raw_records: int = 0
    raw_valid: int | None = None  # distinct event_ids of the records raw_to_mongo accepts
    raw_distinct: int | None = None  # distinct event_ids of every record that parses (a sink writes them all)
    cdc_topic: str = ""
    cdc_records: int = 0
    mongo_documents: int = 0
    _configs: list[PipelineConfig] = field(default_factory=list)
    _connectors: list[str] = field(default_factory=list)

    def beijing_files(self) -> list[Path]:
        files = sorted((self.data_dir / "bench").glob(BEIJING_GLOB))
        if len(files) != BEIJING_STATIONS:
            raise FileNotFoundError(f"expected {BEIJING_STATIONS} Beijing CSVs in {self.data_dir / 'bench'}")
        return files

    def config(self, name: str, shared_topics: bool = True, **env: str) -> tuple[PipelineConfig, dict[str, str]]:
        """An isolated pipeline config (own database, keyspace, Delta paths, checkpoints).

        With ``shared_topics`` it reads the bench's raw and CDC topics; else topics of its own.
        """
        run_dir = self.work_dir / name
        run_dir.mkdir(parents=True, exist_ok=True)
        _, isolated_env = isolated_config(self.stack, run_dir, partitions=3)
        env = {**isolated_env, **env}
        if shared_topics and self.raw_topic:
            env["AQSTREAM__KAFKA__RAW_TOPIC"] = self.raw_topic
        if shared_topics and self.cdc_topic:
            env["AQSTREAM__KAFKA__CDC_TOPIC"] = self.cdc_topic
        config = load_config(environ=env)
        self._configs.append(config)
        return config, env

    def flow_config(self, name: str, prefix: str, **env: str) -> tuple[PipelineConfig, dict[str, str]]:
        """A config with topics of its own whose CDC topic is the one Debezium makes with ``prefix``."""
        config, first = self.config(name, shared_topics=False, **env)
        cdc_topic = f"{prefix}.{config.mongo.database}.{config.mongo.collection}"
        self._configs.pop()  # the same database and keyspace again, with the CDC topic set
        config, env = self.config(name, shared_topics=False, **{**first, "AQSTREAM__KAFKA__CDC_TOPIC": cdc_topic})
        create_topics(config)  # as `python -m jobs.setup` does: the CDC job subscribes before Debezium's first event
        apply_acls(config)  # and grants each principal its ACLs on these topics
        create_mongo_indexes(config)
        apply_cql(config)
        return config, env

    def replay(self, topic: str, extra: list[str], limit: int | None) -> float:
        """The real replay collector into ``topic``; returns its wall time."""
        command = [sys.executable, "-m", "collectors", "replay", "--dataset", "beijing", "--log-level", "WARNING"]
        command += ["--files", *map(str, self.beijing_files())]
        command += ["--bootstrap", self.stack.kafka_bootstrap, "--topic", topic]
        command += ["--spool-dir", str(self.work_dir / f"spool-{topic}")]
        if limit:
            command += ["--limit", str(limit)]
        started = time.perf_counter()
        subprocess.run([*command, *extra], check=True, cwd=REPO_ROOT, timeout=1800)
        return time.perf_counter() - started

    def prepare_raw_topic(self) -> dict[str, Any]:
        """Replay the Beijing data once into the raw topic every case reads."""
        config, _ = self.config("prepare")
        self.raw_topic = config.kafka.raw_topic
        seconds = self.replay(self.raw_topic, [], self.limit)
        self.raw_records = topic_size(self.stack.kafka_client("admin"), self.raw_topic)
        return {"topic": self.raw_topic, "records": self.raw_records, "collector_seconds": seconds}

    def raw_counts(self) -> tuple[int, int]:
        """(valid, distinct) event_ids of the raw topic (one scan, kept for the cases after it)."""
        if self.raw_valid is None or self.raw_distinct is None:
            for _ in scan_raw_topic(self):
                pass
        return self.raw_valid, self.raw_distinct

    def cleanup(self) -> None:
        """Drop what the cases created in MongoDB, Cassandra and Connect (topics and Delta folders are scratch)."""
        for name in self._connectors:
            try:
                connector.delete(self.stack.connect_url, name)
            except Exception as exc:  # noqa: BLE001 - cleanup goes on; the case already reported its own error
                print(f"cleanup: deleting connector {name} failed: {exc}", file=sys.stderr)
        client = self.stack.mongo_client()
        cluster, session = cassandra_session(stack_config(self.stack))
        try:
            for config in self._configs:
                client.drop_database(config.mongo.database)
                session.execute(f"DROP KEYSPACE IF EXISTS {config.cassandra.keyspace}", timeout=120)
        finally:
            client.close()
            cluster.shutdown()


@dataclass
class Timed:
    seconds: float
    heap_peak_bytes: int
    progress: dict[str, list[dict[str, Any]]]


def _as_queries(started) -> list:
    """``start()`` returns one StreamingQuery or a list of them (cdc_to_cassandra: readings and aggregates)."""
    return list(started) if isinstance(started, list | tuple) else [started]


def _await_all(queries: list, timeout_s: float = 3600) -> dict[str, list[dict[str, Any]]]:
    """Wait for availableNow queries to finish; any query's exception fails the case (never swallowed).

    Returns each query's progress reports (read before it is stopped).
    """
    deadline = time.monotonic() + timeout_s
    try:
        pending = list(queries)
        while pending:
            for query in list(pending):
                if query.exception() is not None:
                    raise RuntimeError(f"query {query.name} failed: {query.exception()}")
                if not query.isActive:
                    pending.remove(query)
            if pending:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"queries {[q.name for q in pending]} still running after {timeout_s:.0f}s")
                pending[0].awaitTermination(timeout=1)  # raises StreamingQueryException if it failed
        return {q.name or str(q.id): q.recentProgress for q in queries}
    finally:
        for query in queries:
            query.stop()


def timed_query(spark: SparkSession, start: Callable[[], Any]) -> Timed:
    """Start the queries (``start()`` returns one or a list; it may block in availableNow), wait for all.

    The time runs from the call of ``start()`` until the last query has finished.
    """
    with HeapSampler(spark) as heap:
        started = time.perf_counter()
        progress = _await_all(_as_queries(start()))
        seconds = time.perf_counter() - started
    return Timed(seconds, heap.peak, progress)


def noop_query(stream, checkpoint: str, name: str):
    return (
        stream.writeStream.format("noop")
        .queryName(name)
        .option("checkpointLocation", checkpoint)
        .trigger(availableNow=True)
        .start()
    )


# --- case 1: the raw topic's ceiling --------------------------------------------------------


def raw_ceiling(bench: Bench, run: int) -> Run:
    """Kafka → the job's own decode + from_json + checks with the explicit schema → ``noop``."""
    config, _ = bench.config(f"raw-ceiling-{run}")
    parsed = raw_to_mongo.check_records(raw_to_mongo.read_raw_topic(bench.spark, config), config)
    name = f"raw_ceiling_{run}"
    timed = timed_query(bench.spark, lambda: noop_query(parsed, config.paths.checkpoint("ceiling"), name))
    batches = batch_profile(progress_batches(timed.progress), "progress")
    return Run(bench.raw_records, timed.seconds, timed.heap_peak_bytes, batches=batches)


# --- the jobs' monitoring, on or off ------------------------------------------------------------

SCRAPE_INTERVAL_S = 5.0  # conf/prometheus/prometheus.yml's


@contextlib.contextmanager
def monitoring(spark: SparkSession, on: bool) -> Iterator[None]:
    """The monitoring ``jobs.runner.run_job`` adds to a job, for the cases that compare with and without
    it: the progress listener, a metrics endpoint, and a scrape of it every 5 s as the stack's Prometheus does."""
    if not on:
        yield
        return
    listener = progress.register(spark)
    server = MetricsServer("127.0.0.1", 0, metrics.collector_registry())
    stop = threading.Event()

    def scrape() -> None:
        while not stop.wait(SCRAPE_INTERVAL_S):
            with urllib.request.urlopen(server.url, timeout=5) as response:
                response.read()

    scraper = threading.Thread(target=scrape, name="bench-scraper", daemon=True)
    scraper.start()
    try:
        yield
    finally:
        stop.set()
        scraper.join(timeout=10)
        server.close()
        spark.streams.removeListener(listener)


# --- case 2: raw→Mongo as shipped -----------------------------------------------------------


def raw_to_mongo_job(bench: Bench, run: int, monitored: bool = False) -> tuple[Run, PipelineConfig]:
    config, _ = bench.config(f"raw-to-mongo-{'monitored-' if monitored else ''}{run}")
    create_mongo_indexes(config)
    with BatchLog() as log, monitoring(bench.spark, monitored):
        timed = timed_query(bench.spark, lambda: raw_to_mongo.start(bench.spark, config, available_now=True))
    landed = {
        "mongo_documents": _mongo_count(config),
        **_bronze_counts(bench.spark, str(config.paths.bronze)),
        "quarantine_rows": _delta_count(bench.spark, str(config.paths.quarantine)),
    }
    batches = job_batches(log, timed.progress)
    return Run(bench.raw_records, timed.seconds, timed.heap_peak_bytes, landed, batches), config


def _mongo_count(config: PipelineConfig, collection: str | None = None) -> int:
    client = mongo_client(config)
    try:
        return client[config.mongo.database][collection or config.mongo.collection].count_documents({})
    finally:
        client.close()


def _mongo_ids(config: PipelineConfig) -> list[str]:
    client = mongo_client(config)
    try:
        return [d["_id"] for d in client[config.mongo.database][config.mongo.collection].find({}, {"_id": 1})]
    finally:
        client.close()


def _bronze_counts(spark: SparkSession, path: str) -> dict[str, int]:
    """Bronze is an append: its records (one per valid Kafka record) and its one-row-per-reading view."""
    if not Path(path).exists():
        return {"bronze_records": 0, "bronze_rows": 0}
    bronze = spark.read.format("delta").load(path)
    return {"bronze_records": bronze.count(), "bronze_rows": bronze_readings(bronze).count()}


def _delta_count(spark: SparkSession, path: str) -> int:
    return spark.read.format("delta").load(path).count() if Path(path).exists() else 0


# --- case 3: the seeds' design --------------------------------------------------------------


def seeds_consumer(bench: Bench, run: int, limit: int | None) -> Run:
    """A plain kafka-python consumer, ``insert_one`` per message (seeds 000 and 002), same topic and MongoDB."""
    config, _ = bench.config(f"seeds-{run}")
    records = min(limit or bench.raw_records, bench.raw_records)
    client = mongo_client(config)
    collection = client[config.mongo.database][config.mongo.collection]
    consumer = KafkaConsumer(
        bench.raw_topic,
        **bench.stack.kafka_client("admin"),
        group_id=f"seeds-{bench.tag}-{run}",
        auto_offset_reset="earliest",
        consumer_timeout_ms=30_000,
    )
    inserted = 0
    started = time.perf_counter()
    try:
        for message in consumer:
            collection.insert_one(json.loads(message.value))
            inserted += 1
            if inserted >= records:
                break
        seconds = time.perf_counter() - started
        landed = {"mongo_documents": collection.count_documents({})}
    finally:
        consumer.close()
        client.close()
    return Run(inserted, seconds, None, landed)


# --- case 4: the MongoDB server's own bulk-write rate ---------------------------------------


def valid_document(value: bytes | None) -> tuple[str | None, dict[str, Any] | None]:
    """(event_id, the document raw_to_mongo writes) of a raw record; a document only if the job accepts it.

    The job's checks that can fail on collector output: JSON and types (the reading model), required
    fields, and the plausibility ranges (READING_FIELDS' valid_range: such a reading is quarantined).
    An event_id without a document: the record parses but the job quarantines it.
    """
    try:
        message = json.loads(value)
        event_id = message.get("event_id")
    except (TypeError, ValueError, AttributeError):
        return None, None
    try:
        document = reading_to_mongo_document(message)
    except ValueError:  # pydantic's ValidationError is a ValueError
        return event_id, None
    for name, (low, high) in VALUE_RANGES.items():
        number = document.get(name)
        if number is not None and not low <= number <= high:  # NaN fails both comparisons
            return event_id, None
    return event_id, document


def scan_raw_topic(bench: Bench, chunk: int = 40 * MONGO_BULK_BATCH) -> Iterator[list[dict[str, Any]]]:
    """The raw topic's valid documents, ``chunk`` at a time (memory stays flat over 210k readings).

    Sets ``bench.raw_valid`` and ``bench.raw_distinct`` once the scan is complete.
    """
    valid: set[str] = set()
    distinct: set[str] = set()
    documents: list[dict[str, Any]] = []
    for record in topic_records(bench.stack.kafka_client("admin"), bench.raw_topic, max_poll_records=5000):
        event_id, document = valid_document(record.value)
        if event_id is not None:
            distinct.add(event_id)
        if document is not None:
            valid.add(event_id)
            documents.append(document)
        if len(documents) >= chunk:
            yield documents
            documents = []
    if documents:
        yield documents
    bench.raw_valid, bench.raw_distinct = len(valid), len(distinct)


def mongo_bulk_ceiling(bench: Bench, run: int) -> Run:
    """pymongo unordered bulk ``ReplaceOne`` upserts of the job's documents, 512 per call, into a fresh collection.

    The documents are built from the raw topic before any timing; only the ``bulk_write`` calls are timed.
    """
    config, _ = bench.config(f"mongo-bulk-{run}")
    create_mongo_indexes(config)  # the job's collection has the same index
    client = mongo_client(config)
    collection = client[config.mongo.database][config.mongo.collection]
    written, seconds, calls = 0, 0.0, 0
    try:
        for documents in scan_raw_topic(bench):
            batches = [
                [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in documents[i : i + MONGO_BULK_BATCH]]
                for i in range(0, len(documents), MONGO_BULK_BATCH)
            ]
            for operations in batches:
                started = time.perf_counter()
                collection.bulk_write(operations, ordered=False)
                seconds += time.perf_counter() - started
                written += len(operations)
                calls += 1
        landed = {"mongo_documents": collection.count_documents({})}
    finally:
        client.close()
    details = {"bulk_writes": calls, "batch_size": MONGO_BULK_BATCH, "raw_valid": bench.raw_valid}
    return Run(written, seconds, None, landed, details=details)


# --- case 5: the peer, a Kafka Connect MongoDB sink -----------------------------------------


def mongo_sink_connector(stack: Stack, topic: str, database: str, collection: str, name: str, dlq: str) -> dict:
    """The committed sink definition (conf/connect/mongodb-sink.json) writing ``topic`` into ``database.collection``."""
    return connector.load_connector(
        MONGO_SINK_FILE,
        overrides={
            "name": name,
            "topics": topic,
            "mongodb.connection.string": stack.mongo_uri,
            "sink.database": database,
            "collection.name.format": collection,
            "errors.deadletterqueue.topic.name": dlq,
        },
    )


def _group_caught_up(admin: KafkaAdminClient, group: str, end: dict[TopicPartition, int]) -> bool:
    committed = admin.list_consumer_group_offsets(group)
    return all(tp in committed and committed[tp].offset >= offset for tp, offset in end.items())


def _dead_letters(client: dict, topic: str, skip: int = 0) -> tuple[int, str | None]:
    """Records in the sink's dead-letter topic after its first ``skip`` and the first one's exception message
    (Connect's error headers)."""
    records = read_topic(client, topic)[skip:]
    for record in records[:1]:
        headers = dict(record.headers or [])
        message = headers.get("__connect.errors.exception.message") or headers.get(
            "__connect.errors.exception.class.name"
        )
        return len(records), message.decode(errors="replace") if message else None
    return len(records), None


def mongo_sink_peer(bench: Bench, run: int, poll_s: float = 0.5, stall_s: float = 30, timeout_s: float = 1800) -> Run:
    """Kafka Connect's MongoDB sink (Debezium's) writing the raw topic into a fresh collection of the same server.

    Timed from registration until the collection holds as many documents as the raw topic has valid
    records (the sink has no checks: it also writes the readings the job quarantines, so it goes on
    to the raw topic's distinct event_ids). It ends there, when its consumer group has committed the
    topic's end and the count stands still, when the count stops growing for ``stall_s``, or when
    its task fails (the REST status's trace is reported). Records it could not write go to a
    dead-letter topic, counted, with the first one's error message.
    """
    config, _ = bench.config(f"sink-peer-{run}")
    create_mongo_indexes(config)  # the job's collection has the same index
    valid, distinct = bench.raw_counts()
    name = f"aqstream-sink-{bench.tag}-{run}"
    collection_name = "readings_sink"
    # the dead-letter topic the connect principal may create and write (jobs/kafka_acls.py); a run counts
    # only what it adds to it
    dlq = bench.raw_topic + SINK_DLQ_SUFFIX
    dead_before = sum(latest_offsets(bench.stack.kafka_client("admin"), [dlq]).get(dlq, {}).values())
    definition = mongo_sink_connector(bench.stack, bench.raw_topic, config.mongo.database, collection_name, name, dlq)
    client = mongo_client(config)
    collection = client[config.mongo.database][collection_name]
    admin = KafkaAdminClient(**bench.stack.kafka_client("admin"))
    probe = KafkaConsumer(**bench.stack.kafka_client("admin"))
    partitions = [TopicPartition(bench.raw_topic, p) for p in probe.partitions_for_topic(bench.raw_topic)]
    end = probe.end_offsets(partitions)
    probe.close()
    error, stopped = None, "timeout"
    count, reached_valid, last_growth = 0, None, None
    started = time.perf_counter()
    connector.register(bench.stack.connect_url, definition)
    bench._connectors.append(name)  # noqa: SLF001 - deleted by cleanup if this case fails half-way
    try:
        while True:
            status = connector.status(bench.stack.connect_url, name) or {}
            caught_up = _group_caught_up(admin, f"connect-{name}", end)  # before the count: put, then commit
            now_count = collection.estimated_document_count()
            now = time.perf_counter()
            if now_count > count:
                count, last_growth = now_count, now
            if reached_valid is None and count >= valid:
                reached_valid = now
            if count >= distinct:
                stopped = "all records written"
                break
            failed = [t for t in status.get("tasks", []) if t.get("state") == "FAILED"]
            if failed or status.get("connector", {}).get("state") == "FAILED":
                error = (failed[0] if failed else status["connector"]).get("trace", "")[:3000]
                stopped = "task FAILED"
                break
            if caught_up:
                stopped = "its consumer group committed the whole topic"
                break
            if now - (last_growth or started) > stall_s:
                stopped = f"no new document for {stall_s:.0f} s"
                break
            if now - started > timeout_s:
                break
            time.sleep(poll_s)
    finally:
        connector.delete(bench.stack.connect_url, name)
        bench._connectors.remove(name)  # noqa: SLF001
        admin.close()
    count = collection.estimated_document_count()
    sample = collection.find_one({}, {"_id": 1, "ts": 1})
    client.close()
    dead, dead_error = _dead_letters(bench.stack.kafka_client("admin"), dlq, skip=dead_before)
    if count == 0 and error is None:
        error = dead_error or f"the sink wrote nothing ({stopped}); see the Connect worker's log"
    end_time = reached_valid or last_growth or time.perf_counter()
    details = {
        "complete": reached_valid is not None,
        "stopped": stopped,
        "documents": count,
        "raw_valid": valid,
        "raw_distinct": distinct,
        "not_written": max(0, distinct - count),
        "dead_letter_records": dead,
        "dead_letter_error": dead_error,
        "error": error,
        "seconds_to_last_document": (last_growth - started) if last_growth else None,
        "document_shape": {k: type(v).__name__ for k, v in (sample or {}).items()},
        "tasks_max": definition["config"].get("tasks.max"),
    }
    records = valid if reached_valid is not None else count
    return Run(records, end_time - started, None, {"mongo_documents": count}, details=details)


# --- Debezium between the cases -------------------------------------------------------------


def snapshot_to_topic(bench: Bench, written: PipelineConfig, prefix: str, timeout_s: float = 1800) -> dict[str, Any]:
    """The real Debezium connector over ``written``'s collection until the CDC topic holds an event per document."""
    definition = debezium_connector(bench.stack, written, prefix)
    document_ids = _mongo_ids(written)
    topic = f"{prefix}.{written.mongo.database}.{written.mongo.collection}"
    started = time.perf_counter()
    connector.register(bench.stack.connect_url, definition)
    try:
        connector.wait_running(bench.stack.connect_url, definition["name"])
        wait_for_cdc(bench.stack.kafka_client("admin"), topic, document_ids, timeout_s=timeout_s)
        seconds = time.perf_counter() - started
    finally:
        connector.delete(bench.stack.connect_url, definition["name"])
    return {
        "topic": topic,
        "documents": len(document_ids),
        "records": topic_size(bench.stack.kafka_client("admin"), topic),
        "debezium_seconds": seconds,
        "database": written.mongo.database,
        "collection": written.mongo.collection,
    }


def capture_with_debezium(bench: Bench, written: PipelineConfig, timeout_s: float = 1800) -> dict[str, Any]:
    """Debezium's snapshot of case 2's collection becomes the CDC topic of the CDC cases."""
    captured = snapshot_to_topic(bench, written, f"b{bench.tag}", timeout_s)
    bench.mongo_documents = captured["documents"]
    bench.cdc_topic = captured["topic"]
    bench.cdc_records = captured["records"]
    return captured


# --- case 6: CDC→Cassandra, its ceiling, and Cassandra's own write rate ----------------------


def cdc_ceiling(bench: Bench, run: int) -> Run:
    """The CDC topic → the job's envelope parse → ``noop``."""
    config, _ = bench.config(f"cdc-ceiling-{run}")
    changes = cdc_to_cassandra.decode(cdc_to_cassandra.read_cdc_topic(bench.spark, config), config)
    name = f"cdc_ceiling_{run}"
    timed = timed_query(bench.spark, lambda: noop_query(changes, config.paths.checkpoint("ceiling"), name))
    batches = batch_profile(progress_batches(timed.progress), "progress")
    return Run(bench.cdc_records, timed.seconds, timed.heap_peak_bytes, batches=batches)


def cdc_to_cassandra_job(bench: Bench, run: int, monitored: bool = False) -> tuple[Run, PipelineConfig]:
    config, _ = bench.config(f"cdc-to-cassandra-{'monitored-' if monitored else ''}{run}")
    apply_cql(config)
    _wait_for_tables(bench.spark, config)
    with BatchLog() as log, monitoring(bench.spark, monitored):
        timed = timed_query(bench.spark, lambda: cdc_to_cassandra.start(bench.spark, config, available_now=True))
    cassandra = config.cassandra
    landed = {
        "cassandra_readings": _cassandra_count(bench.spark, config, cassandra.readings_table),
        "cassandra_aggregates": _cassandra_count(bench.spark, config, cassandra.aggregates_table),
    }
    batches = job_batches(log, timed.progress)
    return Run(bench.cdc_records, timed.seconds, timed.heap_peak_bytes, landed, batches), config


def cassandra_plain_write(bench: Bench, run: int, source: PipelineConfig) -> Run:
    """A plain Spark Cassandra Connector ``df.write`` (append) of the reading rows into a fresh keyspace.

    The rows are the readings table ``source``'s cdc_to_cassandra run wrote, read back and cached
    (and counted) before the timing; only the write is timed.
    """
    config, _ = bench.config(f"cassandra-plain-{run}")
    apply_cql(config)
    rows = (
        bench.spark.read.format(CASSANDRA_FORMAT)
        .options(keyspace=source.cassandra.keyspace, table=source.cassandra.readings_table)
        .load()
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    try:
        records = rows.count()
        _wait_for_table(bench.spark, config.cassandra.keyspace, config.cassandra.readings_table)
        with HeapSampler(bench.spark) as heap:
            started = time.perf_counter()
            (
                rows.write.format(CASSANDRA_FORMAT)
                .mode("append")
                .options(keyspace=config.cassandra.keyspace, table=config.cassandra.readings_table)
                .save()
            )
            seconds = time.perf_counter() - started
    finally:
        rows.unpersist()
    landed = {"cassandra_readings": _cassandra_count(bench.spark, config, config.cassandra.readings_table)}
    return Run(records, seconds, heap.peak, landed)


def _wait_for_tables(spark: SparkSession, config: PipelineConfig) -> None:
    for table in (config.cassandra.readings_table, config.cassandra.aggregates_table, AGGREGATE_BUCKETS_TABLE):
        _wait_for_table(spark, config.cassandra.keyspace, table)


def _wait_for_table(spark: SparkSession, keyspace: str, table: str, timeout_s: float = 60) -> None:
    """The connector's long-lived session learns of a keyspace created a moment ago asynchronously
    (schema events): wait, untimed, until it resolves the table."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            spark.read.format(CASSANDRA_FORMAT).options(keyspace=keyspace, table=table).load().schema  # noqa: B018
            return
        except AnalysisException as exc:
            if "Couldn't find" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(1)


def _cassandra_count(spark: SparkSession, config: PipelineConfig, table: str) -> int:
    return spark.read.format(CASSANDRA_FORMAT).options(keyspace=config.cassandra.keyspace, table=table).load().count()


# --- case 7: the cost of a small batch --------------------------------------------------------


def small_batch_profile(batches: list[dict[str, Any]], skip: int) -> dict[str, dict[str, Any]]:
    """Per query, over its batches after the first ``skip``: median rows, seconds and seconds per step."""
    profiles = {}
    for query, lines in batches_by_query(batches).items():
        measured = lines[skip:]
        steps: dict[str, list[float]] = defaultdict(list)
        for line in measured:
            for step, seconds in (line.get("steps") or {}).items():
                steps[step].append(seconds)
        profiles[query] = {
            "batches": len(lines),
            "measured_batches": len(measured),
            "median_rows": statistics.median(rows)
            if (rows := [b["rows"] for b in measured if b.get("rows") is not None])
            else None,
            "median_seconds": statistics.median(b["seconds"] for b in measured) if measured else None,
            "max_seconds": max(b["seconds"] for b in measured) if measured else None,
            # a step that ran in only some batches (quarantine): its median where it ran, and how often
            "median_step_seconds": {step: statistics.median(values) for step, values in steps.items()},
            "step_batches": {step: len(values) for step, values in steps.items()},
        }
    return profiles


def small_batches(bench: Bench, readings: int = 1000, per_trigger: int = 50, skip: int = 3) -> dict[str, Any]:
    """Each job in-process, ``availableNow``, ``maxOffsetsPerTrigger`` = ``per_trigger``, over the first ``readings``.

    raw_to_mongo reads a raw topic of its own; Debezium snapshots what it wrote into a CDC topic of
    its own; cdc_to_cassandra reads that. The per-batch figures come from the jobs' batch log lines.
    """
    prefix = f"s{bench.tag}"
    config, _ = bench.flow_config("small-batches", prefix, AQSTREAM__KAFKA__MAX_OFFSETS_PER_TRIGGER=str(per_trigger))
    bench.replay(config.kafka.raw_topic, [], readings)
    with BatchLog() as raw_log:
        raw = timed_query(bench.spark, lambda: raw_to_mongo.start(bench.spark, config, available_now=True))
    captured = snapshot_to_topic(bench, config, prefix)
    _wait_for_tables(bench.spark, config)
    with BatchLog() as cdc_log:
        cdc = timed_query(bench.spark, lambda: cdc_to_cassandra.start(bench.spark, config, available_now=True))
    result: dict[str, Any] = {"readings": readings, "max_offsets_per_trigger": per_trigger, "skipped_batches": skip}
    for job, log, timed in (("raw_to_mongo", raw_log, raw), ("cdc_to_cassandra", cdc_log, cdc)):
        source = "batch log" if log.batches else "progress (no batch log line)"
        lines = log.batches or progress_batches(timed.progress)
        result[job] = {
            "seconds": timed.seconds,
            "source": source,
            "queries": small_batch_profile(lines, skip),
            "driver_heap_peak_bytes": timed.heap_peak_bytes,
        }
    result["cdc_records"] = captured["records"]
    result["landed"] = {
        "mongo_documents": _mongo_count(config),
        "cassandra_readings": _cassandra_count(bench.spark, config, config.cassandra.readings_table),
    }
    return result


def small_batch_seconds(job: dict[str, Any], main_query: str) -> float | None:
    """One micro-batch's cost for a job: the median batch seconds of its main query (the readings' path:
    raw_to_mongo's MongoDB query, cdc_to_cassandra's readings query); its other queries are reported beside."""
    queries = job["queries"]
    profile = queries.get(main_query) or (next(iter(queries.values())) if len(queries) == 1 else None)
    return profile["median_seconds"] if profile else None


# --- case 8: end-to-end latency by hop, and aggregate freshness ------------------------------


def _stop_job(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def _written_sent_at(config: PipelineConfig) -> dict[str, tuple[int, int]]:
    """event_id → (sent_at ms, Cassandra write time µs) of every reading row."""
    cluster, session = cassandra_session(config)
    try:
        table = f"{config.cassandra.keyspace}.{config.cassandra.readings_table}"
        rows = session.execute(f"SELECT event_id, sent_at, writetime(sent_at) AS written FROM {table}", timeout=120)
        return {r.event_id: (r.sent_at, r.written) for r in rows if r.sent_at is not None and r.written is not None}
    finally:
        cluster.shutdown()


def first_cdc_events(client: dict, topic: str) -> dict[str, dict[str, Any]]:
    """event_id → the first change event of it in the CDC topic: its Kafka timestamp and the MongoDB write time.

    The write time is ``payload.source.wallTime`` (ms, the change event's wallTime) when the event
    carries it, else ``payload.source.ts_ms`` (the oplog clusterTime: whole seconds).
    """
    first: dict[str, dict[str, Any]] = {}
    for record in topic_records(client, topic):
        event_id, envelope = cdc_document_id(record.key), cdc_envelope(record.value)
        if event_id is None or envelope is None:  # a tombstone, or no document key
            continue
        if envelope.get("op") not in ("c", "r", "u"):
            continue
        source = envelope.get("source") or {}
        known = first.get(event_id)
        if known is not None and known["kafka_ms"] <= record.timestamp:
            continue
        wall = source.get("wallTime")
        first[event_id] = {
            "kafka_ms": record.timestamp,
            "mongo_ms": wall if wall else source.get("ts_ms"),
            "mongo_clock": "wallTime" if wall else "ts_ms",
        }
    return first


def _hour(ts: str) -> datetime:
    """The 1 h window start of a reading's ISO ``ts``, as the naive UTC datetime the Cassandra driver returns."""
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).replace(tzinfo=None, minute=0, second=0, microsecond=0)


class FreshnessWatcher(threading.Thread):
    """While the trickle runs: each reading sent (read from the raw topic), and when its 1 h aggregate row appears.

    Every ``interval_s`` it reads the raw topic's new records (from the end as it was at start), then
    asks Cassandra, per station with pending windows, for the 1 h rows between the oldest and newest
    pending window start. A row's first-seen time is the start of the poll that saw it. In this data
    each station has one reading per hour, so a reading's 1 h row appears with that reading.
    """

    def __init__(self, config: PipelineConfig, interval_s: float = 0.5):
        super().__init__(daemon=True)
        self.interval_s = interval_s
        self._stop_event = threading.Event()
        self._consumer = KafkaConsumer(**kafka_python_settings(config, "admin"), enable_auto_commit=False)
        partitions = [
            TopicPartition(config.kafka.raw_topic, p)
            for p in sorted(self._consumer.partitions_for_topic(config.kafka.raw_topic))
        ]
        self._consumer.assign(partitions)
        self._consumer.seek_to_end(*partitions)
        for tp in partitions:
            self._consumer.position(tp)  # resolve the end now, before the trickle starts
        self._cluster, self._session = cassandra_session(config)
        table = f"{config.cassandra.keyspace}.{config.cassandra.aggregates_table}"
        self._query = self._session.prepare(
            f"SELECT window_start FROM {table} "
            "WHERE station_id = ? AND window_size = '1h' AND bucket = ? AND window_start >= ? AND window_start <= ?"
        )
        self.pending: dict[str, dict[datetime, list[tuple[str, int]]]] = defaultdict(dict)
        self.freshness_ms: dict[str, int] = {}  # event_id → first seen − sent_at
        self.polls: list[float] = []
        self.poll_seconds: list[float] = []
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self._stop_event.is_set():
                begun = time.time()
                self.poll(begun)
                self._stop_event.wait(max(0.0, self.interval_s - (time.time() - begun)))
        except BaseException as exc:  # noqa: BLE001 - reported by stop()
            self.error = exc

    def poll(self, begun: float) -> None:
        for records in self._consumer.poll(timeout_ms=0, max_records=100_000).values():
            for record in records:
                reading = json.loads(record.value)
                window = self.pending[reading["station_id"]].setdefault(_hour(reading["ts"]), [])
                window.append((reading["event_id"], reading["sent_at"]))
                self.sent += 1
        seen_at = int(begun * 1000)
        for station, windows in self.pending.items():
            if not windows:
                continue
            first, last = min(windows), max(windows)
            for bucket in buckets_newest_first("1h", first, last + timedelta(hours=1)):  # one read per month
                rows = self._session.execute(self._query, (station, bucket, first, last), timeout=30)
                for row in rows:
                    for event_id, sent_at in windows.pop(row.window_start, []):
                        self.freshness_ms[event_id] = seen_at - sent_at
        self.polls.append(begun)
        self.poll_seconds.append(time.time() - begun)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=60)
        try:
            if self.error is None:
                self.poll(time.time())  # a last look
        finally:
            self._consumer.close()
            self._cluster.shutdown()
        if self.error is not None:
            raise RuntimeError(f"aggregate freshness poller failed: {self.error!r}") from self.error

    def result(self) -> dict[str, Any]:
        gaps = [b - a for a, b in zip(self.polls, self.polls[1:], strict=False)]
        values = [ms / 1000 for ms in self.freshness_ms.values()]
        return {
            **distribution(values),
            "readings_sent": self.sent,
            "never_seen": sum(len(w) for ws in self.pending.values() for w in ws.values()),
            "poll_interval_target_s": self.interval_s,
            "poll_interval_median_s": statistics.median(gaps) if gaps else None,
            "poll_interval_max_s": max(gaps) if gaps else None,
            "poll_query_median_s": statistics.median(self.poll_seconds) if self.poll_seconds else None,
        }


def end_to_end_latency(
    bench: Bench, rate: float, seconds: float, drain_timeout_s: float = 300, poll_s: float = 0.5
) -> dict[str, Any]:
    """Both jobs as shipped (default triggers) with Debezium between; a steady trickle; each reading's latency
    split by hop (send → MongoDB write → CDC topic → Cassandra write) and its 1 h aggregate's freshness."""
    prefix = f"l{bench.tag}r{rate:g}".replace(".", "_")
    config, env = bench.flow_config(f"latency-{rate:g}", prefix)
    definition = debezium_connector(bench.stack, config, prefix)
    connector.register(bench.stack.connect_url, definition)
    logs = bench.work_dir / f"latency-{rate:g}-logs"
    logs.mkdir(parents=True, exist_ok=True)
    jobs: list[subprocess.Popen] = []
    watcher: FreshnessWatcher | None = None
    count = int(rate * seconds)
    try:
        connector.wait_running(bench.stack.connect_url, definition["name"])
        jobs = [submit_job(job, env, output=logs / f"{job}.log") for job in ("raw_to_mongo", "cdc_to_cassandra")]
        # warm-up: a few readings through the whole flow, so JVM start and first batches are not sampled;
        # their original 2013 times keep their aggregate windows apart from the restamped trickle's
        bench.replay(config.kafka.raw_topic, [], BEIJING_STATIONS)
        deadline = time.monotonic() + drain_timeout_s
        while len(_written_sent_at(config)) < BEIJING_STATIONS:
            failed = [p.args for p in jobs if p.poll() is not None]
            if failed or time.monotonic() > deadline:
                raise RuntimeError(f"the flow did not warm up (exited: {failed}); logs in {logs}")
            time.sleep(1)
        warmup = set(_written_sent_at(config))
        watcher = FreshnessWatcher(config, poll_s)
        watcher.start()
        speed = rate * 3600 / BEIJING_STATIONS  # hours of event time per second × 3600
        trickle_started = time.perf_counter()
        bench.replay(config.kafka.raw_topic, ["--restamp", "--speed", f"{speed:g}"], count)
        sent_seconds = time.perf_counter() - trickle_started
        deadline = time.monotonic() + drain_timeout_s
        # until every trickle reading is in the readings table and its 1 h aggregate row was seen
        while (
            len(samples := {k: v for k, v in _written_sent_at(config).items() if k not in warmup}) < count
            or len(watcher.freshness_ms) < count
        ):
            exited = [p.args for p in jobs if p.poll() is not None]
            if exited:
                raise RuntimeError(f"a job exited during the latency run: {exited}; logs in {logs}")
            if time.monotonic() > deadline:
                break  # reported as incomplete, with what did arrive
            time.sleep(2)
        drained_seconds = time.perf_counter() - trickle_started
    finally:
        if watcher is not None:
            watcher.stop()
        for process in jobs:
            _stop_job(process)
        connector.delete(bench.stack.connect_url, definition["name"])
    events = first_cdc_events(kafka_python_settings(config, "admin"), config.kafka.cdc_topic)
    hops: dict[str, list[float]] = {"send_to_mongo": [], "mongo_to_cdc": [], "cdc_to_cassandra": []}
    clocks: dict[str, int] = defaultdict(int)
    for event_id, (sent_ms, written_us) in samples.items():
        event = events.get(event_id)
        if event is None or event["mongo_ms"] is None:
            continue
        clocks[event["mongo_clock"]] += 1
        hops["send_to_mongo"].append((event["mongo_ms"] - sent_ms) / 1000)
        hops["mongo_to_cdc"].append((event["kafka_ms"] - event["mongo_ms"]) / 1000)
        hops["cdc_to_cassandra"].append((written_us / 1000 - event["kafka_ms"]) / 1000)
    total = [(written_us / 1000 - sent_ms) / 1000 for sent_ms, written_us in samples.values()]
    return {
        "rate_per_s": rate,
        "seconds": seconds,
        "readings": count,
        "complete": len(samples) >= count,
        "missing": max(0, count - len(samples)),
        "send_seconds": sent_seconds,
        "drained_seconds": drained_seconds,
        **distribution(total),
        "hops": {name: distribution(values) for name, values in hops.items()},
        "mongo_write_clock": dict(clocks),
        "mongo_write_resolution": "1 ms (source.wallTime)" if set(clocks) == {"wallTime"} else "1 s (source.ts_ms)",
        "freshness_1h": watcher.result() if watcher is not None else None,
        "trigger_interval": config.streaming.trigger_interval,
        "aggregates_trigger_interval": config.cdc.aggregates_trigger_interval,
    }
