"""cdc_to_cassandra: Debezium topic ``aqcdc.airquality.readings_raw`` → Cassandra readings and window aggregates.

Reads the Debezium MongoDB connector's change events with the explicit envelope schema
(``schemas.debezium``; with or without the JsonConverter's ``{schema, payload}`` wrapper, detected
per message or fixed by ``cdc.schemas_enabled``), decodes the Extended-JSON document into the
canonical reading (``jobs.transforms.cdc_changes``) and, per micro-batch, in one ``foreachBatch``:

1. ``r``/``c``/``u`` → upsert the reading into ``readings_by_station_day`` (partition per station
   per UTC day, newest first); ``u`` without ``after`` (``updateDescription`` only) → write the
   updated columns over the row; ``d`` → delete the row, routed by the document key (``_id`` =
   ``event_id`` = ``source:station:YYYYMMDDTHHMMSSZ`` gives station, day and ts). Within a batch
   the last change of each reading wins (Kafka order). Tombstones and heartbeats are passed over.
2. an event it cannot apply goes to the Delta quarantine ``paths.cdc_quarantine`` with its reason,
   original bytes and Kafka coordinates; the job goes on.
3. recompute the **1 h and 1 d tumbling-window aggregates** (count, mean, min, max per pollutant,
   plus the AQI of the window means; on 1 h windows the PM NowCast and its AQI) of every window a
   change falls in, and of the 11 hours after it (their NowCast includes it), *from the readings
   table*, and upsert those that changed into ``aggregates_by_station_bucket`` (one partition per
   station, window size and UTC month or year: ``schemas.cassandra.window_bucket``), and their buckets
   into ``aggregate_buckets_by_station``; a window left without readings (all deleted) loses its
   aggregate row (``jobs.transforms.aggregates``).
4. from the same rows, the **AQI alerts** of those hours (an hour whose US NowCast category or EEA
   band differs from the hour before: ``jobs.transforms.alerts``): the changes against the stored
   alerts go to the Kafka topic ``kafka.alerts_topic`` first, then to ``alerts_by_station`` and
   ``alerts_by_day`` (``jobs.alert_store``; docs/alerts.md); and the touched stations' metadata,
   where new or changed, to the ``stations`` registry (``jobs.station_store``).

Two cadences. Streaming, the job runs two queries over the topic: ``cdc_to_cassandra`` applies
each micro-batch to the readings table on the short trigger (the readings' latency), and
``cdc_to_cassandra_aggregates`` recomputes the windows of its own micro-batches on
``cdc.aggregates_trigger_interval``. An aggregates batch first waits until the readings query has
committed a batch reaching its own end offsets, so it always reads a readings table that holds its
changes; each query resumes from its own checkpoint, so a kill anywhere leaves no window behind.
With ``--available-now`` (backfills, tests) one query does both, readings then aggregates, per batch.

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
and stops; without it the job runs on ``streaming.trigger_interval`` until stopped. The checkpoints
live at ``<paths.checkpoint_root>/cdc_to_cassandra`` and ``…/cdc_to_cassandra_aggregates``: a
restart resumes from the last committed batch of each, and a replayed batch rewrites the same rows.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # run as a file by spark-submit: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from jobs.alert_store import alerts_sender, apply_alert_changes, status_counts
from jobs.cdc_store import CdcStore
from jobs.checkpoint import batch_end_offsets, batch_watermark, committed_end_offsets, query_id
from jobs.config import PipelineConfig
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
from jobs.sinks import (
    CASSANDRA_ATTEMPTS,
    DeltaTxn,
    KafkaRecordSender,
    append_to_delta,
    delete_from_cassandra,
    write_cassandra,
)
from jobs.station_store import update_registry
from jobs.transforms import aggregates as A
from jobs.transforms import alerts as AL
from jobs.transforms.aqi import with_aqi_python
from jobs.transforms.cdc_changes import (
    DELETE,
    PATCH,
    QUARANTINE,
    ROUTED_KINDS,
    UPSERT,
    decode_changes,
    parse_changes,
    quarantine_records,
)
from jobs.transforms.cdc_routing import delete_keys, is_late, last_changes, to_patch_rows, to_reading_rows

QUERY_NAME = "cdc_to_cassandra"
AGGREGATES_QUERY_NAME = "cdc_to_cassandra_aggregates"
QUERY_NAMES = (QUERY_NAME, AGGREGATES_QUERY_NAME)
log = logging.getLogger("aqstream.cdc_to_cassandra")


def reading_aqi(rows: DataFrame) -> DataFrame:
    """The six AQI columns of a reading row, from its pollutants (µg/m³)."""
    return with_aqi_python(rows)


def read_cdc_topic(spark: SparkSession, config: PipelineConfig) -> DataFrame:
    max_offsets = config.cdc.max_offsets_per_trigger or config.kafka.max_offsets_per_trigger
    return read_kafka_topic(spark, config, QUERY_NAME, config.kafka.cdc_topic, max_offsets)


def decode(kafka_rows: DataFrame, config: PipelineConfig) -> DataFrame:
    """Kafka rows → classified changes (pure; stateless, so it runs in the streaming plan)."""
    return decode_changes(kafka_rows, config.streaming.accepted_schema_versions, config.cdc.schemas_enabled_flag())


# --- the aggregates' I/O: keyed reads and writes through the Spark Cassandra Connector ----------------


def changed_readings(changes: DataFrame) -> list[tuple[str, datetime]]:
    """(station_id, ts) of every reading a change of ``changes`` (rows with ``doc_id``, as
    ``parse_changes`` gives them) names. Only the document ids are read (Spark prunes the rest of
    the parse) and deduplicated on the driver, without a shuffle."""
    return A.changed_readings(row.doc_id for row in changes.select("doc_id").collect())


@dataclass
class Recomputed:
    """What one recompute did, for the batch's log line and ``log_batch``."""

    windows: int = 0  # windows the changes fall in
    written: int = 0  # aggregate rows written (new or changed)
    emptied: int = 0  # aggregate rows deleted (no reading left)
    alerts: dict[str, int] = field(default_factory=lambda: status_counts([]))  # alerts_<status>: n
    stations: int = 0  # registry rows written (new or changed)

    def counts(self) -> dict[str, int]:
        return {"written": self.written, "emptied": self.emptied, **self.alert_counts()}

    def alert_counts(self) -> dict[str, int]:
        """The alerts and registry counts (the readings query's own ``written`` means something else)."""
        return {**self.alerts, "stations_written": self.stations}

    def __str__(self) -> str:
        alerts = ", ".join(f"{self.alerts[f'alerts_{s}']} {s}" for s in AL.STATUSES)
        return (
            f"{self.windows} windows recomputed, {self.written} aggregate rows written, {self.emptied} emptied; "
            f"alerts {alerts}; {self.stations} stations written"
        )


