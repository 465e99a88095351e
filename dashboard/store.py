"""Every Cassandra read the service makes: prepared once at start, each by its table's whole partition key.

No statement scans a table or filters: each names the partition key (``stations``: the registry's one
partition; readings: station and UTC day; aggregates: station, window size and bucket, the UTC month or
year of the window; a station's aggregate buckets and its alerts: the station; per-day alerts: the day),
bound as a parameter so the driver can route it (``routing_key_indexes``), and every one ends in
``LIMIT ?`` bound to at most ``dashboard.max_page_size``. tests/integration/test_dashboard_api.py checks
both, and that the endpoints execute nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from cassandra.cluster import Cluster, ResponseFuture, Session
from cassandra.query import PreparedStatement

from jobs import cassandra_client
from jobs.config import PipelineConfig
from schemas.cassandra import (
    AGGREGATE_BUCKETS_TABLE,
    ALERTS_BY_DAY_TABLE,
    ALERTS_BY_STATION_TABLE,
    STATIONS_REGISTRY,
    STATIONS_TABLE,
)

# name -> CQL; {ks}, {readings} and {aggregates} are filled from the config
STATEMENTS: dict[str, str] = {
    "stations": "SELECT * FROM {ks}.{stations} WHERE registry = ? LIMIT ?",
    "station": "SELECT * FROM {ks}.{stations} WHERE registry = ? AND station_id = ? LIMIT 1",
    "aggregate_buckets": "SELECT bucket FROM {ks}.{aggregate_buckets} WHERE station_id = ? AND window_size = ? LIMIT ?",
    "latest_window": "SELECT * FROM {ks}.{aggregates} WHERE station_id = ? AND window_size = ? AND bucket = ? LIMIT 1",
    "latest_reading": "SELECT * FROM {ks}.{readings} WHERE station_id = ? AND day = ? LIMIT 1",
    "readings": "SELECT * FROM {ks}.{readings} WHERE station_id = ? AND day = ? AND ts >= ? AND ts < ? LIMIT ?",
    "windows": (
        "SELECT * FROM {ks}.{aggregates} WHERE station_id = ? AND window_size = ? AND bucket = ?"
        " AND window_start >= ? AND window_start < ? LIMIT ?"
    ),
    "station_alerts": "SELECT * FROM {ks}.{alerts_by_station} WHERE station_id = ? LIMIT ?",
    "day_alerts": "SELECT * FROM {ks}.{alerts_by_day} WHERE day = ? LIMIT ?",
}

Row = dict[str, Any]


def statements(config: PipelineConfig) -> dict[str, str]:
    """The CQL of every statement, for this config's keyspace and tables."""
    names = {
        "ks": config.cassandra.keyspace,
        "readings": config.cassandra.readings_table,
        "aggregates": config.cassandra.aggregates_table,
        "aggregate_buckets": AGGREGATE_BUCKETS_TABLE,
        "stations": STATIONS_TABLE,
        "alerts_by_station": ALERTS_BY_STATION_TABLE,
        "alerts_by_day": ALERTS_BY_DAY_TABLE,
    }
    return {name: cql.format(**names) for name, cql in STATEMENTS.items()}


def connect(config: PipelineConfig, timeout_s: float = 10.0) -> tuple[Cluster, Session]:
    """As the read-only role (``credentials.cassandra_user_reader``): the service only reads."""
    return cassandra_client.connect(config, "reader", timeout_s)


class Store:
    """The service's reads. ``prepared`` holds every statement it can execute, prepared at start."""

    def __init__(self, session: Session, config: PipelineConfig):
        self.session = session
        self.max_rows = config.dashboard.max_page_size
        self.prepared: dict[str, PreparedStatement] = {
            name: session.prepare(cql) for name, cql in statements(config).items()
        }

    # --- one statement, one or many partitions -------------------------------------------------

    def _start(self, name: str, values: Sequence[Any]) -> ResponseFuture:
        bound = self.prepared[name].bind(values)
        bound.fetch_size = self.max_rows  # every read ends in LIMIT <= max_rows: one page
        return self.session.execute_async(bound)

    def _rows(self, name: str, values: Sequence[Any]) -> list[Row]:
        return list(self._start(name, values).result())

    def _each(self, name: str, values: Iterable[Sequence[Any]]) -> list[list[Row]]:
        """One read per partition, all in flight at once."""
        futures = [self._start(name, v) for v in values]
        return [list(future.result()) for future in futures]

    # --- the reads -----------------------------------------------------------------------------

    def stations(self) -> list[Row]:
        return self._rows("stations", (STATIONS_REGISTRY, self.max_rows))

    def station(self, station_id: str) -> Row | None:
        rows = self._rows("station", (STATIONS_REGISTRY, station_id))
        return rows[0] if rows else None

    def latest_windows(self, station_ids: Sequence[str], size: str) -> list[Row | None]:
        """Each station's newest aggregate row of ``size`` (None: it has none): its newest bucket's newest row.
        A bucket whose windows were all deleted stays listed, so a station whose bucket is empty asks the
        next one, in a further round."""
        buckets = [
            [r["bucket"] for r in rows]
            for rows in self._each("aggregate_buckets", [(s, size, self.max_rows) for s in station_ids])
        ]
        found: list[Row | None] = [None] * len(station_ids)
        pending, depth = list(range(len(station_ids))), 0
        while pending:
            asked = [i for i in pending if depth < len(buckets[i])]
            answers = self._each("latest_window", [(station_ids[i], size, buckets[i][depth]) for i in asked])
            for i, rows in zip(asked, answers, strict=True):
                found[i] = rows[0] if rows else None
            pending = [i for i, rows in zip(asked, answers, strict=True) if not rows]
            depth += 1
        return found

    def latest_readings(self, partitions: Sequence[tuple[str, date]]) -> list[Row | None]:
        """The newest reading of each (station, day) partition (None: it is empty)."""
        found = self._each("latest_reading", partitions)
        return [rows[0] if rows else None for rows in found]

    def readings(self, station_id: str, days_newest_first: Sequence[date], start: datetime, end: datetime, limit: int):
        """The newest ``limit`` readings of ``start <= ts < end``, newest first: one day's partition after
        another, each asked only for what is still missing."""
        rows: list[Row] = []
        for day in days_newest_first:
            if len(rows) >= limit:
                break
            rows += self._rows("readings", (station_id, day, start, end, limit - len(rows)))
        return rows

    def windows(
        self,
        station_id: str,
        size: str,
        buckets_newest_first: Sequence[str],
        start: datetime,
        end: datetime,
        limit: int,
    ) -> list[Row]:
        """The newest ``limit`` aggregate rows of ``size`` with ``start <= window_start < end``, newest first: one
        bucket's partition after another, each asked only for what is still missing."""
        rows: list[Row] = []
        for bucket in buckets_newest_first:
            if len(rows) >= limit:
                break
            rows += self._rows("windows", (station_id, size, bucket, start, end, limit - len(rows)))
        return rows

    def station_alerts(self, station_id: str, limit: int) -> list[Row]:
        return self._rows("station_alerts", (station_id, limit))

    def alerts_of_stations(self, station_ids: Sequence[str], limit: int) -> list[list[Row]]:
        return self._each("station_alerts", [(s, limit) for s in station_ids])

    def day_alerts(self, day: date, limit: int) -> list[Row]:
        return self._rows("day_alerts", (day, limit))
