"""replay_quarantine: re-publish quarantined raw records to the raw topic, after the cause is fixed.

raw_to_mongo keeps every record it rejects in the Delta quarantine table (``paths.quarantine``,
rows of :data:`jobs.transforms.quarantine.QUARANTINE_SCHEMA`): the original key and bytes, the
Kafka coordinates and the reason. Once the cause is fixed on the checking side (a schema version
now accepted, a limit raised), this tool sends the chosen records' original key and bytes back to
``kafka.raw_topic``, unchanged, with headers naming the record they replay. (The bytes are sent as
they are: a record that was wrong at its source fails again.) raw_to_mongo then checks them again like any record:
the valid ones are upserted by ``event_id`` (a second replay changes no document), the others are
quarantined again with their reason.

Usage:
    python -m jobs.replay_quarantine --reason unknown_schema_version [--since 2026-11-30T00:00]
        [--until 2026-11-30T12:00] [--dry-run] [--config conf/pipeline.toml]

``--reason`` (repeatable) is required: only records of the named reason codes are replayed.
``--since``/``--until`` bound ``quarantined_at`` (UTC; ``--until`` excluded). ``--dry-run`` counts
what would be sent, by reason code, and sends nothing. Records quarantined more than once (the same
Kafka coordinates, e.g. after a checkpoint reset) are sent once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from jobs.config import load_config_or_report

REPLAY_HEADERS = ("aq.replay.topic", "aq.replay.partition", "aq.replay.offset", "aq.replay.reason")


def replay_messages(
    quarantine: DataFrame,
    raw_topic: str,
    reason_codes: Iterable[str],
    since: datetime | None = None,
    until: datetime | None = None,
) -> DataFrame:
    """Quarantine rows → Kafka messages for the raw topic: the original key and value, unchanged, and
    headers with the replayed record's coordinates and reason. Only rows of ``raw_topic`` with one of
    ``reason_codes``, a non-empty value, and ``since <= quarantined_at < until``; one per coordinates."""
    codes = list(reason_codes)
    if not codes:
        raise ValueError("name at least one reason code to replay")
    chosen = quarantine.where(
        (F.col("topic") == raw_topic)
        & F.col("reason_code").isin(codes)
        & F.col("value").isNotNull()
        & (F.length("value") > 0)
    )
    if since is not None:
        chosen = chosen.where(F.col("quarantined_at") >= F.lit(since))
    if until is not None:
        chosen = chosen.where(F.col("quarantined_at") < F.lit(until))
    chosen = chosen.dropDuplicates(["topic", "partition", "offset"])

    def header(name: str, value: Column) -> Column:
        return F.struct(F.lit(name).alias("key"), F.encode(value.cast("string"), "UTF-8").alias("value"))

    return chosen.select(
        F.col("key"),
        F.col("value"),
        F.array(
            *[
                header(name, F.col(column))
                for name, column in zip(REPLAY_HEADERS, ("topic", "partition", "offset", "reason"), strict=True)
            ]
        ).alias("headers"),
        F.col("reason_code"),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jobs.replay_quarantine",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", default=None)
    parser.add_argument("--reason", action="append", required=True, help="a reason code to replay (repeatable)")
    parser.add_argument("--since", type=datetime.fromisoformat, default=None, help="quarantined_at >= (UTC)")
    parser.add_argument("--until", type=datetime.fromisoformat, default=None, help="quarantined_at < (UTC)")
    parser.add_argument("--dry-run", action="store_true", help="count by reason code, send nothing")
    args = parser.parse_args(argv)
    config = load_config_or_report(args.config)
    if config is None:
        return 2
    from delta.tables import DeltaTable

    from jobs.kafka_auth import spark_kafka_options
    from jobs.session import tool_session
    from jobs.sinks import produce_to_kafka, read_delta

    spark = tool_session(config, "aqstream-replay-quarantine")
    try:
        path = str(config.paths.quarantine)
        if not DeltaTable.isDeltaTable(spark, path):
            print(f"no quarantine table at {path}: nothing to replay")
            return 0
        messages = replay_messages(
            read_delta(spark, path), config.kafka.raw_topic, args.reason, args.since, args.until
        ).persist()
        counts = {r.reason_code: r["count"] for r in messages.groupBy("reason_code").count().collect()}
        total = sum(counts.values())
        for code, n in sorted(counts.items()):
            print(f"  {code:<26} {n}")
        if args.dry_run or total == 0:
            print(
                f"{total} records would be sent to {config.kafka.raw_topic} (dry run)" if args.dry_run else "0 records"
            )
            return 0
        # readings back onto the raw topic, as a collector puts them there: the collector principal
        produce_to_kafka(messages.drop("reason_code"), spark_kafka_options(config, "collector"), config.kafka.raw_topic)
        print(f"{total} records sent to {config.kafka.raw_topic}")
        return 0
    finally:
        spark.stop()


if __name__ == "__main__":
    sys.exit(main())
