"""raw_to_mongo: Kafka ``aq.readings.raw`` → MongoDB ``airquality.readings_raw``, Delta bronze, quarantine.

Reads the raw topic with the canonical reading's explicit schema, sends every record that fails
a check (bad bytes, bad JSON, wrong types, missing fields, unknown schema version, absurd values,
future timestamps) to quarantine — a Delta table and the Kafka topic ``aq.readings.quarantine``,
with the reason, the original bytes and the Kafka coordinates — and writes the valid readings,
one per ``event_id``, to MongoDB (upsert by ``_id``) and to the Delta bronze table (MERGE by
``event_id``, with the UTC date for file skipping). Replays and re-sent readings change nothing.

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

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from jobs.config import PipelineConfig
from jobs.runner import StepTimes, run_job, start_foreach_batch
from jobs.sinks import merge_into_delta, produce_to_kafka, upsert_mongo, with_retries
from jobs.transforms import raw_readings as T
from schemas.reading import READING_FIELDS, SCHEMA_VERSION, reading_spark_schema

QUERY_NAME = "raw_to_mongo"
log = logging.getLogger("aqstream.raw_to_mongo")

READING_SCHEMA = reading_spark_schema()
REQUIRED_FIELDS = [f.name for f in READING_FIELDS if f.required]
VALUE_RANGES = {f.name: f.valid_range for f in READING_FIELDS if f.valid_range is not None}


def read_raw_topic(spark: SparkSession, config: PipelineConfig) -> DataFrame:
    return (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", config.kafka.bootstrap_servers)
        .option("subscribe", config.kafka.raw_topic)
        .option("startingOffsets", config.kafka.starting_offsets)
        .option("maxOffsetsPerTrigger", config.kafka.max_offsets_per_trigger)
        .option("failOnDataLoss", str(config.kafka.fail_on_data_loss).lower())
        .load()
    )


def check_records(kafka_rows: DataFrame, config: PipelineConfig) -> DataFrame:
    """Kafka rows → rows with ``reading`` and ``quarantine_reason`` (pure; no I/O)."""
    parsed = T.parse_readings(T.decode_kafka_value(kafka_rows), READING_SCHEMA)
    return T.with_quarantine_reason(
        parsed,
        READING_SCHEMA,
        required_fields=REQUIRED_FIELDS,
        supported_schema_versions=[SCHEMA_VERSION],
        value_ranges=VALUE_RANGES,
        max_record_bytes=config.streaming.max_record_bytes,
        now=F.current_timestamp(),
        future_tolerance=config.streaming.future_tolerance,
    )


class RawBatchWriter:
    """The ``foreachBatch`` function: split one micro-batch and write each part to its sinks.

    Exceptions propagate (after the sinks' retries): the query fails and the batch is replayed
    on restart, which the idempotent sinks absorb.
    """

    def __init__(self, config: PipelineConfig):
        self.config = config

    def __call__(self, kafka_rows: DataFrame, batch_id: int) -> None:
        checked = check_records(kafka_rows, self.config).persist()
        try:
            self._write(checked, batch_id)
        finally:
            checked.unpersist()

    def _write(self, checked: DataFrame, batch_id: int) -> None:
        cfg = self.config
        times = StepTimes()
        readings = T.valid_readings(checked, READING_SCHEMA)
        unique = T.drop_duplicate_readings(readings).persist()
        quarantined = T.quarantine_records(checked, F.current_timestamp()).persist()
        try:
            with times.step("check"):
                # one Spark job for every count (each count() would be a job with its own fixed cost)
                valid = F.col("quarantine_reason").isNull()
                counts = checked.agg(
                    F.count("*").alias("rows_in"),
                    F.count(F.when(valid, 1)).alias("valid"),
                    F.count_distinct(F.when(valid, F.col("reading.event_id"))).alias("unique"),
                ).first()
                rows_in, n_valid, n_unique = counts.rows_in, counts.valid, counts.unique
                n_quarantined = rows_in - n_valid
            if n_unique:
                with times.step("mongo"):
                    with_retries("mongo upsert", lambda: upsert_mongo(T.to_mongo_documents(unique), cfg.mongo))
                with times.step("bronze"):
                    with_retries(
                        "delta bronze merge",
                        lambda: merge_into_delta(
                            T.to_bronze_rows(unique), str(cfg.paths.bronze), ["event_id"], prune_by=["date"]
                        ),
                    )
            if n_quarantined:
                with times.step("quarantine"):
                    with_retries(
                        "delta quarantine merge",
                        lambda: merge_into_delta(
                            quarantined, str(cfg.paths.quarantine), ["topic", "partition", "offset"]
                        ),
                    )
                    with_retries(
                        "kafka quarantine",
                        lambda: produce_to_kafka(
                            T.to_quarantine_kafka_messages(quarantined),
                            cfg.kafka.bootstrap_servers,
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
        finally:
            unique.unpersist()
            quarantined.unpersist()


def start(spark: SparkSession, config: PipelineConfig, available_now: bool = False) -> StreamingQuery:
    return start_foreach_batch(read_raw_topic(spark, config), QUERY_NAME, RawBatchWriter(config), config, available_now)


def main(argv: list[str] | None = None) -> int:
    return run_job(QUERY_NAME, __doc__, start, argv)


if __name__ == "__main__":
    sys.exit(main())
