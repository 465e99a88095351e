"""What each streaming query is doing: a ``StreamingQueryListener`` and the registry of latest values.

For every progress event (a batch ran) and idle event (a trigger found nothing new) the listener
writes one JSON line on the logger ``aqstream.progress``: the query's name, batch id, input rows,
input and processing rates, batch duration (``durationMs``), the event-time watermark, and for each
Kafka source the **records behind latest** (per topic, summed over partitions: the source's
``latestOffset`` minus its ``endOffset``, i.e. what was in the topic when the batch was planned and
that the batch did not read). It joins the batch's own figures that the job logged with
:func:`jobs.runner.log_batch` (per-step wall times and counts: valid, quarantined, late, …).

The latest values and running totals per query live in :data:`REGISTRY`, a plain thread-safe
object: ``log_batch`` feeds it from the batch thread, the listener from Spark's listener thread, and
:mod:`jobs.metrics` reads it to serve Prometheus gauges. Nothing here runs on a batch's Spark jobs:
Spark posts the events asynchronously after the batch, on its listener bus.

Given a :class:`jobs.group_offsets.GroupOffsetCommitter`, the listener also commits each batch's
end offsets to the query's Kafka consumer group, for Kafka's own tools.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pyspark.sql.streaming import StreamingQueryListener

from jobs.checkpoint import kafka_offsets

if TYPE_CHECKING:
    from jobs.group_offsets import GroupOffsetCommitter

PROGRESS_LOG = logging.getLogger("aqstream.progress")
log = logging.getLogger("aqstream.monitoring")


# --- pure helpers: Spark's progress JSON and Kafka's offsets JSON -----------------------------------


Offsets = str | Mapping[str, Any] | None


def records_behind(end: Offsets, latest: Offsets) -> dict[str, int] | None:
    """Records behind latest per topic: sum over partitions of ``latest - end`` (never negative).

    ``end`` is where the batch stopped reading, ``latest`` the topic's end when the batch was
    planned (Spark leaves it null when it did not look, e.g. before the first batch). A partition
    that ``end`` does not name yet (new partitions) is left out: its start is not known here.
    None when either side is missing or not Kafka offsets.
    """
    end_offsets, latest_offsets = kafka_offsets(end), kafka_offsets(latest)
    if end_offsets is None or latest_offsets is None:
        return None
    behind = {}
    for topic, parts in latest_offsets.items():
        done = end_offsets.get(topic, {})
        behind[topic] = sum(max(offset - done[p], 0) for p, offset in parts.items() if p in done)
    return behind


def iso_seconds(value: str | None) -> float | None:
    """Spark's progress timestamps (``2026-11-24T10:00:00.000Z``) as unix seconds."""
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def progress_record(progress: Mapping[str, Any]) -> dict[str, Any]:
    """One progress JSON (``StreamingQueryProgress.json``, ``StreamingQuery.lastProgress``) → the
    fields the log line and the metrics use."""
    duration_ms = dict(progress.get("durationMs") or {})
    watermark = (progress.get("eventTime") or {}).get("watermark")
    sources = []
    for source in progress.get("sources") or []:
        sources.append(
            {
                "description": source.get("description"),
                "input_rows": source.get("numInputRows"),
                "end_offset": kafka_offsets(source.get("endOffset")),
                "latest_offset": kafka_offsets(source.get("latestOffset")),
                "records_behind": records_behind(source.get("endOffset"), source.get("latestOffset")),
            }
        )
    trigger_ms = duration_ms.get("triggerExecution")
    return {
        "query": progress.get("name"),
        "id": progress.get("id"),
        "batch_id": progress.get("batchId"),
        "timestamp": progress.get("timestamp"),
        "input_rows": progress.get("numInputRows"),
        "input_rows_per_second": _number(progress.get("inputRowsPerSecond")),
        "processed_rows_per_second": _number(progress.get("processedRowsPerSecond")),
        "batch_seconds": None if trigger_ms is None else trigger_ms / 1000,
        "duration_ms": duration_ms,
        "watermark": watermark,
        "watermark_seconds": iso_seconds(watermark),
        "sources": sources,
    }


