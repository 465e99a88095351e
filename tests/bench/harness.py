"""The benchmark's cases: each one a function that runs once and returns what it measured.

Every throughput case reads the same topic contents: the six UCI Beijing stations replayed once,
as fast as the real collector goes, into one raw topic (and the CDC topic the real Debezium
connector makes of the raw→Mongo job's writes). A Spark case runs in this process's SparkSession
with ``availableNow`` and the shipped source options (``maxOffsetsPerTrigger`` and the rest), so a
case and its ceiling differ only in what they write. The latency case runs both jobs as shipped
(``python -m jobs.submit``, default processing-time triggers) with Debezium in between.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cassandra.cluster import Cluster
from kafka import KafkaConsumer
from pymongo import MongoClient
from pyspark.sql import SparkSession

from jobs import cdc_to_cassandra, raw_to_mongo
from jobs.config import PipelineConfig, load_config
from jobs.report import topic_size
from jobs.setup import apply_cql, create_mongo_indexes, create_topics
from stack import connector
from stack.core import Stack
from tests.support.flow import debezium_connector, submit_job
from tests.support.pipeline import REPO_ROOT, isolated_config

BEIJING_GLOB = "PRSA_Data_*.csv"
BEIJING_STATIONS = 6  # one reading per station per hour of event time


@dataclass
class Run:
    """One run of one case."""

    records: int
    seconds: float
    heap_peak_bytes: int | None = None
    landed: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


def summarize(runs: list[Run]) -> dict[str, Any]:
    rates = [r.rate for r in runs]
    heaps = [r.heap_peak_bytes for r in runs if r.heap_peak_bytes is not None]
    return {
        "runs": len(runs),
        "records": runs[0].records if runs else 0,
        "records_per_s_median": statistics.median(rates) if rates else None,
        "records_per_s_min": min(rates) if rates else None,
        "records_per_s_max": max(rates) if rates else None,
        "seconds_median": statistics.median(r.seconds for r in runs) if runs else None,
        "driver_heap_peak_bytes": max(heaps) if heaps else None,
        "landed": [r.landed for r in runs],
    }


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil
    return ordered[int(rank) - 1]


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
    cdc_topic: str = ""
    cdc_records: int = 0
    mongo_documents: int = 0
    _configs: list[PipelineConfig] = field(default_factory=list)

    @property
    def mongo_uri(self) -> str:
        return f"mongodb://{self.stack.cfg.host}:{self.stack.cfg.mongo_port}/?directConnection=true"

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
        self.raw_records = topic_size(self.stack.kafka_bootstrap, self.raw_topic)
        return {"topic": self.raw_topic, "records": self.raw_records, "collector_seconds": seconds}

    def cleanup(self) -> None:
        """Drop what the cases created in MongoDB and Cassandra (topics and Delta folders are scratch)."""
        client = MongoClient(self.mongo_uri)
        cluster = Cluster([self.stack.cfg.host], port=self.stack.cfg.cassandra_port)
        try:
            session = cluster.connect()
            for config in self._configs:
                client.drop_database(config.mongo.database)
                session.execute(f"DROP KEYSPACE IF EXISTS {config.cassandra.keyspace}", timeout=120)
        finally:
            client.close()
            cluster.shutdown()


def _await(query, timeout_s: float = 1800) -> None:
    """Wait for an availableNow query; a failed batch fails the case (never swallowed)."""
    try:
        finished = query.awaitTermination(timeout=timeout_s)
        if query.exception() is not None:
            raise RuntimeError(f"query {query.name} failed: {query.exception()}")
        if not finished:
            raise TimeoutError(f"query {query.name} still running after {timeout_s:.0f}s")
    finally:
        query.stop()


def timed_query(spark: SparkSession, start) -> tuple[float, int]:
    """Start a query (``start()`` returns it), wait for it; returns (seconds, driver heap peak)."""
    with HeapSampler(spark) as heap:
        started = time.perf_counter()
        _await(start())
        seconds = time.perf_counter() - started
    return seconds, heap.peak


def noop_query(stream, checkpoint: str):
    return stream.writeStream.format("noop").option("checkpointLocation", checkpoint).trigger(availableNow=True).start()


# --- case 1: the raw topic's ceiling --------------------------------------------------------


def raw_ceiling(bench: Bench, run: int) -> Run:
    """Kafka → the job's own decode + from_json + checks with the explicit schema → ``noop``."""
    config, _ = bench.config(f"raw-ceiling-{run}")
    parsed = raw_to_mongo.check_records(raw_to_mongo.read_raw_topic(bench.spark, config), config)
    seconds, heap = timed_query(bench.spark, lambda: noop_query(parsed, config.paths.checkpoint("ceiling")))
    return Run(bench.raw_records, seconds, heap)


