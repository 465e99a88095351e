"""Each query's committed end offsets, committed to a Kafka consumer group where Kafka's tools look.

Spark's Kafka source keeps its offsets in the query's checkpoint and never commits them to Kafka, so
``kafka-consumer-groups.sh --describe`` and every Kafka UI see nothing of our jobs. After each batch
the progress listener (:mod:`jobs.progress`) hands the batch's progress to a
:class:`GroupOffsetCommitter`, which commits every Kafka source's ``endOffset`` to the group
``monitoring.consumer_group(<query name>)`` (``aqstream.raw_to_mongo``; one group per query, so the
two queries of a job over one topic each show their own lag). Spark posts a progress event after the
batch's entry in the checkpoint's commit log is written, so these are the offsets the checkpoint has
committed: ``CURRENT-OFFSET`` is where the query resumes and ``LAG`` is what it has not read yet.

Reporting only: no job reads these groups (a restarted query resumes from its checkpoint). The
commits run on Spark's listener thread, never on a batch's path, and a failed commit logs a warning
and never stops the job. The groups are "simple" ones (a commit without joining: no member, no
rebalance), one long-lived client per query, created on the first commit and closed when the query
terminates or the job ends.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from kafka import KafkaConsumer
from kafka.structs import OffsetAndMetadata, TopicPartition
from pyspark.sql.streaming import StreamingQuery

from jobs.config import MonitoringConfig
from jobs.progress import progress_record

log = logging.getLogger("aqstream.monitoring")

# the leader epoch is not known here (Spark's offsets do not carry it); -1 is Kafka's "none"
NO_LEADER_EPOCH = -1


def group_offsets(record: Mapping[str, Any]) -> dict[TopicPartition, OffsetAndMetadata]:
    """A :func:`jobs.progress.progress_record` → the offsets to commit for its query: each Kafka
    source's end offset per partition (Kafka's committed offset is the next one to read, as Spark's
    ``endOffset``), with the batch id as the commit's metadata. A partition that two sources of one
    query name is committed at the lower offset (the larger lag). Empty for a query without Kafka
    sources."""
    ends: dict[TopicPartition, int] = {}
    for source in record.get("sources") or []:
        for topic, partitions in (source.get("end_offset") or {}).items():
            for partition, offset in partitions.items():
                tp = TopicPartition(topic, partition)
                ends[tp] = min(offset, ends.get(tp, offset))
    metadata = f"spark batch {record.get('batch_id')}"
    return {tp: OffsetAndMetadata(offset, metadata, NO_LEADER_EPOCH) for tp, offset in sorted(ends.items())}


class GroupOffsetCommitter:
    """Commits each query's latest batch end offsets to its consumer group; never raises.

    Called from the listener thread (:meth:`commit`, :meth:`close_query`) and, when the job ends,
    from its main thread (:meth:`commit_last`, :meth:`close`): a lock keeps them apart, and a batch
    older than or equal to one already committed for its query is not committed again (Spark may
    deliver the last events after the job has committed its queries' last progress itself).
    """

    def __init__(self, client: Mapping[str, Any], monitoring: MonitoringConfig, timeout_ms: int = 10_000):
        self.client = client  # kafka-python settings: the job's principal (jobs.kafka_auth.kafka_python_settings)
        self.monitoring = monitoring
        self.timeout_ms = timeout_ms
        self._lock = threading.Lock()
        self._clients: dict[str, KafkaConsumer] = {}  # query name → its group's client
        self._committed_batch: dict[str, int] = {}  # query name → the batch id last committed
        self._closed = False

    def commit(self, record: Mapping[str, Any]) -> bool:
        """Commit one progress record's end offsets to its query's group. True when committed; False
        when there was nothing new to commit or the commit failed (logged as a warning)."""
        query, batch_id = record.get("query"), record.get("batch_id")
        offsets = group_offsets(record)
        if not query or batch_id is None or not offsets:
            return False
        with self._lock:
            if self._closed or batch_id <= self._committed_batch.get(query, -1):
                return False
            group = self.monitoring.consumer_group(query)
            try:
                self._client(query, group).commit(offsets=offsets, timeout_ms=self.timeout_ms)
            except Exception as exc:  # noqa: BLE001 - reporting only: never stops the job
                log.warning("could not commit %s batch %s to consumer group %s: %r", query, batch_id, group, exc)
                self._close_client(query)  # a fresh client on the next batch
                return False
            self._committed_batch[query] = batch_id
            return True

    def commit_last(self, queries: Iterable[StreamingQuery]) -> None:
        """When the job ends: commit each (stopped) query's ``lastProgress``, whose event the listener
        may not have received before the process exits."""
        for query in queries:
            try:
                last = query.lastProgress
            except Exception as exc:  # noqa: BLE001 - e.g. the JVM is gone: the job's own error matters
                log.warning("no last progress of query %s to commit: %r", query, exc)
                continue
            if last:
                self.commit(progress_record(last))

    def close_query(self, query: str) -> None:
        with self._lock:
            self._close_client(query)

    def close(self) -> None:
        """Close every client; later commits are ignored (the job is ending)."""
        with self._lock:
            self._closed = True
            for query in list(self._clients):
                self._close_client(query)

    def _client(self, query: str, group: str) -> KafkaConsumer:
        client = self._clients.get(query)
        if client is None:
            # no subscription and no poll: the client only commits, as a "simple" group with no members
            client = KafkaConsumer(
                **self.client,
                group_id=group,
                client_id=f"{group}-offsets",
                enable_auto_commit=False,
                api_version_auto_timeout_ms=self.timeout_ms,  # the commit itself is bounded by timeout_ms
            )
            self._clients[query] = client
        return client

    def _close_client(self, query: str) -> None:
        client = self._clients.pop(query, None)
        if client is not None:
            try:
                client.close(autocommit=False)
            except Exception as exc:  # noqa: BLE001 - closing a reporting client must not stop the job
                log.warning("closing the consumer-group client of %s: %r", query, exc)


def committer_for(client: Mapping[str, Any], monitoring: MonitoringConfig) -> GroupOffsetCommitter | None:
    """The job's committer, or None when ``monitoring.consumer_group_commits`` is off."""
    return GroupOffsetCommitter(client, monitoring) if monitoring.consumer_group_commits else None
