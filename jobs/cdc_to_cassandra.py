"""cdc_to_cassandra: Debezium topic ``aqcdc.airquality.readings_raw`` → Cassandra readings and window aggregates.

Reads the Debezium MongoDB connector's change events with the explicit envelope schema
(``schemas.debezium``; with or without the JsonConverter's ``{schema, payload}`` wrapper, detected
per message or fixed by ``cdc.schemas_enabled``), decodes the Extended-JSON document into the
canonical reading (``jobs.transforms.cdc``) and, per micro-batch, in one ``foreachBatch``:

1. ``r``/``c``/``u`` → upsert the reading into ``readings_by_station_day`` (partition per station
   per UTC day, newest first); ``u`` without ``after`` (``updateDescription`` only) → write the
   updated columns over the row; ``d`` → delete the row, routed by the document key (``_id`` =
   ``event_id`` = ``source:station:YYYYMMDDTHHMMSSZ`` gives station, day and ts). Within a batch
   the last change of each reading wins (Kafka order). Tombstones and heartbeats are passed over.
2. an event it cannot apply goes to the Delta quarantine ``paths.cdc_quarantine`` with its reason,
   original bytes and Kafka coordinates; the job goes on.
3. recompute the **1 h and 1 d tumbling-window aggregates** (count, mean, min, max per pollutant,
   plus the AQI of the window means; on 1 h windows the PM NowCast and its AQI) of every window a
   change of this batch falls in, and of the 11 hours after it (their NowCast includes it), *from
   the readings table*, and upsert those that changed into ``aggregates_by_station``; a window left
   without readings (all deleted) loses its aggregate row.

Why recompute from the readings table instead of Spark's stateful window aggregation: a streaming
aggregation only ever adds. It cannot take back the old value of an updated reading or a deleted
one, it counts a reading twice when Debezium re-delivers it (at-least-once: a connector restart,
a re-snapshot ``r`` after a ``c``), and what it drops as late depends on how the topic happened to
be cut into batches, so a replay can give different numbers. The readings table is the truth
(upserts and deletes by key, idempotent), and an aggregate recomputed from it is exact, the same
after a replay, a kill, a duplicate, an update or a delete. The cost is one keyed read per touched
station-day and its two neighbours, for the NowCast (a *direct join* on the partition key: at most
1440 rows each) and one keyed read of the touched aggregate rows, which also lets the job write
only the windows whose values changed: a replay writes nothing and leaves ``updated_at`` as it was.
The windows are the update-mode output: each batch upserts exactly the windows it changed.

Late data. The query keeps Spark's event-time watermark on the reading's ts
(``streaming.aggregate_watermark`` behind the newest ts seen in earlier batches, checkpointed, so
a restart keeps it). A change older than the watermark is *late*: it is still applied to the
readings table and its windows are still recomputed (nothing is lost and the aggregate ends
exact), but the aggregate of that window had been published as settled before, so the job counts
late changes per batch and logs them, with the oldest one (``late`` in the batch log line).

Usage:
    python -m jobs.submit cdc_to_cassandra [--config conf/pipeline.toml] [--available-now]
    spark-submit --properties-file conf/spark-defaults.conf --jars "$(ls jars/lib/spark/*.jar | paste -sd,)" \\
        jobs/cdc_to_cassandra.py --config conf/pipeline.toml [--available-now]

The keyspace and tables must exist: ``python -m jobs.setup cassandra`` applies the committed CQL
(``schemas/cql``); the job never creates them. ``--available-now`` processes what the topic holds
and stops; without it the job runs on ``streaming.trigger_interval`` until stopped. The checkpoint
lives at ``<paths.checkpoint_root>/cdc_to_cassandra``: a restart resumes from the last committed
batch, and a replayed batch rewrites the same rows.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # run as a file by spark-submit: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from jobs.config import PipelineConfig
from jobs.runner import StepTimes, run_job, start_foreach_batch
from jobs.sinks import delete_from_cassandra, merge_into_delta, read_cassandra, with_retries, write_cassandra
from jobs.transforms import cdc as T
from jobs.transforms.aqi import with_aqi
from schemas.reading import POLLUTANT_FIELDS, SCHEMA_VERSION

QUERY_NAME = "cdc_to_cassandra"
log = logging.getLogger("aqstream.cdc_to_cassandra")


def reading_aqi(rows: DataFrame) -> DataFrame:
    """The six AQI columns of a reading row, from its pollutants (µg/m³)."""
    return with_aqi(rows)


def aggregate_aqi(rows: DataFrame) -> DataFrame:
    """The six AQI columns of an aggregate row, from its window means."""
    return with_aqi(rows, {p: f"{p}_mean" for p in POLLUTANT_FIELDS})


def read_cdc_topic(spark: SparkSession, config: PipelineConfig) -> DataFrame:
    return (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", config.kafka.bootstrap_servers)
        .option("subscribe", config.kafka.cdc_topic)
        .option("startingOffsets", config.kafka.starting_offsets)
        .option("maxOffsetsPerTrigger", config.cdc.max_offsets_per_trigger or config.kafka.max_offsets_per_trigger)
        .option("failOnDataLoss", str(config.kafka.fail_on_data_loss).lower())
        .load()
    )


def decode(kafka_rows: DataFrame, config: PipelineConfig) -> DataFrame:
    """Kafka rows → classified changes (pure; stateless, so it runs in the streaming plan)."""
    return T.decode_changes(kafka_rows, [SCHEMA_VERSION], config.cdc.schemas_enabled_flag())


def batch_watermark(spark: SparkSession, checkpoint: str, batch_id: int) -> datetime | None:
    """The event-time watermark Spark fixed for this batch, from the checkpoint's offset log.

    Spark writes ``offsets/<batch_id>`` (version line, then metadata JSON with ``batchWatermarkMs``)
    before it runs the batch, and a restarted query re-reads it, so the value is the one the batch
    ran with. None when it cannot be read (then late changes are not counted for that batch).
    """
    try:
        jvm = spark._jvm  # noqa: SLF001 - Hadoop FS, so object-store checkpoints work too
        path = jvm.org.apache.hadoop.fs.Path(f"{checkpoint}/offsets/{batch_id}")
        fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())  # noqa: SLF001
        stream = fs.open(path)
        try:
            reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, "UTF-8"))
            reader.readLine()  # "v1"
            metadata = json.loads(reader.readLine())
        finally:
            stream.close()
        millis = int(metadata.get("batchWatermarkMs", 0))
        return datetime.fromtimestamp(millis / 1000, tz=UTC).replace(tzinfo=None)
    except Exception as exc:  # never fail a batch for a log line
        log.warning("batch %d: watermark unknown (%s); late changes not counted", batch_id, exc)
        return None


class CdcBatchWriter:
    """The ``foreachBatch`` function: apply one micro-batch of changes to Cassandra.

    Exceptions propagate (after the sinks' retries): the query fails loudly and the batch is
    replayed on restart; every write is an upsert or delete by key, and the aggregates are
    recomputed from the readings table, so a replay ends in the same state.
    """

    def __init__(self, config: PipelineConfig):
        self.config = config
        self.checkpoint = config.paths.checkpoint(QUERY_NAME)

    def __call__(self, changes: DataFrame, batch_id: int) -> None:
        changes = changes.persist()
        try:
            self._write(changes, batch_id)
        finally:
            changes.unpersist()

    def _write(self, changes: DataFrame, batch_id: int) -> None:
        cfg, cas = self.config, self.config.cassandra
        spark = changes.sparkSession
        now = datetime.now(UTC).replace(tzinfo=None)
        times = StepTimes()
        with times.step("classify"):
            kinds = {row.change_kind: row["count"] for row in changes.groupBy("change_kind").count().collect()}
        if not kinds:
            return

        quarantined = T.quarantine_records(changes, F.lit(now)).persist()
        last = T.last_changes(changes).persist()
        try:
            n_quarantined = kinds.get(T.QUARANTINE, 0)
            if n_quarantined:
                with times.step("quarantine"):
                    for row in quarantined.groupBy("reason_code").count().collect():
                        log.warning("batch %d: %d changes quarantined: %s", batch_id, row["count"], row.reason_code)
                    with_retries(
                        "delta cdc quarantine merge",
                        lambda: merge_into_delta(
                            quarantined, str(cfg.paths.cdc_quarantine), ["topic", "partition", "offset"]
                        ),
                    )

            watermark = batch_watermark(spark, self.checkpoint, batch_id)
            with times.step("last change"):
                # one Spark job for the counts per kind and the late changes (each count() is a job
                # with its own fixed cost, which dominates small batches)
                late = T.is_late(F.lit(watermark)) if watermark is not None else F.lit(False)
                winners = {
                    row.change_kind: row
                    for row in last.groupBy("change_kind")
                    .agg(
                        F.count("*").alias("n"),
                        F.count(F.when(late, 1)).alias("late"),
                        F.min(F.when(late, F.col("event_time"))).alias("oldest"),
                    )
                    .collect()
                }
            n_up, n_patch, n_del = (winners[k].n if k in winners else 0 for k in (T.UPSERT, T.PATCH, T.DELETE))
            with times.step("readings"):
                if n_up:
                    rows = T.to_reading_rows(last.where(F.col("change_kind") == T.UPSERT), reading_aqi)
                    with_retries("cassandra readings upsert", lambda: write_cassandra(rows, cas, cas.readings_table))
                if n_patch:
                    rows = T.to_patch_rows(last.where(F.col("change_kind") == T.PATCH))
                    with_retries(
                        "cassandra readings patch",
                        lambda: write_cassandra(rows, cas, cas.readings_table, ignore_nulls=True),
                    )
                if n_del:
                    keys = T.delete_keys(last.where(F.col("change_kind") == T.DELETE))
                    with_retries(
                        "cassandra readings delete", lambda: delete_from_cassandra(keys, cas, cas.readings_table)
                    )

            late_summary = self._late(list(winners.values()), watermark, batch_id)
            with times.step("aggregates"):
                n_windows, n_written, n_emptied = (
                    self._aggregates(last, spark, now) if (n_up or n_patch or n_del) else (0, 0, 0)
                )
            log.info(
                "batch %d: %s; %d upserts, %d patches, %d deletes, %d quarantined; late %s; "
                "%d windows recomputed, %d aggregate rows written, %d emptied; %s",
                batch_id,
                ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())),
                n_up,
                n_patch,
                n_del,
                n_quarantined,
                late_summary,
                n_windows,
                n_written,
                n_emptied,
                times,
            )
        finally:
            quarantined.unpersist()
            last.unpersist()

    @staticmethod
    def _late(winners: list, watermark: datetime | None, batch_id: int) -> str:
        """The batch's late changes (counted per kind in the same job as the kinds) for its log line."""
        if watermark is None:
            return "unknown"
        n = sum(row.late for row in winners)
        if n:
            oldest = min(row.oldest for row in winners if row.oldest is not None)
            log.warning(
                "batch %d: %d changes later than the watermark %s (oldest ts %s): applied, windows recomputed",
                batch_id,
                n,
                watermark,
                oldest,
            )
            return f"{n} (watermark {watermark}, oldest {oldest})"
        return f"0 (watermark {watermark})"

    def _aggregates(self, last: DataFrame, spark: SparkSession, now: datetime) -> tuple[int, int, int]:
        """Recompute every window a change of this batch falls in, from the readings table."""
        cas = self.config.cassandra
        touched = T.touched_windows(last).persist()
        try:
            # the NowCast of the 11 hours after a change includes it: recompute those too, reading the
            # days around each changed one for the 12 hours of history a 1 h window's NowCast needs
            recompute = touched.unionByName(T.nowcast_windows(last)).distinct()
            days = T.recompute_days(last)
            readings = days.join(read_cassandra(spark, cas, cas.readings_table), ["station_id", "day"]).select(
                "station_id", "ts", *POLLUTANT_FIELDS
            )
            recomputed = T.window_aggregates(readings).join(
                recompute, ["station_id", "window_size", "window_start"], "left_semi"
            )
            rows = T.aggregate_rows(recomputed, F.lit(now), aggregate_aqi).persist()
            try:
                existing = rows.select("station_id", "window_size", "window_start").join(
                    read_cassandra(spark, cas, cas.aggregates_table),
                    ["station_id", "window_size", "window_start"],
                )
                changed = T.changed_aggregates(rows, existing).persist()
                try:
                    n_written = changed.count()
                    if n_written:
                        with_retries(
                            "cassandra aggregates upsert",
                            lambda: write_cassandra(changed, cas, cas.aggregates_table),
                        )
                finally:
                    changed.unpersist()
                keys = ["station_id", "window_size", "window_start"]
                present = rows.select(*keys, F.lit(True).alias("_present"))
                # touched and emptied windows counted in one job
                tally = (
                    touched.join(present, keys, "left")
                    .agg(F.count("*").alias("touched"), F.count(F.when(F.col("_present").isNull(), 1)).alias("emptied"))
                    .first()
                )
                if tally.emptied:
                    emptied = touched.join(rows, keys, "left_anti")
                    with_retries(
                        "cassandra aggregates delete",
                        lambda: delete_from_cassandra(emptied, cas, cas.aggregates_table),
                    )
                return tally.touched, n_written, tally.emptied
            finally:
                rows.unpersist()
        finally:
            touched.unpersist()


def start(spark: SparkSession, config: PipelineConfig, available_now: bool = False) -> StreamingQuery:
    changes = decode(read_cdc_topic(spark, config), config).withWatermark(
        "event_time", config.streaming.aggregate_watermark
    )
    return start_foreach_batch(changes, QUERY_NAME, CdcBatchWriter(config), config, available_now)


def main(argv: list[str] | None = None) -> int:
    return run_job(QUERY_NAME, __doc__, start, argv)


if __name__ == "__main__":
    sys.exit(main())