def _number(value: Any) -> float | None:
    # Spark writes NaN/Infinity rates (no time elapsed) as strings in its JSON
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


# --- the registry ---------------------------------------------------------------------------------


class QueryState:
    """What is known of one query: its latest progress, its latest batch's own figures, totals."""

    def __init__(self, name: str):
        self.name = name
        self.active = False
        self.idle = False
        self.exception: str | None = None
        self.progress: dict[str, Any] | None = None  # the latest progress_record
        self.progress_at: float | None = None  # when it arrived (unix seconds)
        self.batch: dict[str, Any] | None = None  # the latest log_batch: batch_id, rows, seconds, steps, counts
        # the last few log_batch figures by batch id: a progress event arrives on the listener's thread after
        # its batch has ended, when the next batch may already have logged its own
        self.recent: dict[int, dict[str, Any]] = {}
        self.batches_total = 0  # progress events (batches Spark ran)
        self.input_rows_total = 0
        self.counts_total: dict[str, int] = {}  # log_batch counts summed over this process's batches
        self.trigger_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return copy.deepcopy({k: v for k, v in self.__dict__.items() if k != "recent"})


RECENT_BATCHES = 16  # log_batch figures kept per query for their progress event


class Registry:
    """Latest values and totals per query name, shared by the batch threads, the listener, metrics."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queries: dict[str, QueryState] = {}
        self._names: dict[str, str] = {}  # query id → name (idle and terminated events carry no name)

    def _state(self, name: str) -> QueryState:
        state = self._queries.get(name)
        if state is None:
            state = self._queries[name] = QueryState(name)
        return state

    def name_of(self, query_id: str) -> str | None:
        with self._lock:
            return self._names.get(query_id)

    def set_trigger(self, name: str, seconds: float | None) -> None:
        with self._lock:
            self._state(name).trigger_seconds = seconds

    def record_batch(
        self, name: str, batch_id: int, rows: int | None, seconds: float, steps: Mapping[str, float], counts: Mapping
    ) -> None:
        """From :func:`jobs.runner.log_batch`, on the batch's thread: a few dict updates under a lock."""
        with self._lock:
            state = self._state(name)
            state.batch = {"batch_id": batch_id, "rows": rows, "seconds": seconds, "steps": dict(steps), **counts}
            state.recent[batch_id] = state.batch
            for old_id in sorted(state.recent)[:-RECENT_BATCHES]:
                del state.recent[old_id]
            for key, value in counts.items():
                if isinstance(value, int) and not isinstance(value, bool):
                    state.counts_total[key] = state.counts_total.get(key, 0) + value
                elif isinstance(value, Mapping):  # e.g. quarantined per reason
                    for sub, n in value.items():
                        total = f"{key}.{sub}"
                        state.counts_total[total] = state.counts_total.get(total, 0) + int(n)

    def record_started(self, query_id: str, name: str) -> None:
        with self._lock:
            self._names[query_id] = name
            state = self._state(name)
            state.active, state.idle, state.exception = True, False, None

    def record_progress(self, record: Mapping[str, Any]) -> dict[str, Any] | None:
        """Store a progress_record; return the log_batch figures of the same batch (for the log line), or None
        when that batch logged none."""
        name = record.get("query") or self._names.get(str(record.get("id")))
        if name is None:
            return None
        with self._lock:
            state = self._state(name)
            state.active, state.idle = True, False
            state.progress, state.progress_at = dict(record), time.time()
            state.batches_total += 1
            state.input_rows_total += int(record.get("input_rows") or 0)
            return copy.deepcopy(state.recent.get(record.get("batch_id")))

    def record_idle(self, name: str) -> dict[str, Any] | None:
        with self._lock:
            state = self._state(name)
            state.idle = True
            return copy.deepcopy(state.progress)

    def record_terminated(self, name: str, exception: str | None) -> None:
        with self._lock:
            state = self._state(name)
            state.active, state.exception = False, exception

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {name: state.as_dict() for name, state in self._queries.items()}

    def clear(self) -> None:
        with self._lock:
            self._queries.clear()
            self._names.clear()


