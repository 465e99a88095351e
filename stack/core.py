"""Start, stop and inspect the whole local stack."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from stack.config import StackConfig
from stack.java import find_java17
from stack.process import tail
from stack.secret_files import ensure_secrets
from stack.services import (
    Cassandra,
    Kafka,
    KafkaConnect,
    MongoDB,
    Prometheus,
    Service,
    SparkMaster,
    SparkWorker,
    StackError,
)

# Start order; a service waits for the one it needs (Service.needs), the others start side by side.
SERVICE_ORDER = ("kafka", "mongodb", "cassandra", "connect", "prometheus", "spark-master", "spark-worker")
# What `up` starts when no service is named. The Spark cluster is on demand (named, or --spark-cluster):
# the jobs run on local[*] by default and the machine is small.
DEFAULT_SERVICES = ("kafka", "mongodb", "cassandra", "connect", "prometheus")
SPARK_CLUSTER = ("spark-master", "spark-worker")
JAR_SETS = ("kafka", "connect", "connect-plugins", "cassandra", "mongo", "monitoring")


@dataclass
class ServiceStatus:
    name: str
    implementation: str
    pid: int | None
    port: int
    healthy: bool
    rss_bytes: int


class Stack:
    def __init__(self, cfg: StackConfig | None = None, java_home: Path | None = None):
        self.cfg = cfg or StackConfig.from_env()
        self._java_home = java_home
        self._services: dict[str, Service] | None = None

    @property
    def java_home(self) -> Path:
        if self._java_home is None:
            self._java_home = find_java17()
        return self._java_home

    @property
    def services(self) -> dict[str, Service]:
        if self._services is None:
            classes = {
                "kafka": Kafka,
                "mongodb": MongoDB,
                "cassandra": Cassandra,
                "connect": KafkaConnect,
                "prometheus": Prometheus,
                "spark-master": SparkMaster,
                "spark-worker": SparkWorker,
            }
            self._services = {name: classes[name](self.cfg, self._java_home) for name in SERVICE_ORDER}
        return self._services

    def service(self, name: str) -> Service:
        if name not in self.services:
            raise StackError(f"unknown service {name!r}; the stack runs {', '.join(SERVICE_ORDER)}")
        return self.services[name]

    def _select(self, names: list[str] | None, default=SERVICE_ORDER) -> list[str]:
        names = list(names or default)
        for name in names:
            self.service(name)
        return [n for n in SERVICE_ORDER if n in names]

    def check_jars(self) -> None:
        missing = [s for s in JAR_SETS if not any((self.cfg.lib_dir / s).glob("**/*.jar"))]
        if missing:
            raise StackError(f"jars missing in {self.cfg.lib_dir} for {', '.join(missing)}: run `make jars` first")

    def up(self, names: list[str] | None = None, log=print) -> dict[str, float]:
        """Start what is not running, wait until each answers a client round trip.

        Returns seconds to healthy per service started. Raises StackError naming the
        service and showing its log tail when one does not come up.
        """
        self.check_jars()
        self.ensure_secrets()
        java_home = self.java_home
        for svc in self.services.values():
            svc.java_home = java_home
        selected = self._select(names, default=DEFAULT_SERVICES)
        # a named service brings what it needs (the worker its master)
        selected = self._select(selected + [self.service(n).needs for n in selected if self.service(n).needs])
        started: dict[str, float] = {}
        t0 = time.monotonic()
        pending: list[str] = []
        for name in selected:
            svc = self.service(name)
            if svc.pid() is not None:
                log(f"{name}: already running (pid {svc.pid()})")
                continue
            if svc.needs in pending:
                self._wait([svc.needs], t0, started, log)
                pending.remove(svc.needs)
            taken = svc.taken_ports()
            if taken:
                ports = ", ".join(f"{self.cfg.host}:{p}" for p in taken.values())
                settings = ", ".join(f"AQSTREAM_{f.upper()}" for f in taken)
                raise StackError(
                    f"{name} cannot start: another process already listens on {ports}; "
                    f"stop that process or move {name} with {settings}"
                )
            pid = svc.start()
            log(f"{name}: started pid {pid} ({svc.implementation}), log {svc.log_file}")
            pending.append(name)
        self._wait(pending, t0, started, log)
        # also wait for services that were already running but not yet healthy
        self._wait([n for n in selected if n not in started], t0, started, log, quiet=True)
        return started

    @property
    def secrets_dir(self) -> Path:
        return self.cfg.state_dir / "secrets"

    def ensure_secrets(self) -> dict[str, Path]:
        """The generated secrets (made on the first call, kept after): docs/security.md."""
        return ensure_secrets(self.secrets_dir)

    def _wait(self, names, t0, started, log, quiet=False) -> None:
        deadline = t0 + self.cfg.start_timeout_s
        remaining = list(names)
        while remaining:
            for name in list(remaining):
                svc = self.service(name)
                if svc.pid() is None:
                    raise StackError(
                        f"{name} exited during start-up; last lines of {svc.log_file}:\n{tail(svc.log_file)}"
                    )
                if svc.healthy():
                    svc.after_healthy()
                    remaining.remove(name)
                    if not quiet:
                        started[name] = time.monotonic() - t0
                        log(f"{name}: healthy after {started[name]:.1f}s on {self.cfg.host}:{svc.port}")
            if remaining and time.monotonic() > deadline:
                name = remaining[0]
                svc = self.service(name)
                raise StackError(
                    f"{name} did not answer on {self.cfg.host}:{svc.port} within {self.cfg.start_timeout_s:.0f}s; "
                    f"last lines of {svc.log_file}:\n{tail(svc.log_file)}"
                )
            if remaining:
                time.sleep(1.0)

    def down(self, names: list[str] | None = None, log=print) -> None:
        for name in reversed(self._select(names)):
            log(f"{name}: {self.service(name).stop()}")

    def status(self, names: list[str] | None = None) -> list[ServiceStatus]:
        """The named services; by default the default set and any on-demand service that is running."""
        if names is None:
            names = [n for n in SERVICE_ORDER if n in DEFAULT_SERVICES or self.service(n).pid() is not None]
        rows = []
        for name in self._select(names):
            svc = self.service(name)
            pid = svc.pid()
            rows.append(ServiceStatus(name, svc.implementation, pid, svc.port, bool(pid) and svc.healthy(), svc.rss()))
        return rows

    def healthy(self) -> bool:
        return all(s.healthy for s in self.status())

    # -- conveniences for tests and tools --------------------------------------------------------
    @property
    def kafka_bootstrap(self) -> str:
        return self.cfg.kafka_bootstrap

    def kafka_client(self, who: str = "admin") -> dict:
        """kafka-python's settings for principal ``who`` on this stack's broker (jobs/kafka_auth.py)."""
        from jobs.kafka_auth import kafka_python_settings
        from stack.services import kafka_pipeline_config

        return kafka_python_settings(kafka_pipeline_config(self.cfg), who)

    @property
    def connect_url(self) -> str:
        return self.cfg.connect_url

    @property
    def mongo_tls(self) -> bool:
        """Whether this stack's MongoDB speaks TLS (the stand-in with ``mongo.tls``: stack/mongo_tls.py)."""
        return self.service("mongodb").tls

    @property
    def mongo_uri(self) -> str:
        """A connection string to this stack's replica set, with ``tls=true`` where it speaks TLS (for clients that
        take their trust from elsewhere: Kafka Connect's JVM; pymongo's: :meth:`mongo_client`)."""
        from jobs.mongo_auth import with_tls

        return with_tls(self.cfg.mongo_uri, self.mongo_tls)

    def mongo_client(self, **options):
        """pymongo on this stack's MongoDB (one node, ``directConnection``), trusting its certificate where it
        speaks TLS; ``options`` are MongoClient's."""
        from jobs.mongo_auth import mongo_client
        from stack.services import kafka_pipeline_config

        config = kafka_pipeline_config(self.cfg, service="mongodb")
        uri = f"mongodb://{self.cfg.host}:{self.cfg.mongo_port}/?directConnection=true"
        mongo = config.mongo.model_copy(update={"uri": uri, "tls": self.mongo_tls})
        return mongo_client(config.model_copy(update={"mongo": mongo}), **options)

    def stop_service(self, name: str) -> str:
        return self.service(name).stop()

    def start_service(self, name: str) -> None:
        self.up([name], log=lambda _msg: None)