def recompute_aggregates(
    store: CdcStore,
    changed: list[tuple[str, datetime]],
    times: StepTimes,
    alerts: KafkaRecordSender,
) -> Recomputed:
    """Recompute every window the changed readings fall in (and their NowCast followers) from the
    readings table; write the rows that changed, delete the windows left empty. Then the alerts of
    those hours (sent to ``alerts``, then stored) and the touched stations' registry rows."""
    if not changed:
        return Recomputed()
    now = datetime.now(UTC).replace(tzinfo=None)
    with times.step("read readings"):
        readings = store.readings_of_days(A.days_to_read(changed))
        # each station's zone (its 1 d windows are its local days): from those readings, else the registry
        registry = store.registry()
        zones = A.station_zones({station for station, _ in changed}, readings, registry)
    windows = A.windows_to_recompute(changed, zones)
    hours = AL.alert_hours(windows)
    with times.step("compute"):
        # the hours either side of the recomputed ones too: an alert compares an hour with the one before
        all_rows = A.window_rows(readings, windows | AL.comparison_windows(hours), now, zones)
        rows = [r for r in all_rows if (r["station_id"], r["window_size"], r["window_start"]) in windows]
        current_alerts = AL.hourly_alerts(all_rows, hours)
    with times.step("read aggregates"):
        stored = store.stored_windows(windows)
    changed_rows = A.changed_rows(rows, stored)
    emptied = A.emptied_windows(windows, rows, stored)
    with times.step("write aggregates"):
        if changed_rows:  # the store retries each step itself
            store.upsert_windows(changed_rows)
        if emptied:
            store.delete_windows(emptied)
    with times.step("read alerts"):
        stored_alerts = store.stored_alerts(AL.alert_keys(hours))
    alert_changes = AL.alert_changes(current_alerts, stored_alerts)
    apply_alert_changes(store, alert_changes, alerts, now, times)
    with times.step("stations"):
        stations = update_registry(store, readings, now, registry)
    touched = len(A.touched_windows(changed, zones))
    return Recomputed(touched, len(changed_rows), len(emptied), status_counts(alert_changes), stations)


