"""Move the aggregates of the old layout (``aggregates_by_station``, one partition per station) into the
bucketed table (``aggregates_by_station_bucket``, schemas/cql/005) and its buckets table.

Usage:
    python -m jobs.migrate_aggregates [--config conf/pipeline.toml]

``python -m jobs.setup cassandra`` runs it after the CQL whenever the old table exists and holds rows, so
an upgrade needs nothing more; run it by hand to move a table without the rest of setup.

CQL has no ``INSERT ... SELECT``: the rows are paged out of the old table with the driver, each one gets
its bucket from :func:`schemas.cassandra.window_bucket` (the function the CDC job writes with), and is
written with a prepared insert, then deleted from the old table. Each insert carries the old row's write
time (``USING TIMESTAMP``), so a window the job has already rewritten in the new table keeps the newer
values, and a migration stopped half-way simply runs again: what was moved is gone from the old table,
what was not is moved. A second run finds the old table empty and changes nothing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from cassandra.query import UNSET_VALUE, SimpleStatement

from jobs.config import PipelineConfig, load_config_or_report
from schemas.cassandra import (
    AGGREGATE_BUCKETS_TABLE,
    UNBUCKETED_AGGREGATES_TABLE,
    aggregates_table_columns,
    window_bucket,
)

PAGE_SIZE = 500


@dataclass(frozen=True)
class Tables:
    """Where the rows come from and go to (the tests use their own keyspace)."""

    keyspace: str
    old: str = UNBUCKETED_AGGREGATES_TABLE
    new: str = "aggregates_by_station_bucket"
    buckets: str = AGGREGATE_BUCKETS_TABLE


def old_table_exists(session, tables: Tables) -> bool:
    keyspace = session.cluster.metadata.keyspaces.get(tables.keyspace)
    return keyspace is not None and tables.old in keyspace.tables


def old_table_has_rows(session, tables: Tables) -> bool:
    return session.execute(f"SELECT station_id FROM {tables.keyspace}.{tables.old} LIMIT 1").one() is not None


def _old_rows(session, tables: Tables, columns: list[str]) -> Iterator[dict]:
    """Every row of the old table with the write time of its ``updated_at`` (the job writes whole rows),
    paged by the driver."""
    query = SimpleStatement(
        f"SELECT {', '.join(columns)}, writetime(updated_at) AS written FROM {tables.keyspace}.{tables.old}",
        fetch_size=PAGE_SIZE,
    )
    for row in session.execute(query, timeout=60):
        yield row._asdict()


def move_aggregates(session, tables: Tables) -> int:
    """Move every row of ``tables.old`` into ``tables.new`` (and its bucket into ``tables.buckets``);
    the number of rows moved."""
    columns = [name for name, _ in aggregates_table_columns() if name != "bucket"]
    target = [*columns, "bucket"]
    insert = session.prepare(
        f"INSERT INTO {tables.keyspace}.{tables.new} ({', '.join(target)}) "
        f"VALUES ({', '.join('?' for _ in target)}) USING TIMESTAMP ?"
    )
    remember = session.prepare(
        f"INSERT INTO {tables.keyspace}.{tables.buckets} (station_id, window_size, bucket) VALUES (?, ?, ?)"
    )
    delete = session.prepare(
        f"DELETE FROM {tables.keyspace}.{tables.old} WHERE station_id = ? AND window_size = ? AND window_start = ?"
    )
    moved = 0
    buckets: set[tuple[str, str, str]] = set()
    for row in _old_rows(session, tables, columns):
        bucket = window_bucket(row["window_size"], row["window_start"])
        # a null left unset writes no tombstone
        values = [UNSET_VALUE if row[c] is None else row[c] for c in columns]
        session.execute(insert, [*values, bucket, row["written"]])
        key = (row["station_id"], row["window_size"], bucket)
        if key not in buckets:
            session.execute(remember, key)
            buckets.add(key)
        session.execute(delete, (row["station_id"], row["window_size"], row["window_start"]))
        moved += 1
    return moved


def migrate_if_needed(session, tables: Tables) -> int | None:
    """Move the old table's rows when it exists and holds any; None when there is nothing to move."""
    if not old_table_exists(session, tables) or not old_table_has_rows(session, tables):
        return None
    return move_aggregates(session, tables)


def migrate(config: PipelineConfig) -> int | None:
    """:func:`migrate_if_needed` on the configured cluster and keyspace, as the admin role (a set-up step)."""
    from cassandra.query import named_tuple_factory

    from jobs.cassandra_client import connect

    cluster, session = connect(config, "admin", row_factory=named_tuple_factory)
    try:
        tables = Tables(config.cassandra.keyspace, new=config.cassandra.aggregates_table)
        return migrate_if_needed(session, tables)
    finally:
        cluster.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jobs.migrate_aggregates",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", default=None, help="pipeline config (default conf/pipeline.toml)")
    args = parser.parse_args(argv)
    config = load_config_or_report(args.config)
    if config is None:
        return 2
    moved = migrate(config)
    print(f"aggregates moved to {config.cassandra.aggregates_table}: {moved or 0} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
