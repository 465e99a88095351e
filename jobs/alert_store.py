"""The CDC job's alerts at their edges: the changes sent to Kafka, then written to (or deleted from)
both Cassandra tables (``jobs.cdc_store``).

Order, for no loss: Kafka first, Cassandra second. The store is what the next batch compares with,
so a crash between the two leaves the change unstored and the replayed batch sends it again, the
same key and the same bytes (``alerts.alert_record`` holds no wall-clock time): the topic is
at-least-once per key, and compacted, so it keeps the last record of each key. The reverse order
could lose a change: stored, then the crash, then a replay that finds nothing left to send.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from jobs.cdc_store import CdcStore
from jobs.config import PipelineConfig
from jobs.kafka_auth import kafka_python_settings
from jobs.retries import with_retries
from jobs.runner import StepTimes
from jobs.sinks import KafkaRecordSender
from jobs.transforms import alerts as AL


def alerts_sender(config: PipelineConfig) -> KafkaRecordSender:
    client = kafka_python_settings(config, "cdc_to_cassandra")
    return KafkaRecordSender(client, config.kafka.alerts_topic, "kafka.alerts_topic")


def apply_alert_changes(
    store: CdcStore,
    changes: list[tuple[str, dict[str, Any]]],
    sender: KafkaRecordSender,
    updated_at: datetime,
    times: StepTimes,
) -> None:
    """Send every change to Kafka, then upsert the raised and corrected alerts into both tables and
    delete the retracted ones from both."""
    if not changes:
        return
    with times.step("send alerts"):
        records = [AL.alert_record(status, alert) for status, alert in changes]
        with_retries("kafka alerts send", lambda: sender.send(records))
    upserts = [{**alert, "updated_at": updated_at} for status, alert in changes if status != AL.RETRACTED]
    retracted = [alert for status, alert in changes if status == AL.RETRACTED]
    with times.step("write alerts"):
        if upserts:  # the store retries each statement itself
            store.upsert_alerts(upserts)
        if retracted:
            store.delete_alerts(retracted)


def status_counts(changes: list[tuple[str, Mapping[str, Any]]]) -> dict[str, int]:
    """``alerts_raised``, ``alerts_corrected``, ``alerts_retracted``: a batch's alert changes by status."""
    counts = Counter(status for status, _ in changes)
    return {f"alerts_{status}": counts[status] for status in AL.STATUSES}
