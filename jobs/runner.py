"""What every aqstream entry point does the same way: start a foreachBatch query, run a job's main.

A job module keeps its own source, transforms and batch writer; this module only wires them:
trigger (``--available-now`` or the configured interval), one checkpoint per query, logging, the
config error at start, and a query that is stopped on the way out.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from jobs.config import ConfigError, PipelineConfig, load_config
from jobs.session import build_spark

StartQuery = Callable[[SparkSession, PipelineConfig, bool], StreamingQuery]


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

    def __str__(self) -> str:
        parts = ", ".join(f"{name} {seconds:.1f}" for name, seconds in self.steps.items())
        return f"{time.perf_counter() - self.started:.1f} s ({parts})"


def start_foreach_batch(
    stream: DataFrame,
    name: str,
    write_batch: Callable[[DataFrame, int], None],
    config: PipelineConfig,
    available_now: bool,
) -> StreamingQuery:
    """Start ``stream`` → ``write_batch`` with its checkpoint at ``<checkpoint_root>/<name>``."""
    writer = (
        stream.writeStream.queryName(name)
        .foreachBatch(write_batch)
        .option("checkpointLocation", config.paths.checkpoint(name))
    )
    if available_now:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=config.streaming.trigger_interval)
    return writer.start()


def run_job(name: str, usage: str | None, start: StartQuery, argv: list[str] | None = None) -> int:
    """Parse ``--config``/``--available-now``, build the session, start the query, wait for it."""
    parser = argparse.ArgumentParser(prog=name, description=usage, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, help="pipeline config TOML (default conf/pipeline.toml)")
    parser.add_argument("--available-now", action="store_true", help="process what is in the topic, then stop")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    spark = build_spark(config, f"aqstream-{name}")
    query = start(spark, config, args.available_now)
    logging.getLogger(f"aqstream.{name}").info(
        "query %s started (id %s); Spark UI at %s", name, query.id, spark.sparkContext.uiWebUrl
    )
    try:
        query.awaitTermination()  # raises if a batch failed: the job exits non-zero, loudly
    finally:
        query.stop()
    return 0