class LazyStore:
    """The job's :class:`CdcStore`, connected on the first recompute (on the driver, in the batch
    thread) and kept until the query's writer is closed (``jobs.runner.await_all``)."""

    def __init__(self, config: PipelineConfig):
        self.config = config
        self._store: CdcStore | None = None

    def get(self) -> CdcStore:
        if self._store is None:
            self._store = with_retries(
                "cassandra session", lambda: CdcStore.connect(self.config), attempts=CASSANDRA_ATTEMPTS
            )
        return self._store

    def close(self) -> None:
        if self._store is not None:
            store, self._store = self._store, None
            store.close()


# --- the readings query -----------------------------------------------------------------------------------


class CdcBatchWriter:
    """The ``foreachBatch`` function of the readings query: apply one micro-batch of changes to
    the readings table (and, with ``aggregates_inline``, recompute their windows right after).

    The usual batch is one Spark job: the upsert write, with the batch's tallies observed on its
    way (``DataFrame.observe``). Patches, deletes and quarantined events add a job each when the
    batch has them. Exceptions propagate (after the sinks' retries): the query fails loudly and the
    batch is replayed on restart; every write is an upsert or delete by key, so a replay ends in
    the same state.
    """

    def __init__(self, config: PipelineConfig, aggregates_inline: bool = False):
        self.config = config
        self.aggregates_inline = aggregates_inline
        self.alerts = alerts_sender(config) if aggregates_inline else None
        self.store = LazyStore(config)
        self.checkpoint = config.paths.checkpoint(QUERY_NAME)
        self._query_id: str | None = None

    def close(self) -> None:
        self.store.close()
        if self.alerts is not None:
            self.alerts.close()

    def __call__(self, changes: DataFrame, batch_id: int) -> None:
        # streaming, not persisted: the usual batch is one job, and caching it cost more than the rare
        # patch, delete or quarantine job spends reading the batch's records again. With the aggregates
        # inline every batch also collects its changed readings, a second read and decode: persisted,
        # a 20,000-change batch's two reads took 3.9 s instead of 4.6 s (docs/streaming.md)
        if not self.aggregates_inline:
            self._write(changes, batch_id)
            return
        with persisted(changes) as cached:
            self._write(cached, batch_id)

    def _write(self, changes: DataFrame, batch_id: int) -> None:
        cas = self.config.cassandra
        spark = changes.sparkSession
        times = StepTimes()
        watermark = batch_watermark(spark, self.checkpoint, batch_id)
        late = is_late(watermark) if watermark is not None else F.lit(False)
        routed = F.col("change_kind").isin(*ROUTED_KINDS)
        kinds = Observation("cdc_kinds")
        observed = changes.observe(
            kinds,
            F.count(F.lit(1)).alias("rows"),
            *[F.count(F.when(F.col("change_kind") == k, 1)).alias(k) for k in (*ROUTED_KINDS, QUARANTINE)],
            F.count(F.when(routed & late, 1)).alias("late"),
            F.min(F.when(routed & late, F.col("event_time"))).alias("oldest_late"),
        )
        last = last_changes(observed)
        with times.step("readings"):
            rows = to_reading_rows(last.where(F.col("change_kind") == UPSERT), reading_aqi)
            with_retries(
                "cassandra readings upsert",
                lambda: write_cassandra(rows, cas, cas.readings_table),
                attempts=CASSANDRA_ATTEMPTS,
            )
        tally = kinds.get
        if tally[PATCH]:
            with times.step("patches"):
                rows = to_patch_rows(last.where(F.col("change_kind") == PATCH))
                with_retries(
                    "cassandra readings patch",
                    lambda: write_cassandra(rows, cas, cas.readings_table, ignore_nulls=True),
                    attempts=CASSANDRA_ATTEMPTS,
                )
        if tally[DELETE]:
            with times.step("deletes"):
                keys = delete_keys(last.where(F.col("change_kind") == DELETE))
                with_retries(
                    "cassandra readings delete",
                    lambda: delete_from_cassandra(keys, cas, cas.readings_table),
                    attempts=CASSANDRA_ATTEMPTS,
                )
        reasons: dict[str, int] = {}
        if tally[QUARANTINE]:
            with times.step("quarantine"):
                reasons = self._quarantine(changes, batch_id)
        late_summary = _late_summary(tally["late"], tally["oldest_late"], watermark, batch_id)
        recomputed = Recomputed()
        if self.alerts is not None and any(tally[k] for k in ROUTED_KINDS):
            with times.step("changed readings"):
                changed = changed_readings(changes)
            recomputed = recompute_aggregates(self.store.get(), changed, times, self.alerts)
        log.info(
            "batch %d: %d changes: %s; late %s%s; %s",
            batch_id,
            tally["rows"],
            ", ".join(f"{k} {tally[k]}" for k in (*ROUTED_KINDS, QUARANTINE)),
            late_summary,
            f"; {recomputed}" if self.aggregates_inline else "",
            times,
        )
        counts = {k: tally[k] for k in (*ROUTED_KINDS, QUARANTINE)}
        if self.aggregates_inline:
            counts.update(recomputed.alert_counts())
        log_batch(QUERY_NAME, batch_id, tally["rows"], times, late=tally["late"], quarantine_reasons=reasons, **counts)

    def _quarantine(self, changes: DataFrame, batch_id: int) -> dict[str, int]:
        """Append the batch's quarantined changes; return their count per reason code."""
        quarantined = quarantine_records(changes, F.current_timestamp())
        reasons = {}
        for row in quarantined.groupBy("reason_code").count().collect():
            log.warning("batch %d: %d changes quarantined: %s", batch_id, row["count"], row.reason_code)
            reasons[row.reason_code] = row["count"]
        if self._query_id is None:
            self._query_id = query_id(changes.sparkSession, self.checkpoint)
        txn = DeltaTxn(self._query_id, batch_id)
        with_retries(
            "delta cdc quarantine append",
            lambda: append_to_delta(quarantined, str(self.config.paths.cdc_quarantine), txn),
        )
        return reasons


