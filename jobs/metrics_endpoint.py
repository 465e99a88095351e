"""The ``/metrics`` HTTP endpoint that serves one prometheus-client registry, shared by the jobs
(:mod:`jobs.metrics`) and the collectors (:mod:`collectors.metrics`), and their namespace.

It holds nothing of the jobs' own (:mod:`jobs.metrics` reads the Spark progress registry), so the
collectors share it without depending on the streaming side.
"""

from __future__ import annotations

import logging

from prometheus_client import start_http_server
from prometheus_client.registry import CollectorRegistry

NAMESPACE = "aqstream"  # every series the project exports starts with aqstream_
log = logging.getLogger("aqstream.monitoring")


class MetricsServer:
    """``registry`` served at ``http://host:port/metrics`` on a daemon thread (it never keeps a finished
    process alive); ``close`` stops it. Port 0 takes an ephemeral port (tests)."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry):
        self._httpd, self._thread = start_http_server(port, addr=host, registry=registry)
        self.host = host
        self.port = self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def serve(host: str, port: int, registry: CollectorRegistry) -> MetricsServer | None:
    """Start an endpoint; None when ``port`` is 0 (disabled) or taken: monitoring never stops a job
    or a collector (the warning says so, and Prometheus' ``up`` shows the target down)."""
    if port == 0:
        return None
    try:
        return MetricsServer(host, port, registry)
    except OSError as exc:
        log.warning("metrics endpoint not started on %s:%d: %s", host, port, exc)
        return None