REGISTRY = Registry()


# --- the listener ---------------------------------------------------------------------------------


class ProgressListener(StreamingQueryListener):
    """Logs every progress and idle event as one JSON line and keeps the latest values in a registry.

    Spark calls it on its listener bus thread (through Py4J's callback server): never on a batch's
    path. A failure here is logged, never raised into Spark. With ``group_offsets`` it commits each
    batch's end offsets to the query's consumer group after logging it, and closes the query's client
    when the query terminates.
    """

    def __init__(
        self,
        registry: Registry = REGISTRY,
        logger: logging.Logger = PROGRESS_LOG,
        group_offsets: GroupOffsetCommitter | None = None,
    ):
        self.registry = registry
        self.logger = logger
        self.group_offsets = group_offsets

    def onQueryStarted(self, event: Any) -> None:
        try:
            self.registry.record_started(str(event.id), event.name or str(event.id))
        except Exception:  # noqa: BLE001 - never into Spark's listener bus
            log.exception("progress listener: query started")

    def onQueryProgress(self, event: Any) -> None:
        try:
            self.on_progress(json.loads(event.progress.json))
        except Exception:  # noqa: BLE001
            log.exception("progress listener: query progress")

    def onQueryIdle(self, event: Any) -> None:
        try:
            self.on_idle(str(event.id), event.timestamp)
        except Exception:  # noqa: BLE001
            log.exception("progress listener: query idle")

    def onQueryTerminated(self, event: Any) -> None:
        try:
            name = self.registry.name_of(str(event.id)) or str(event.id)
            self.registry.record_terminated(name, event.exception)
            if self.group_offsets is not None:
                self.group_offsets.close_query(name)
        except Exception:  # noqa: BLE001
            log.exception("progress listener: query terminated")

    def on_progress(self, progress: Mapping[str, Any]) -> dict[str, Any]:
        """One progress JSON dict → the registry and one log line (the line's record is returned)."""
        record = progress_record(progress)
        if record["query"] is None:
            record["query"] = self.registry.name_of(str(record["id"]))
        batch = self.registry.record_progress(record)
        line = {"event": "progress", **_without_offsets(record), "batch": batch}
        self.logger.info(json.dumps(line, sort_keys=True))
        if self.group_offsets is not None:
            self.group_offsets.commit(record)
        return line

    def on_idle(self, query_id: str, timestamp: str | None) -> dict[str, Any]:
        """An idle trigger: the line repeats the latest lag and watermark (they may have changed since)."""
        name = self.registry.name_of(query_id) or query_id
        last = self.registry.record_idle(name) or {}
        line = {
            "event": "idle",
            "query": name,
            "id": query_id,
            "timestamp": timestamp,
            "batch_id": last.get("batch_id"),
            "watermark": last.get("watermark"),
            "sources": [
                {"description": s["description"], "records_behind": s["records_behind"]}
                for s in last.get("sources", [])
            ],
        }
        self.logger.info(json.dumps(line, sort_keys=True))
        return line


def _without_offsets(record: Mapping[str, Any]) -> dict[str, Any]:
    # the line keeps the lag, not every partition's offsets (the checkpoint has those)
    return {
        **record,
        "sources": [{k: v for k, v in s.items() if not k.endswith("_offset")} for s in record["sources"]],
    }


def register(
    spark: Any, registry: Registry = REGISTRY, group_offsets: GroupOffsetCommitter | None = None
) -> ProgressListener:
    """Add a :class:`ProgressListener` feeding ``registry`` (and committing to consumer groups with
    ``group_offsets``, when given) to ``spark``'s streaming query manager."""
    listener = ProgressListener(registry, group_offsets=group_offsets)
    spark.streams.addListener(listener)
    return listener