def _late_summary(n: int, oldest: datetime | None, watermark: datetime | None, batch_id: int) -> str:
    """The batch's late changes for its log line (and a warning when there are any)."""
    if watermark is None:
        return "unknown"
    if n:
        log.warning(
            "batch %d: %d changes later than the watermark %s (oldest ts %s): applied, windows recomputed",
            batch_id,
            n,
            watermark,
            oldest,
        )
        return f"{n} (watermark {watermark}, oldest {oldest})"
    return f"0 (watermark {watermark})"


# --- the aggregates query ---------------------------------------------------------------------------------


def offsets_reached(done: dict[str, dict[int, int]], needed: dict[str, dict[int, int]]) -> bool:
    """True when ``done`` (a query's committed end offsets) reaches ``needed`` on every partition."""
    return all(done.get(topic, {}).get(p, 0) >= end for topic, parts in needed.items() for p, end in parts.items())


class AggregatesBatchWriter:
    """The ``foreachBatch`` function of the aggregates query: recompute the windows of its changes
    once the readings query has applied them (its committed offsets reach this batch's end)."""

    def __init__(self, config: PipelineConfig, readings: StreamingQuery, poll_s: float = 0.1):
        self.config = config
        self.checkpoint = config.paths.checkpoint(AGGREGATES_QUERY_NAME)
        self.readings_checkpoint = config.paths.checkpoint(QUERY_NAME)
        self.readings = readings
        self.poll_s = poll_s
        self.alerts = alerts_sender(config)
        self.store = LazyStore(config)

    def close(self) -> None:
        self.store.close()
        self.alerts.close()

    def __call__(self, changes: DataFrame, batch_id: int) -> None:
        spark = changes.sparkSession
        times = StepTimes()
        with times.step("changed readings"):
            changed = changed_readings(changes)
        with times.step("wait for readings"):
            self._wait_for_readings(spark, batch_id)
        recomputed = recompute_aggregates(self.store.get(), changed, times, self.alerts)
        log.info("aggregates batch %d: %d readings changed; %s; %s", batch_id, len(changed), recomputed, times)
        log_batch(AGGREGATES_QUERY_NAME, batch_id, len(changed), times, **recomputed.counts())

    def _wait_for_readings(self, spark: SparkSession, batch_id: int) -> None:
        needed = batch_end_offsets(spark, self.checkpoint, batch_id)
        if needed is None:
            raise RuntimeError(f"{AGGREGATES_QUERY_NAME}: no offsets for batch {batch_id} in {self.checkpoint}")
        deadline = time.monotonic() + self.config.cdc.aggregates_wait_timeout_s
        while not offsets_reached(committed_end_offsets(spark, self.readings_checkpoint), needed):
            if not self.readings.isActive:
                raise RuntimeError(
                    f"{AGGREGATES_QUERY_NAME} batch {batch_id} needs the readings of offsets {needed}, "
                    f"and the {QUERY_NAME} query is not running"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{AGGREGATES_QUERY_NAME} batch {batch_id}: {QUERY_NAME} did not reach offsets {needed} in "
                    f"{self.config.cdc.aggregates_wait_timeout_s:.0f}s (cdc.aggregates_wait_timeout_s)"
                )
            time.sleep(self.poll_s)


def start(spark: SparkSession, config: PipelineConfig, available_now: bool = False) -> list[StreamingQuery]:
    changes = decode(read_cdc_topic(spark, config), config).withWatermark(
        "event_time", config.streaming.aggregate_watermark
    )
    if available_now:
        writer = CdcBatchWriter(config, aggregates_inline=True)
        return [start_foreach_batch(changes, QUERY_NAME, writer, config, available_now=True)]
    readings = start_foreach_batch(changes, QUERY_NAME, CdcBatchWriter(config), config, available_now=False)
    aggregates = start_foreach_batch(
        parse_changes(read_cdc_topic(spark, config), config.cdc.schemas_enabled_flag()),
        AGGREGATES_QUERY_NAME,
        AggregatesBatchWriter(config, readings),
        config,
        available_now=False,
        trigger_interval=config.cdc.aggregates_trigger_interval,
        pool=BACKGROUND_POOL,
    )
    return [readings, aggregates]


def main(argv: list[str] | None = None) -> int:
    return run_job(QUERY_NAME, __doc__, start, argv, cassandra_role="cdc")


if __name__ == "__main__":
    sys.exit(main())