# --- case 2: raw→Mongo as shipped -----------------------------------------------------------


def raw_to_mongo_job(bench: Bench, run: int) -> tuple[Run, PipelineConfig]:
    config, _ = bench.config(f"raw-to-mongo-{run}")
    create_mongo_indexes(config)
    seconds, heap = timed_query(bench.spark, lambda: raw_to_mongo.start(bench.spark, config, available_now=True))
    landed = {
        "mongo_documents": _mongo_count(config),
        "bronze_rows": bench.spark.read.format("delta").load(str(config.paths.bronze)).count(),
        "quarantine_rows": _delta_count(bench.spark, str(config.paths.quarantine)),
    }
    return Run(bench.raw_records, seconds, heap, landed), config


def _mongo_count(config: PipelineConfig) -> int:
    client = MongoClient(config.mongo.uri)
    try:
        return client[config.mongo.database][config.mongo.collection].count_documents({})
    finally:
        client.close()


def _delta_count(spark: SparkSession, path: str) -> int:
    return spark.read.format("delta").load(path).count() if Path(path).exists() else 0


# --- case 3: the seeds' design --------------------------------------------------------------


def seeds_consumer(bench: Bench, run: int, limit: int | None) -> Run:
    """A plain kafka-python consumer, ``insert_one`` per message (seeds 000 and 002), same topic and MongoDB."""
    config, _ = bench.config(f"seeds-{run}")
    records = min(limit or bench.raw_records, bench.raw_records)
    client = MongoClient(config.mongo.uri)
    collection = client[config.mongo.database][config.mongo.collection]
    consumer = KafkaConsumer(
        bench.raw_topic,
        bootstrap_servers=bench.stack.kafka_bootstrap,
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


# --- Debezium between the cases -------------------------------------------------------------


def capture_with_debezium(bench: Bench, written: PipelineConfig, timeout_s: float = 1200) -> dict[str, Any]:
    """The real Debezium connector over case 2's collection: its snapshot becomes the CDC topic."""
    prefix = f"b{bench.tag}"
    definition = debezium_connector(bench.stack, written, prefix)
    bench.mongo_documents = _mongo_count(written)
    started = time.perf_counter()
    connector.register(bench.stack.connect_url, definition)
    try:
        connector.wait_running(bench.stack.connect_url, definition["name"])
        bench.cdc_topic = f"{prefix}.{written.mongo.database}.{written.mongo.collection}"
        deadline = time.monotonic() + timeout_s
        while (size := topic_size(bench.stack.kafka_bootstrap, bench.cdc_topic)) < bench.mongo_documents:
            if time.monotonic() > deadline:
                raise TimeoutError(f"Debezium emitted {size} of {bench.mongo_documents} events in {timeout_s:.0f}s")
            time.sleep(1)
        seconds = time.perf_counter() - started
    finally:
        connector.delete(bench.stack.connect_url, definition["name"])
    bench.cdc_records = topic_size(bench.stack.kafka_bootstrap, bench.cdc_topic)
    return {
        "topic": bench.cdc_topic,
        "records": bench.cdc_records,
        "debezium_seconds": seconds,
        "database": written.mongo.database,
        "collection": written.mongo.collection,
    }


# --- case 4: CDC→Cassandra and its ceiling --------------------------------------------------


def cdc_ceiling(bench: Bench, run: int) -> Run:
    """The CDC topic → the job's envelope parse → ``noop``."""
    config, _ = bench.config(f"cdc-ceiling-{run}")
    changes = cdc_to_cassandra.decode(cdc_to_cassandra.read_cdc_topic(bench.spark, config), config)
    seconds, heap = timed_query(bench.spark, lambda: noop_query(changes, config.paths.checkpoint("ceiling")))
    return Run(bench.cdc_records, seconds, heap)


def cdc_to_cassandra_job(bench: Bench, run: int) -> Run:
    config, _ = bench.config(f"cdc-to-cassandra-{run}")
    apply_cql(config)
    seconds, heap = timed_query(bench.spark, lambda: cdc_to_cassandra.start(bench.spark, config, available_now=True))
    cassandra = config.cassandra
    landed = {
        "cassandra_readings": _cassandra_count(bench.spark, config, cassandra.readings_table),
        "cassandra_aggregates": _cassandra_count(bench.spark, config, cassandra.aggregates_table),
    }
    return Run(bench.cdc_records, seconds, heap, landed)


def _cassandra_count(spark: SparkSession, config: PipelineConfig, table: str) -> int:
    return (
        spark.read.format("org.apache.spark.sql.cassandra")
        .options(keyspace=config.cassandra.keyspace, table=table)
        .load()
        .count()
    )


# --- case 5: end-to-end latency -------------------------------------------------------------


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
    cluster = Cluster([config.cassandra.host], port=config.cassandra.port)
    try:
        session = cluster.connect()
        table = f"{config.cassandra.keyspace}.{config.cassandra.readings_table}"
        rows = session.execute(f"SELECT event_id, sent_at, writetime(sent_at) AS written FROM {table}", timeout=120)
        return {r.event_id: (r.sent_at, r.written) for r in rows if r.sent_at is not None and r.written is not None}
    finally:
        cluster.shutdown()


def end_to_end_latency(bench: Bench, rate: float, seconds: float, warmup_timeout_s: float = 300) -> dict[str, Any]:
    """Both jobs as shipped (default triggers) with Debezium between; a steady trickle; send → Cassandra write."""
    prefix = f"l{bench.tag}"
    config, env = bench.config("latency", shared_topics=False)
    config, env = bench.config(
        "latency",
        shared_topics=False,
        **{**env, "AQSTREAM__KAFKA__CDC_TOPIC": f"{prefix}.{config.mongo.database}.{config.mongo.collection}"},
    )
    create_topics(config)  # as `python -m jobs.setup` does: the CDC job subscribes before Debezium's first event
    create_mongo_indexes(config)
    apply_cql(config)
    definition = debezium_connector(bench.stack, config, prefix)
    connector.register(bench.stack.connect_url, definition)
    logs = bench.work_dir / "latency-logs"
    logs.mkdir(parents=True, exist_ok=True)
    jobs = []
    try:
        connector.wait_running(bench.stack.connect_url, definition["name"])
        jobs = [submit_job(job, env, output=logs / f"{job}.log") for job in ("raw_to_mongo", "cdc_to_cassandra")]
        # warm-up: a few readings through the whole flow, so JVM start and first batches are not sampled
        bench.replay(config.kafka.raw_topic, ["--restamp"], BEIJING_STATIONS)
        deadline = time.monotonic() + warmup_timeout_s
        while len(_written_sent_at(config)) < BEIJING_STATIONS:
            failed = [p.args for p in jobs if p.poll() is not None]
            if failed or time.monotonic() > deadline:
                raise RuntimeError(f"the flow did not warm up (exited: {failed}); logs in {logs}")
            time.sleep(1)
        warmup = set(_written_sent_at(config))
        count = int(rate * seconds)
        speed = rate * 3600 / BEIJING_STATIONS  # hours of event time per second × 3600
        bench.replay(config.kafka.raw_topic, ["--restamp", "--speed", f"{speed:g}"], count)
        deadline = time.monotonic() + warmup_timeout_s
        while len(samples := [v for k, v in _written_sent_at(config).items() if k not in warmup]) < count:
            if time.monotonic() > deadline or any(p.poll() is not None for p in jobs):
                raise RuntimeError(f"{len(samples)} of {count} trickle readings reached Cassandra; logs in {logs}")
            time.sleep(2)
    finally:
        for process in jobs:
            _stop_job(process)
        connector.delete(bench.stack.connect_url, definition["name"])
    latencies = [written / 1000 / 1000 - sent / 1000 for sent, written in samples]
    return {
        "rate_per_s": rate,
        "seconds": seconds,
        "samples": len(latencies),
        "p50_s": percentile(latencies, 50),
        "p95_s": percentile(latencies, 95),
        "p99_s": percentile(latencies, 99),
        "max_s": max(latencies),
        "trigger_interval": config.streaming.trigger_interval,
    }
