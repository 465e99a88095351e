"""What landed where: counts per store, quarantine reasons, latest readings per city, hourly aggregates.

Usage:
    python -m jobs.report [--config conf/pipeline.toml] [--station beijing-dongsi]

Reads every store named by the pipeline config (Kafka topics, MongoDB, Delta, Cassandra) and
prints a summary; :func:`store_counts` returns the same figures for tests.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from typing import Any

from jobs.config import PipelineConfig, load_config_or_report
from jobs.kafka_auth import kafka_python_settings
from jobs.mongo_auth import mongo_client
from jobs.redact import install_excepthook, redact
from jobs.sinks import read_delta
from jobs.topics import topic_size
from jobs.transforms.raw_readings import bronze_readings
from schemas.cassandra import AGGREGATE_BUCKETS_TABLE


def store_counts(config: PipelineConfig, spark) -> dict[str, Any]:
    # offsets only: the monitor principal, which may describe the topics but read no record
    kafka, monitor = config.kafka, kafka_python_settings(config, "monitor")
    counts: dict[str, Any] = {
        "kafka_raw": topic_size(monitor, kafka.raw_topic),
        "kafka_quarantine": topic_size(monitor, kafka.quarantine_topic),
        "kafka_cdc": topic_size(monitor, kafka.cdc_topic),
    }
    client = mongo_client(config, "raw_to_mongo", serverSelectionTimeoutMS=10000)
    try:
        collection = client[config.mongo.database][config.mongo.collection]
        counts["mongo_documents"] = collection.count_documents({})
        counts["latest_per_city"] = list(
            collection.aggregate(
                [
                    {"$sort": {"ts": -1}},
                    {
                        "$group": {
                            "_id": "$city",
                            "ts": {"$first": "$ts"},
                            "station": {"$first": "$station_id"},
                            "pm25": {"$first": "$pm25"},
                            "pm10": {"$first": "$pm10"},
                        }
                    },
                    {"$sort": {"_id": 1}},
                ]
            )
        )
    finally:
        client.close()
    bronze = _delta(spark, str(config.paths.bronze))
    counts["bronze_records"] = bronze.count() if bronze is not None else 0
    counts["bronze_rows"] = bronze_readings(bronze).count() if bronze is not None else 0
    quarantine = _delta(spark, str(config.paths.quarantine))
    counts["quarantine_reasons"] = (
        Counter(r.reason_code for r in quarantine.select("reason_code").collect()) if quarantine else Counter()
    )
    counts["quarantine_rows"] = sum(counts["quarantine_reasons"].values())
    cluster, session = _reader_session(config)
    try:
        counts["cassandra_readings"] = session.execute(f"SELECT COUNT(*) FROM {config.cassandra.readings_table}").one()[
            0
        ]
        counts["cassandra_aggregates"] = session.execute(
            f"SELECT COUNT(*) FROM {config.cassandra.aggregates_table}"
        ).one()[0]
    finally:
        cluster.shutdown()
    return counts


def hourly_aggregates(config: PipelineConfig, station_id: str, limit: int = 5) -> list[Any]:
    cluster, session = _reader_session(config)
    try:
        # the station's 1 h buckets newest first, each partition asked for what is still missing
        buckets = session.execute(
            f"SELECT bucket FROM {AGGREGATE_BUCKETS_TABLE} WHERE station_id = %s AND window_size = '1h'", (station_id,)
        )
        rows: list[Any] = []
        for bucket in buckets:
            if len(rows) >= limit:
                break
            rows += session.execute(
                "SELECT station_id, window_start, pm25_count, pm25_mean, pm25_max, aqi_us, aqi_us_category "
                f"FROM {config.cassandra.aggregates_table} WHERE station_id = %s AND window_size = '1h' AND bucket = %s"
                " LIMIT %s",
                (station_id, bucket.bucket, limit - len(rows)),
            )
        return rows
    finally:
        cluster.shutdown()


def _reader_session(config: PipelineConfig):
    """The keyspace as the read-only role, rows as named tuples."""
    from cassandra.query import named_tuple_factory

    from jobs.cassandra_client import connect

    return connect(config, "reader", keyspace=config.cassandra.keyspace, row_factory=named_tuple_factory)


def _delta(spark, path: str):
    from delta.tables import DeltaTable

    return read_delta(spark, path) if DeltaTable.isDeltaTable(spark, path) else None


def _delta_count(spark, path: str) -> int:
    table = _delta(spark, path)
    return table.count() if table is not None else 0


def print_report(config: PipelineConfig, counts: dict[str, Any], hourly: list[Any], station_id: str) -> None:
    print(redact(report_text(config, counts, hourly, station_id)))


def report_text(config: PipelineConfig, counts: dict[str, Any], hourly: list[Any], station_id: str) -> str:
    k, m, c = config.kafka, config.mongo, config.cassandra
    rows = [
        (f"Kafka     {k.raw_topic}", counts["kafka_raw"], "messages"),
        (f"MongoDB   {m.database}.{m.collection}", counts["mongo_documents"], "documents"),
        ("Delta     bronze", counts["bronze_rows"], f"rows (one per reading; {counts['bronze_records']} records)"),
        ("Delta     quarantine", counts["quarantine_rows"], "rows"),
        (f"Kafka     {k.quarantine_topic}", counts["kafka_quarantine"], "messages"),
        (f"Kafka     {k.cdc_topic}", counts["kafka_cdc"], "Debezium events (with tombstones)"),
        (f"Cassandra {c.keyspace}.{c.readings_table}", counts["cassandra_readings"], "rows"),
        (f"Cassandra {c.keyspace}.{c.aggregates_table}", counts["cassandra_aggregates"], "rows (1h and 1d windows)"),
    ]
    lines = ["What landed where:"]
    for name, count, unit in rows:
        lines.append(f"  {name:<50} {count:>8}  {unit}")
    lines.append("\nQuarantine reasons:")
    for code, n in counts["quarantine_reasons"].most_common():
        lines.append(f"  {code:<26} {n}")
    lines.append("\nLatest reading per city (MongoDB):")
    for row in counts["latest_per_city"]:
        lines.append(
            f"  {str(row['_id']):<18} {row['ts']:%Y-%m-%d %H:%M}Z  {row['station']:<34} "
            f"pm25={row['pm25']}  pm10={row['pm10']}"
        )
    lines.append(f"\nHourly aggregates of {station_id} (Cassandra, newest first):")
    for row in hourly:
        lines.append(
            f"  {row.window_start:%Y-%m-%d %H:%M}Z  n={row.pm25_count}  pm25 mean={row.pm25_mean}  "
            f"max={row.pm25_max}  US AQI={row.aqi_us} ({row.aqi_us_category})"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jobs.report", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default=None)
    parser.add_argument("--station", default="beijing-dongsi", help="station whose hourly aggregates to show")
    args = parser.parse_args(argv)
    install_excepthook()
    config = load_config_or_report(args.config)
    if config is None:
        return 2
    from jobs.session import tool_session

    spark = tool_session(config, "aqstream-report")
    try:
        counts = store_counts(config, spark)
    finally:
        spark.stop()
    print_report(config, counts, hourly_aggregates(config, args.station), args.station)
    return 0


if __name__ == "__main__":
    sys.exit(main())
