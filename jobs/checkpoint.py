"""What the jobs read from a streaming query's checkpoint folder (Spark's own files, through Hadoop's
FileSystem so object-store checkpoints work too).

``metadata`` holds the query's id (new when the checkpoint is new); ``offsets/<batch>`` is written
before batch ``<batch>`` runs (a version line, the batch's metadata JSON, then one line of end
offsets per source); ``commits/<batch>`` once it has finished. A restarted query re-reads them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import SparkSession


def _read_lines(spark: SparkSession, path: str) -> list[str] | None:
    """The lines of a checkpoint file, or None when it does not exist."""
    jvm = spark._jvm  # noqa: SLF001 - Hadoop FS, so object-store checkpoints work too
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    fs = hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())  # noqa: SLF001
    if not fs.exists(hadoop_path):
        return None
    stream = fs.open(hadoop_path)
    try:
        reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, "UTF-8"))
        lines = []
        while (line := reader.readLine()) is not None:
            lines.append(line)
        return lines
    finally:
        stream.close()


def _batch_ids(spark: SparkSession, folder: str) -> list[int]:
    jvm = spark._jvm  # noqa: SLF001
    hadoop_path = jvm.org.apache.hadoop.fs.Path(folder)
    fs = hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())  # noqa: SLF001
    if not fs.exists(hadoop_path):
        return []
    names = [status.getPath().getName() for status in fs.listStatus(hadoop_path)]
    return sorted(int(name) for name in names if name.isdigit())


def _modified_at(spark: SparkSession, path: str) -> float:
    """A checkpoint file's modification time, unix seconds."""
    jvm = spark._jvm  # noqa: SLF001
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    fs = hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())  # noqa: SLF001
    return fs.getFileStatus(hadoop_path).getModificationTime() / 1000


def query_id(spark: SparkSession, checkpoint: str) -> str:
    """The id of the query that owns ``checkpoint`` (stable across restarts, new with a new checkpoint):
    the ``txnAppId`` of the jobs' idempotent Delta appends."""
    lines = _read_lines(spark, f"{checkpoint}/metadata")
    if not lines:
        raise RuntimeError(f"no query metadata in checkpoint {checkpoint}")
    return json.loads(lines[0])["id"]


def batch_watermark(spark: SparkSession, checkpoint: str, batch_id: int) -> datetime | None:
    """The event-time watermark Spark fixed for batch ``batch_id`` (None when the file has none)."""
    lines = _read_lines(spark, f"{checkpoint}/offsets/{batch_id}")
    if not lines or len(lines) < 2:
        return None
    millis = int(json.loads(lines[1]).get("batchWatermarkMs", 0))
    return datetime.fromtimestamp(millis / 1000, tz=UTC).replace(tzinfo=None)


def kafka_offsets(value: str | Mapping[str, Any] | None) -> dict[str, dict[int, int]] | None:
    """A Kafka source's offsets as Spark writes them (``{"topic": {"0": 12, "1": 7}}``, in the
    checkpoint's ``offsets/<batch>`` files and in ``SourceProgress.endOffset``/``latestOffset``) as
    {topic: {partition: offset}}; None for no offsets or another source's shape (e.g. a file
    source's ``{"logOffset": 3}``)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if not isinstance(value, Mapping) or not value:
        return None
    offsets: dict[str, dict[int, int]] = {}
    for topic, parts in value.items():
        if not isinstance(parts, Mapping):
            return None
        try:
            offsets[topic] = {int(p): int(o) for p, o in parts.items()}
        except (TypeError, ValueError):
            return None
    return offsets


def batch_end_offsets(spark: SparkSession, checkpoint: str, batch_id: int) -> dict[str, dict[int, int]] | None:
    """The end offsets of batch ``batch_id`` of a one-Kafka-source query: {topic: {partition: offset}}."""
    lines = _read_lines(spark, f"{checkpoint}/offsets/{batch_id}")
    if not lines or len(lines) < 3:
        return None
    return kafka_offsets(lines[2])


def committed_end_offsets(spark: SparkSession, checkpoint: str) -> dict[str, dict[int, int]]:
    """The end offsets of the last committed batch of a one-Kafka-source query ({} before the first)."""
    commits = _batch_ids(spark, f"{checkpoint}/commits")
    if not commits:
        return {}
    return batch_end_offsets(spark, checkpoint, commits[-1]) or {}


@dataclass(frozen=True)
class CommittedBatch:
    """A query's last committed batch as its checkpoint records it."""

    batch_id: int
    committed_at: float  # unix seconds: when ``commits/<batch_id>`` was written
    end_offsets: dict[str, dict[int, int]] | None  # of a one-Kafka-source query
    watermark: datetime | None  # naive UTC; None when the query has no event-time watermark


def last_committed_batch(spark: SparkSession, checkpoint: str) -> CommittedBatch | None:
    """The last batch ``checkpoint`` committed (None before the first): what a stopped query has done."""
    commits = _batch_ids(spark, f"{checkpoint}/commits")
    if not commits:
        return None
    batch_id = commits[-1]
    watermark = batch_watermark(spark, checkpoint, batch_id)
    return CommittedBatch(
        batch_id=batch_id,
        committed_at=_modified_at(spark, f"{checkpoint}/commits/{batch_id}"),
        end_offsets=batch_end_offsets(spark, checkpoint, batch_id),
        watermark=None if watermark is None or watermark == datetime(1970, 1, 1) else watermark,
    )


class QueryId:
    """The id of the query that owns a checkpoint, read once (Spark writes it before the first batch
    and keeps it for the checkpoint's life): the ``txnAppId`` of a query's idempotent Delta appends."""

    def __init__(self, checkpoint: str):
        self.checkpoint = checkpoint
        self._id: str | None = None

    def of(self, spark: SparkSession) -> str:
        if self._id is None:
            self._id = query_id(spark, self.checkpoint)
        return self._id
