"""The collectors' metrics: ``aqstream_collector_*`` series on a prometheus-client registry.

One collector process runs one source (its command: ``openmeteo``, ``openaq``, ``replay``), so a run
builds one :class:`CollectorMetrics` with that ``source`` label and counts into it: the run loop
(``collectors/cli.py``) the readings fetched, dropped, sent and spooled and the fetches, the HTTP
client (``collectors/httpclient.py``) its requests, errors, retries and waits. ``python -m collectors``
serves the registry at ``http://<monitoring.metrics_host>:<port>/metrics`` while the collector runs
(``monitoring.metrics_port_collectors`` in conf/pipeline.toml or ``--metrics-port``; 0 disables).
The names are listed in docs/monitoring.md; conf/prometheus/rules.yml's ``AqstreamSourceSilent``
reads ``aqstream_collector_last_success_timestamp_seconds``.

Counters count since the process started (a restart resets them, which ``rate()`` and
``increase()`` handle).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, ProcessCollector

from collectors.sink import SendReport
from jobs.metrics_endpoint import NAMESPACE

SUBSYSTEM = "collector"


class CollectorMetrics:
    """The series of one collector run, their ``source`` label bound; served from :attr:`registry`."""

    def __init__(self, source: str):
        self.source = source
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)  # process_*: the collector's CPU, memory, start time

        def counter(name: str, doc: str, *labels: str) -> Counter:
            return Counter(
                name, doc, ["source", *labels], namespace=NAMESPACE, subsystem=SUBSYSTEM, registry=self.registry
            )

        # bound now, so they read 0 from the first scrape (an increase from nothing is no increase)
        self._fetched = counter(
            "readings_fetched", "readings parsed from the source's responses (replay: read from its files)"
        ).labels(source)
        self._sent = counter("readings_sent", "readings Kafka acknowledged (or written to --out)").labels(source)
        self._spooled = counter("readings_spooled", "readings written to the spool: Kafka did not take them").labels(
            source
        )
        self._from_spool = counter(
            "readings_sent_from_spool", "spooled readings (of an earlier batch or run) Kafka then acknowledged"
        ).labels(source)
        # labelled by what happened: a series appears with its first count
        self._dropped = counter(
            "readings_dropped",
            "readings not sent, by reason: already_sent (no newer than the station's last sent), forecast (Open-Meteo"
            " hours after the fetch), unmapped_column (Open-Meteo: columns, not readings, with no rule; kept in extra);"
            " OpenAQ records (rows) not read: unknown_location, unknown_parameter, outside_requested_range,"
            " unsupported_period, unknown_shape (docs/collectors.md)",
            "reason",
        )
        self._flagged = counter(
            "readings_flagged",
            "readings sent with a flag about the reading itself, by reason: unknown_station (replay: a station the"
            " mapping has no coordinates for; sent with null lat/lon)",
            "reason",
        )
        self._fetches = counter("fetches", "collections from the source, by outcome (success, failure)", "outcome")
        self._requests = counter("http_requests", "HTTP requests sent (every attempt)")
        self._errors = counter("http_errors", "failed HTTP attempts, by kind: the status code, timeout, ...", "kind")
        self._retries = counter("http_retries", "failed HTTP attempts that were retried, by kind", "kind")
        self._waited = counter(
            "http_wait_seconds", "time waited before a request, by cause: backoff, retry_after (429), quota", "cause"
        )
        self._last_success = Gauge(
            "last_success_timestamp_seconds",
            "unix time of the latest successful fetch (replay: of the latest readings read)",
            ["source"],
            namespace=NAMESPACE,
            subsystem=SUBSYSTEM,
            registry=self.registry,
        )

    # --- readings (the run loop) ----------------------------------------------------------------

    def fetched(self, readings: int) -> None:
        """Readings got from the source: counted, and the source marked alive (last success now)."""
        self._fetched.inc(readings)
        self._last_success.labels(self.source).set_to_current_time()

    def fetch_succeeded(self, readings: int) -> None:
        self._fetches.labels(self.source, "success").inc()
        self.fetched(readings)

    def fetch_failed(self) -> None:
        """A collection that failed for good (after the HTTP client's retries): last success stays."""
        self._fetches.labels(self.source, "failure").inc()

    def dropped(self, reason: str, readings: int) -> None:
        self._dropped.labels(self.source, reason).inc(readings)

    def flagged(self, reason: str, readings: int) -> None:
        self._flagged.labels(self.source, reason).inc(readings)

    def delivered(self, report: SendReport) -> None:
        self._sent.inc(report.sent)
        self._spooled.inc(report.spooled)
        self._from_spool.inc(report.from_spool)

    # --- HTTP (the client) ------------------------------------------------------------------------

    def http_request(self) -> None:
        self._requests.labels(self.source).inc()

    def http_failed(self, kind: str, *, retried: bool) -> None:
        self._errors.labels(self.source, kind).inc()
        if retried:
            self._retries.labels(self.source, kind).inc()

    def http_waited(self, cause: str, seconds: float) -> None:
        self._waited.labels(self.source, cause).inc(seconds)
