"""Where readings go: Kafka (with a local spool when it is unreachable) or an NDJSON file.

Kafka: ``acks=all``, idempotent producer, key = ``station_id``, gzip (needs no extra library).
Each batch is flushed and every record's delivery checked; what Kafka did not acknowledge within
the delivery timeout is appended to a spool file (one JSON reading per line, fsynced), and the
spool is sent first on the next batch or the next start, in order, then deleted. SIGINT/SIGTERM
end the collector through :meth:`KafkaSink.close`, which flushes and spools the rest, so a stop
loses nothing. Re-sending a spooled reading that Kafka had in fact stored (its ack lost) can
double it in the topic: the sinks downstream are idempotent by ``event_id``.

:class:`SentState` remembers the newest ``ts`` delivered (or spooled) per station, so a restarted
API collector neither re-sends what it sent nor leaves a gap (it asks the API back to there).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

log = logging.getLogger("collectors.sink")


class KafkaSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    bootstrap_servers: str  # both from the pipeline config (conf/pipeline.toml) unless the command line says
    topic: str
    compression_type: str = "gzip"
    linger_ms: int = Field(default=20, ge=0)
    request_timeout_ms: int = Field(default=10_000, gt=0)
    delivery_timeout_ms: int = Field(default=30_000, gt=0)
    max_block_ms: int = Field(default=10_000, gt=0)  # send() waiting for metadata of an absent broker
    batch_size: int = Field(default=500, gt=0)  # readings per flush
    # the collector principal's kafka-python SASL settings (jobs.kafka_auth.kafka_python_security); never shown
    security: dict[str, Any] = Field(default_factory=dict, repr=False)

    @model_validator(mode="after")
    def _delivery_covers_a_request(self) -> KafkaSettings:
        # the Kafka producer refuses this combination; say so at start, naming the field
        if self.delivery_timeout_ms < self.linger_ms + self.request_timeout_ms:
            raise ValueError(
                f"delivery_timeout_ms ({self.delivery_timeout_ms}) must be at least linger_ms + request_timeout_ms "
                f"({self.linger_ms + self.request_timeout_ms})"
            )
        return self


@dataclass
class SendReport:
    sent: int = 0
    spooled: int = 0
    from_spool: int = 0

    def add(self, other: SendReport) -> None:
        self.sent += other.sent
        self.spooled += other.spooled
        self.from_spool += other.from_spool


def epoch_ms() -> int:
    return int(time.time() * 1000)


class Spool:
    """Readings Kafka did not take, in files ``spool-<epoch ms>-<pid>.ndjson``, oldest first."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def files(self) -> list[Path]:
        return sorted(self.directory.glob("spool-*.ndjson"))

    def write(self, readings: list[dict[str, Any]]) -> Path | None:
        if not readings:
            return None
        path = self.directory / f"spool-{epoch_ms():015d}-{os.getpid()}.ndjson"
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            for reading in readings:
                handle.write(json.dumps(reading, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)  # a crash mid-write leaves a .tmp, never a half spool file
        log.warning("spooled %d readings to %s", len(readings), path)
        return path

    @staticmethod
    def read(path: Path) -> list[dict[str, Any]]:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def pending_count(self) -> int:
        return sum(len(self.read(p)) for p in self.files())


class SentState:
    """Newest measurement time handed over per station (JSON file)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.newest: dict[str, str] = json.loads(self.path.read_text()) if self.path.is_file() else {}

    def is_new(self, reading: dict[str, Any]) -> bool:
        newest = self.newest.get(reading["station_id"])
        return newest is None or _ts(reading["ts"]) > _ts(newest)

    def oldest_newest(self) -> datetime | None:
        return min((_ts(v) for v in self.newest.values()), default=None)

    def record(self, readings: Iterable[dict[str, Any]]) -> None:
        for reading in readings:
            if self.is_new(reading):
                self.newest[reading["station_id"]] = reading["ts"]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.newest, indent=1, sort_keys=True))
        tmp.replace(self.path)


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class NdjsonSink:
    """``--dry-run``/``--out``: readings as NDJSON lines (stdout when no file)."""

    def __init__(self, handle: IO[str]):
        self.handle = handle

    def send(self, readings: list[dict[str, Any]]) -> SendReport:
        for reading in readings:
            self.handle.write(json.dumps({**reading, "sent_at": epoch_ms()}, ensure_ascii=False) + "\n")
        self.handle.flush()
        return SendReport(sent=len(readings))

    def close(self) -> None:
        self.handle.flush()


class KafkaSink:
    def __init__(self, settings: KafkaSettings, spool: Spool):
        self.settings = settings
        self.spool = spool
        self._producer = None

    def _connect(self):
        from kafka import KafkaProducer

        if self._producer is None:
            self._producer = KafkaProducer(
                bootstrap_servers=self.settings.bootstrap_servers.split(","),
                **self.settings.security,
                acks="all",
                enable_idempotence=True,
                # kafka-python guarantees idempotence only with one request in flight per connection
                max_in_flight_requests_per_connection=1,
                retries=2**31 - 1,  # bounded by delivery_timeout_ms, as in the Java client
                compression_type=self.settings.compression_type,
                linger_ms=self.settings.linger_ms,
                request_timeout_ms=self.settings.request_timeout_ms,
                delivery_timeout_ms=self.settings.delivery_timeout_ms,
                max_block_ms=self.settings.max_block_ms,
                key_serializer=lambda key: key.encode("utf-8"),
                value_serializer=lambda value: json.dumps(value, ensure_ascii=False).encode("utf-8"),
            )
        return self._producer

    def _drop_producer(self) -> None:
        if self._producer is not None:
            # timeout 0 aborts the batches still queued, so nothing we spool is also sent later
            with contextlib.suppress(Exception):  # the producer is being discarded anyway
                self._producer.close(timeout=0)
            self._producer = None

    def _deliver(self, readings: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send and flush; returns the readings Kafka did not acknowledge."""
        from kafka.errors import KafkaConfigurationError, KafkaError

        try:
            producer = self._connect()
        except KafkaConfigurationError:
            raise  # a setting Kafka refuses is not an outage: spooling would hide it
        except KafkaError as exc:
            log.warning("Kafka at %s unreachable (%s)", self.settings.bootstrap_servers, type(exc).__name__)
            return readings
        futures = []
        failed: list[dict[str, Any]] = []
        for i, reading in enumerate(readings):
            message = {**reading, "sent_at": epoch_ms()}
            try:
                futures.append((reading, producer.send(self.settings.topic, key=reading["station_id"], value=message)))
            except KafkaError as exc:
                log.warning("Kafka send failed (%s): the rest of the batch goes to the spool", type(exc).__name__)
                failed = readings[i:]
                break
        try:
            producer.flush(timeout=(self.settings.delivery_timeout_ms + self.settings.request_timeout_ms) / 1000)
        except KafkaError as exc:
            log.warning("Kafka flush failed (%s)", type(exc).__name__)
        unacked = [reading for reading, future in futures if not (future.is_done and future.succeeded())]
        if unacked or failed:
            self._drop_producer()
            unacked = [reading for reading, future in futures if not (future.is_done and future.succeeded())]
        return unacked + failed

    def _drain_spool(self) -> tuple[int, bool]:
        sent = 0
        for path in self.spool.files():
            readings = Spool.read(path)
            if self._deliver(readings):
                return sent, False
            path.unlink()
            sent += len(readings)
            log.info("sent %d spooled readings from %s", len(readings), path.name)
        return sent, True

    def send(self, readings: list[dict[str, Any]]) -> SendReport:
        report = SendReport()
        from_spool, drained = self._drain_spool()
        report.from_spool = from_spool
        if not drained:  # keep the order: the new batch waits behind the old spool
            self.spool.write(readings)
            report.spooled = len(readings)
            return report
        for start in range(0, len(readings), self.settings.batch_size):
            batch = readings[start : start + self.settings.batch_size]
            undelivered = self._deliver(batch)
            report.sent += len(batch) - len(undelivered)
            if undelivered:  # Kafka is away: spool the rest now rather than time out batch by batch
                rest = undelivered + readings[start + self.settings.batch_size :]
                self.spool.write(rest)
                report.spooled += len(rest)
                break
        return report

    def close(self) -> None:
        if self._producer is not None:
            try:
                self._producer.flush(timeout=self.settings.delivery_timeout_ms / 1000)
            finally:
                self._producer.close(timeout=5)
                self._producer = None
