"""The aggregates side of the CDC job at its Cassandra edge: keyed reads and writes from the driver.

A recompute reads and writes a few hundred rows for a small batch (the touched station-days, their
stored windows and alerts, the registry) and a few tens of thousands for a 20k backlog batch. Through
the Spark Cassandra Connector each of those is a Spark job with a fixed cost (0.1–0.3 s alone, 2–3 s on
two cores shared with the other queries: docs/streaming.md); here each is a set of cassandra-driver
prepared statements, every one by its table's whole partition key, all in flight at once
(``execute_concurrent``). The rows are already on the driver: the compute is pure Python there.
Writes of one partition go as unlogged batches of up to ``BATCH_ROWS`` statements: one request (and
one mutation on the node) per batch instead of per row; a batch of one partition is applied
atomically and costs the coordinator no fan-out (https://cassandra.apache.org/doc/latest/cassandra/
developing/cql/dml.html#batch_statement).

Reads of many rows of one partition are one range read of that partition (the windows of a station,
size and bucket between the first and last wanted; the alerts of a station over the wanted hours), the
wanted rows kept. Writes are upserts and deletes by primary key, so a replayed batch writes the same
rows; a null value is written as null (as the connector's writer does), so a value that became null
is cleared. Reads use ``cassandra.read_consistency``, writes ``cassandra.write_consistency``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from cassandra.cluster import Cluster, Session
from cassandra.concurrent import execute_concurrent, execute_concurrent_with_args
from cassandra.query import BatchStatement, BatchType, PreparedStatement

from jobs import cassandra_client
from jobs.config import CassandraConfig, PipelineConfig
from jobs.retries import with_retries
from jobs.sinks import CASSANDRA_ATTEMPTS
from jobs.transforms import aggregates as A
from jobs.transforms import alerts as AL
from jobs.transforms.stations import STATION_FIELDS
from schemas.cassandra import (
    AGGREGATE_BUCKETS_TABLE,
    ALERTS_BY_DAY_PRIMARY_KEY,
    ALERTS_BY_DAY_TABLE,
    ALERTS_BY_STATION_PRIMARY_KEY,
    ALERTS_BY_STATION_TABLE,
    STATIONS_REGISTRY,
    STATIONS_TABLE,
    aggregate_buckets_spark_schema,
    aggregates_row_spark_schema,
    alerts_by_day_spark_schema,
    alerts_by_station_spark_schema,
    primary_key_columns,
    stations_row_spark_schema,
    window_bucket,
)
from schemas.reading import POLLUTANT_FIELDS

Row = dict[str, Any]
# requests in flight at once: enough to keep one node's native transport busy, few enough for its queue
CONCURRENCY = 64
# statements per single-partition unlogged batch: 20,000 aggregate upserts took 4.5-7.8 s as single
# statements, 1.1-1.5 s in batches of 20 and no faster in batches of 50 (docs/streaming.md); small
# enough to stay far from Cassandra's batch-size failure threshold (50 KiB)
BATCH_ROWS = 20
READING_COLUMNS = ("station_id", "ts", *POLLUTANT_FIELDS, *STATION_FIELDS)


def insert_cql(keyspace: str, table: str, columns: Sequence[str]) -> str:
    return f"INSERT INTO {keyspace}.{table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def delete_cql(keyspace: str, table: str, key: Sequence[str]) -> str:
    return f"DELETE FROM {keyspace}.{table} WHERE {' AND '.join(f'{c} = ?' for c in key)}"


def statements(cassandra: CassandraConfig) -> dict[str, str]:
    """Every statement the store runs (name → CQL), each bound to a whole partition key."""
    ks, aggregates = cassandra.keyspace, cassandra.aggregates_table
    return {
        "readings": (
            f"SELECT {', '.join(READING_COLUMNS)} FROM {ks}.{cassandra.readings_table} WHERE station_id = ? AND day = ?"
        ),
        "windows": (
            f"SELECT window_start, {', '.join(A.compared_columns())} FROM {ks}.{aggregates}"
            " WHERE station_id = ? AND window_size = ? AND bucket = ? AND window_start >= ? AND window_start <= ?"
        ),
        "upsert_window": insert_cql(ks, aggregates, aggregates_row_spark_schema().fieldNames()),
        "delete_window": delete_cql(ks, aggregates, ("station_id", "window_size", "bucket", "window_start")),
        "upsert_bucket": insert_cql(ks, AGGREGATE_BUCKETS_TABLE, aggregate_buckets_spark_schema().fieldNames()),
        "alerts": (
            f"SELECT hour, aqi_index, {', '.join(AL.COMPARED)} FROM {ks}.{ALERTS_BY_STATION_TABLE}"
            " WHERE station_id = ? AND hour >= ? AND hour <= ?"
        ),
        "upsert_station_alert": insert_cql(ks, ALERTS_BY_STATION_TABLE, alerts_by_station_spark_schema().fieldNames()),
        "upsert_day_alert": insert_cql(ks, ALERTS_BY_DAY_TABLE, alerts_by_day_spark_schema().fieldNames()),
        "delete_station_alert": delete_cql(
            ks, ALERTS_BY_STATION_TABLE, primary_key_columns(ALERTS_BY_STATION_PRIMARY_KEY)
        ),
        "delete_day_alert": delete_cql(ks, ALERTS_BY_DAY_TABLE, primary_key_columns(ALERTS_BY_DAY_PRIMARY_KEY)),
        "stations": f"SELECT station_id, {', '.join(STATION_FIELDS)} FROM {ks}.{STATIONS_TABLE} WHERE registry = ?",
        "upsert_station": insert_cql(ks, STATIONS_TABLE, stations_row_spark_schema().fieldNames()),
    }


def _is_write(name: str) -> bool:
    return name.startswith(("upsert_", "delete_"))


class CdcStore:
    """The prepared statements of :func:`statements` on one session, kept for the job's life."""

    def __init__(self, cluster: Cluster, session: Session, cassandra: CassandraConfig):
        self.cluster, self.session = cluster, session
        write_consistency = cassandra_client.consistency_level(cassandra.write_consistency)
        self.prepared: dict[str, PreparedStatement] = {}
        for name, cql in statements(cassandra).items():
            prepared = session.prepare(cql)
            if _is_write(name):
                prepared.consistency_level = write_consistency
            self.prepared[name] = prepared

    @classmethod
    def connect(cls, config: PipelineConfig) -> CdcStore:
        """As the CDC job's role (``credentials.cassandra_user_cdc``)."""
        cluster, session = cassandra_client.connect(config, "cdc")
        try:
            return cls(cluster, session, config.cassandra)
        except Exception:
            cluster.shutdown()
            raise

    def close(self) -> None:
        self.cluster.shutdown()

    # --- every statement, many bindings at once ---------------------------------------------------

    def _each(self, name: str, bindings: Iterable[Sequence[Any]]) -> list[list[Row]]:
        """The rows of each binding of statement ``name`` (all pages), in the bindings' order."""
        bindings = list(bindings)

        def read() -> list[list[Row]]:
            results = execute_concurrent_with_args(
                self.session, self.prepared[name], bindings, concurrency=CONCURRENCY, raise_on_first_error=True
            )
            return [list(result) for _, result in results]

        return with_retries(f"cassandra {name}", read, attempts=CASSANDRA_ATTEMPTS)

    def _run(self, name: str, bindings: Iterable[Sequence[Any]]) -> None:
        """Write statement ``name`` once per binding: the bindings of one partition in unlogged batches."""
        statement = self.prepared[name]
        requests = [(request, ()) for request in partition_batches(statement, bindings)]
        if requests:  # upserts and deletes by key: a retry writes the same rows again
            with_retries(
                f"cassandra {name}",
                lambda: execute_concurrent(self.session, requests, concurrency=CONCURRENCY, raise_on_first_error=True),
                attempts=CASSANDRA_ATTEMPTS,
            )

    def _upsert(self, name: str, rows: Iterable[Mapping[str, Any]]) -> None:
        columns = self.prepared[name].column_metadata
        self._run(name, ([row[c.name] for c in columns] for row in rows))

    # --- readings ---------------------------------------------------------------------------------

    def readings_of_days(self, days: Iterable[tuple[str, date]]) -> list[Row]:
        """Every reading of the given (station_id, day) partitions: its pollutants and station metadata."""
        return [row for rows in self._each("readings", list(days)) for row in rows]

    # --- aggregates -------------------------------------------------------------------------------

    def stored_windows(self, windows: Iterable[A.WindowKey]) -> dict[A.WindowKey, Row]:
        """The stored aggregate rows of ``windows`` (those that exist): one range read per partition."""
        wanted = set(windows)
        spans = _spans(((s, size, window_bucket(size, start)), start) for s, size, start in wanted)
        found: dict[A.WindowKey, Row] = {}
        for (station, size, bucket), rows in zip(spans, self._each("windows", _span_bindings(spans)), strict=True):
            for row in rows:
                key = (station, size, row["window_start"])
                if key in wanted:
                    found[key] = {"station_id": station, "window_size": size, "bucket": bucket, **row}
        return found

    def upsert_windows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Upsert aggregate rows, then their partitions into the buckets table (where a reader finds them)."""
        self._upsert("upsert_window", rows)
        keys = A.buckets_of((r["station_id"], r["window_size"], r["window_start"]) for r in rows)
        self._upsert(
            "upsert_bucket", [dict(zip(("station_id", "window_size", "bucket"), k, strict=True)) for k in keys]
        )

    def delete_windows(self, windows: Iterable[A.WindowKey]) -> None:
        self._run("delete_window", ((s, size, window_bucket(size, start), start) for s, size, start in windows))

    # --- alerts -----------------------------------------------------------------------------------

    def stored_alerts(self, keys: Iterable[AL.AlertKey]) -> dict[AL.AlertKey, Row]:
        """The stored ``alerts_by_station`` rows of ``keys``: one range read per station over its hours."""
        wanted = set(keys)
        spans = _spans((station, hour) for station, _, hour in wanted)
        found: dict[AL.AlertKey, Row] = {}
        for station, rows in zip(spans, self._each("alerts", _span_bindings(spans)), strict=True):
            for row in rows:
                key = (station, row["aqi_index"], row["hour"])
                if key in wanted:
                    found[key] = {"station_id": station, **row}
        return found

    def upsert_alerts(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        """Upsert alerts into both tables (``alerts_by_day`` keyed by the UTC day of the hour)."""
        self._upsert("upsert_station_alert", alerts)
        self._upsert("upsert_day_alert", [AL.by_day_row(a) for a in alerts])

    def delete_alerts(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        for name, key, as_row in (
            ("delete_station_alert", ALERTS_BY_STATION_PRIMARY_KEY, dict),
            ("delete_day_alert", ALERTS_BY_DAY_PRIMARY_KEY, AL.by_day_row),
        ):
            columns = primary_key_columns(key)
            self._run(name, ([as_row(a)[c] for c in columns] for a in alerts))

    # --- the stations registry --------------------------------------------------------------------

    def registry(self) -> dict[str, Row]:
        """Every station of the registry, by station_id: its one partition."""
        (rows,) = self._each("stations", [(STATIONS_REGISTRY,)])
        return {row["station_id"]: row for row in rows}

    def upsert_stations(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self._upsert("upsert_station", rows)


def partition_batches(
    statement: PreparedStatement, bindings: Iterable[Sequence[Any]], rows: int = BATCH_ROWS
) -> list[BatchStatement]:
    """``statement``'s bindings as unlogged batches of at most ``rows``, each of one partition (the
    values at the statement's partition-key positions, ``routing_key_indexes``)."""
    key_at = statement.routing_key_indexes
    if key_at is None:
        raise ValueError(f"not one partition per binding, cannot batch: {statement.query_string}")
    by_partition: dict[tuple[Any, ...], list[Sequence[Any]]] = defaultdict(list)
    for values in bindings:
        by_partition[tuple(values[i] for i in key_at)].append(values)
    batches = []
    for partition in by_partition.values():
        for first in range(0, len(partition), rows):
            batch = BatchStatement(BatchType.UNLOGGED, consistency_level=statement.consistency_level)
            for values in partition[first : first + rows]:
                batch.add(statement, values)
            batches.append(batch)
    return batches


def _spans(keyed: Iterable[tuple[Any, datetime]]) -> dict[Any, tuple[datetime, datetime]]:
    """Per partition key, the first and last time wanted from it."""
    times: dict[Any, list[datetime]] = defaultdict(list)
    for key, when in keyed:
        times[key].append(when)
    return {key: (min(ts), max(ts)) for key, ts in times.items()}


def _span_bindings(spans: Mapping[Any, tuple[datetime, datetime]]) -> list[tuple[Any, ...]]:
    return [(*(key if isinstance(key, tuple) else (key,)), first, last) for key, (first, last) in spans.items()]
