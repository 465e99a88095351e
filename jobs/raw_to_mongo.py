"""raw_to_mongo: Kafka ``aq.readings.raw`` → MongoDB ``airquality.readings_raw``, Delta bronze, quarantine.

Reads the raw topic with the canonical reading's explicit schema, sends every record that fails
a check (bad bytes, bad JSON, wrong types, missing fields, unknown schema version, absurd values,
future timestamps) to quarantine — a Delta table and the Kafka topic ``aq.readings.quarantine``,
with the reason, the original bytes and the Kafka coordinates — and writes the valid readings,
one per ``event_id``, to MongoDB (upsert by ``_id``), and every valid Kafka record once to the
Delta bronze table (an idempotent append per batch, with the record's Kafka coordinates and UTC
date; ``jobs.bronze.readings`` is its one-row-per-``event_id`` view). Replays change nothing;
a re-sent reading changes no MongoDB document and adds its record to bronze.

Usage:
    python -m jobs.submit raw_to_mongo [--config conf/pipeline.toml] [--available-now]
    spark-submit --properties-file conf/spark-defaults.conf --jars "$(ls jars/lib/spark/*.jar | paste -sd,)" \\
        jobs/raw_to_mongo.py --config conf/pipeline.toml [--available-now]

``--available-now`` processes what the topic holds and stops (backfills, tests, the demo);
without it the job runs on ``streaming.trigger_interval`` until stopped. The checkpoint lives
at ``<paths.checkpoint_root>/raw_to_mongo``: a restart resumes from the last committed batch.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file by spark-submit: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from jobs.checkpoint import QueryId
from jobs.config import PipelineConfig
from jobs.kafka_auth import spark_kafka_options
from jobs.mongo_auth import mongo_uri, tls_file
from jobs.retries import with_retries
from jobs.runner import (
    BACKGROUND_POOL,
    StepTimes,
    log_batch,
    persisted,
    read_kafka_topic,
    run_job,
    start_foreach_batch,
)
from jobs.sinks import DeltaTxn, append_to_delta, produce_to_kafka, upsert_mongo
from jobs.transforms import raw_readings as T
from schemas.reading import READING_FIELDS, reading_spark_schema

QUERY_NAME = "raw_to_mongo"
BRONZE_QUERY_NAME = "raw_to_mongo_bronze"
QUERY_NAMES = (QUERY_NAME, BRONZE_QUERY_NAME)
log = logging.getLogger("aqstream.raw_to_mongo")

READING_SCHEMA = reading_spark_schema()
REQUIRED_FIELDS = [f.name for f in READING_FIELDS if f.required]
VALUE_RANGES = {f.name: f.valid_range for f in READING_FIELDS if f.valid_range is not None}


def read_raw_topic(spark: SparkSession, config: PipelineConfig) -> DataFrame:
    return read_kafka_topic(spark, config, QUERY_NAME, config.kafka.raw_topic, config.kafka.max_offsets_per_trigger)


def check_records(kafka_rows: DataFrame, config: PipelineConfig) -> DataFrame:
    """Kafka rows → rows with ``reading`` and ``quarantine_reason`` (pure; no I/O)."""
    parsed = T.parse_readings(T.decode_kafka_value(kafka_rows), READING_SCHEMA)
    return T.with_quarantine_reason(
        parsed,
        READING_SCHEMA,
        required_fields=REQUIRED_FIELDS,
        supported_schema_versions=config.streaming.accepted_schema_versions,
        value_ranges=VALUE_RANGES,
        max_record_bytes=config.streaming.max_record_bytes,
        # the record's own Kafka timestamp, not the batch's clock: a replay classifies a record as
        # its first run did, and the plan holds no per-batch literal (a timestamp literal is inlined in
        # the generated code, so every batch compiled new classes the JIT never warmed; docs/streaming.md)
        now=F.col("timestamp"),
        future_tolerance=config.streaming.future_tolerance,
    )


class RawBatchWriter:
    """The ``foreachBatch`` function: split one micro-batch and write each part to its sinks.

    One pass: the MongoDB write is the batch's one Spark job on the usual path, and the batch's
    counts are observed during it (``DataFrame.observe``) instead of counted by jobs of their own.
    The quarantine is a Delta append made idempotent per batch (``txnAppId`` = the query's id,
    ``txnVersion`` = the batch id: a replayed batch is skipped by Delta without reading the table)
    plus the Kafka quarantine topic. Exceptions propagate (after the sinks' retries): the query
    fails and the batch is replayed on restart, which the idempotent sinks absorb.
    """

    def __init__(self, config: PipelineConfig):
        self.config = config
        self.query_id = QueryId(config.paths.checkpoint(QUERY_NAME))
        # read once, at start: a missing secret (or TLS trust store) fails the job before its first batch
        self.mongo_uri = mongo_uri(config, "raw_to_mongo")
        if config.mongo.tls:
            tls_file(config, "tls_truststore")

    def __call__(self, kafka_rows: DataFrame, batch_id: int) -> None:
        with persisted(check_records(kafka_rows, self.config)) as checked:
            self._write(checked, batch_id)

    def _write(self, checked: DataFrame, batch_id: int) -> None:
        cfg = self.config
        times = StepTimes()
        valid = F.col("quarantine_reason").isNull()
        arrived, written = Observation("raw_arrived"), Observation("raw_written")
        # the quarantine by reason code, counted in the same pass as the rest (a reason is "code: detail")
        by_reason = [
            F.count(F.when(F.col("quarantine_reason").startswith(f"{code}:"), 1)).alias(code) for code in T.REASON_CODES
        ]
        observed = checked.observe(
            arrived, F.count(F.lit(1)).alias("rows_in"), F.count(F.when(valid, 1)).alias("valid"), *by_reason
        )
        unique = T.drop_duplicate_readings(T.valid_readings(observed, READING_SCHEMA))
        documents = T.to_mongo_documents(unique).observe(written, F.count(F.lit(1)).alias("unique"))
        with times.step("mongo"):
            with_retries("mongo upsert", lambda: upsert_mongo(documents, cfg.mongo, self.mongo_uri))
        rows_in, n_valid = arrived.get["rows_in"], arrived.get["valid"]
        n_unique, n_quarantined = written.get["unique"], rows_in - n_valid
        reasons = {code: arrived.get[code] for code in T.REASON_CODES if arrived.get[code]}
        if n_quarantined:
            with times.step("quarantine"):
                quarantined = T.quarantine_records(checked, F.current_timestamp())
                with_retries(
                    "delta quarantine append",
                    lambda: append_to_delta(
                        quarantined,
                        str(cfg.paths.quarantine),
                        DeltaTxn(self.query_id.of(checked.sparkSession), batch_id),
                    ),
                )
                with_retries(
                    "kafka quarantine",
                    lambda: produce_to_kafka(
                        T.to_quarantine_kafka_messages(quarantined),
                        spark_kafka_options(cfg, QUERY_NAME),
                        cfg.kafka.quarantine_topic,
                    ),
                )
        log.info(
            "batch %d: %d rows in, %d valid, %d quarantined, %d duplicates dropped, %d written in %s",
            batch_id,
            rows_in,
            n_valid,
            n_quarantined,
            n_valid - n_unique,
            n_unique,
            times,
        )
        log_batch(
            QUERY_NAME,
            batch_id,
            rows_in,
            times,
            valid=n_valid,
            quarantined=n_quarantined,
            written=n_unique,
            quarantine_reasons=reasons,
        )


class BronzeBatchWriter:
    """The ``foreachBatch`` function of the bronze query: every valid record of the micro-batch,
    appended once to the Delta bronze table (idempotent per batch, as the quarantine)."""

    def __init__(self, config: PipelineConfig):
        self.config = config
        self.query_id = QueryId(config.paths.checkpoint(BRONZE_QUERY_NAME))

    def __call__(self, kafka_rows: DataFrame, batch_id: int) -> None:
        times = StepTimes()
        # persisted: unpersisted, the optimizer inlines the reading's from_json into each of its ~30
        # field reads and the checks (114 parses of every record's JSON in the optimized plan), and a
        # 20,000-record batch took 11-14 s instead of 2-4 s (docs/streaming.md)
        txn = DeltaTxn(self.query_id.of(kafka_rows.sparkSession), batch_id)
        with persisted(check_records(kafka_rows, self.config)) as checked:
            rows = T.to_bronze_rows(checked, READING_SCHEMA)
            with times.step("bronze"):
                with_retries("delta bronze append", lambda: append_to_delta(rows, str(self.config.paths.bronze), txn))
        # no count here: a count would be a Spark job of its own, and an observation never completes
        # when Delta skips a replayed batch (no job runs)
        log.info("bronze batch %d: valid records appended in %s", batch_id, times)
        log_batch(BRONZE_QUERY_NAME, batch_id, None, times)


def start(spark: SparkSession, config: PipelineConfig, available_now: bool = False) -> list[StreamingQuery]:
    """The MongoDB query on the short trigger, the bronze query on its own (``bronze_trigger_interval``):
    a Delta commit costs more than a small batch may take, so bronze gathers several."""
    return [
        start_foreach_batch(read_raw_topic(spark, config), QUERY_NAME, RawBatchWriter(config), config, available_now),
        start_foreach_batch(
            read_raw_topic(spark, config),
            BRONZE_QUERY_NAME,
            BronzeBatchWriter(config),
            config,
            available_now,
            trigger_interval=config.streaming.bronze_trigger_interval,
            pool=BACKGROUND_POOL,
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    return run_job(QUERY_NAME, __doc__, start, argv)


if __name__ == "__main__":
    sys.exit(main())
