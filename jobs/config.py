"""The pipeline's configuration: one typed object, built at start, passed down.

Loaded from a TOML file (``conf/pipeline.toml``) and overridden by environment variables
``AQSTREAM__<SECTION>__<FIELD>``. A wrong value fails at start with the field's dotted name,
e.g. ``kafka.max_offsets_per_trigger: Input should be greater than 0``.
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from jobs.paths import child, resolve
from jobs.secret_refs import SecretError, SecretRef
from schemas.reading import SCHEMA_VERSION

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO_ROOT / "conf" / "pipeline.toml"
ENV_PREFIX = "AQSTREAM__"

_INTERVAL = re.compile(r"^\s*\d+(\.\d+)?\s+(millisecond|second|minute|hour|day)s?\s*$")


class ConfigError(ValueError):
    """The configuration is invalid; the message names each bad field."""


def accepted_schema_versions(value: object, current: int = SCHEMA_VERSION) -> tuple[int, ...]:
    """The raw contract's ``schema_version`` values a job accepts: the current one (the version this
    code writes, :data:`schemas.reading.SCHEMA_VERSION`) and, during a rollout, the previous one
    (``current - 1``, when that is a version at all, i.e. >= 1). Anything else is refused here, so a
    stale or mistyped list fails at start instead of quarantining every record.

    Takes a list or a comma-separated string (``AQSTREAM__STREAMING__ACCEPTED_SCHEMA_VERSIONS=2,1``).
    """
    if isinstance(value, str):
        items: list[object] = [part.strip() for part in value.strip().strip("[]").split(",") if part.strip()]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise ValueError(f"expected a list of versions, got {value!r}")
    versions: list[int] = []
    for item in items:
        if isinstance(item, bool) or not (isinstance(item, int) or (isinstance(item, str) and item.isdigit())):
            raise ValueError(f"{item!r} is not a schema version (a positive integer)")
        versions.append(int(item))
    allowed = [v for v in (current, current - 1) if v >= 1]
    if current not in versions:
        raise ValueError(f"must include the current schema version {current}, got {versions}")
    if len(set(versions)) != len(versions):
        raise ValueError(f"lists a version twice: {versions}")
    others = [v for v in versions if v not in allowed]
    if others:
        previous = f"the previous one {current - 1}" if current > 1 else "no previous one"
        raise ValueError(f"{others} not accepted: the current version is {current}, {previous}")
    return tuple(versions)


_INTERVAL_SECONDS = {"millisecond": 0.001, "second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}


def interval_seconds(interval: str) -> float:
    """A validated interval string in seconds: ``'5 seconds'`` → 5.0."""
    number, unit = interval.split()
    return float(number) * _INTERVAL_SECONDS[unit.rstrip("s")]


def _interval(value: str) -> str:
    if not _INTERVAL.match(value):
        raise ValueError(f"{value!r} is not an interval like '5 seconds' or '2 hours'")
    return value.strip()


# a configured folder: a local path (relative: against the repo root) or a file://, s3a:// or hdfs:// URI,
# kept as text (jobs/paths.py)
FolderPath = Annotated[str, AfterValidator(lambda value: resolve(value, REPO_ROOT))]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KafkaConfig(_Section):
    bootstrap_servers: str = Field(min_length=1)
    raw_topic: str = Field(min_length=1)
    quarantine_topic: str = Field(min_length=1)
    cdc_topic: str = Field(min_length=1)
    # the AQI alerts cdc_to_cassandra emits (compacted: the latest record per alert key; docs/alerts.md)
    alerts_topic: str = Field(min_length=1)
    partitions: int = Field(default=3, ge=1)
    # the replication factor of the topics jobs.setup creates (at most the number of brokers)
    replication_factor: int = Field(default=1, ge=1)
    starting_offsets: Literal["earliest", "latest"] = "earliest"
    max_offsets_per_trigger: int = Field(gt=0)
    fail_on_data_loss: bool = True
    # the Kafka source's minPartitions: split a backlog's offset ranges into at least this many Spark
    # tasks (more than the topic's partitions: spreads one batch over more executors); unset: one per partition
    min_partitions: int | None = Field(default=None, ge=1)
    # how every client authenticates (docs/security.md): SASL/SCRAM on the local stack's and docker compose's
    # brokers; PLAINTEXT only for a broker of your own without it. TLS (SASL_SSL) is documented, not wired here.
    security_protocol: Literal["SASL_PLAINTEXT", "PLAINTEXT"] = "SASL_PLAINTEXT"
    sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256"] = "SCRAM-SHA-512"


class MongoConfig(_Section):
    uri: str = Field(pattern=r"^mongodb(\+srv)?://")
    # true: every client logs in as its own user ([credentials] mongo_user_*; jobs/mongo_auth.py), which a real
    # mongod started by the stack requires (it runs with --auth); false: no login (the Java stand-in cannot log in)
    authentication: bool = False
    # true: TLS to the server (jobs/mongo_auth.py adds tls=true to the connection string); pymongo verifies the
    # server's certificate against tls_ca_file (PEM), the JVM clients (the Spark connector, Debezium in Kafka
    # Connect) against tls_truststore (JKS). Relative paths: in credentials.secrets_dir, where the stack makes both
    tls: bool = False
    tls_ca_file: str = Field(default="tls/mongo-cert.pem", min_length=1)
    tls_truststore: str = Field(default="tls/mongo-truststore.jks", min_length=1)
    database: str = Field(min_length=1)
    collection: str = Field(min_length=1)
    max_batch_size: int = Field(default=512, gt=0)
    ordered: bool = False


# the consistency levels Cassandra accepts for a read and for a write
READ_CONSISTENCY = Literal[
    "ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_ONE", "LOCAL_QUORUM", "SERIAL", "LOCAL_SERIAL"
]
WRITE_CONSISTENCY = Literal["ANY", "ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_ONE", "LOCAL_QUORUM", "EACH_QUORUM"]


def datacenter_replicas(value: object) -> object:
    """``{dc1 = 3, dc2 = 3}`` from the TOML file, or ``dc1:3,dc2:3`` from an environment variable."""
    if not isinstance(value, str):
        return value
    pairs = [part.split(":", 1) for part in value.split(",") if part.strip()]
    if any(len(pair) != 2 for pair in pairs):
        raise ValueError(f"{value!r} is not like 'dc1:3,dc2:3'")
    return {name.strip(): count.strip() for name, count in pairs}


class CassandraConfig(_Section):
    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)
    keyspace: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    # the keyspace's replication (jobs.setup creates it): SimpleStrategy with replication_factor, or
    # NetworkTopologyStrategy with a replication factor per data center (datacenters)
    replication_strategy: Literal["SimpleStrategy", "NetworkTopologyStrategy"] = "SimpleStrategy"
    replication_factor: int = Field(default=1, ge=1)
    datacenters: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")], Annotated[int, Field(ge=1)]] = {}
    readings_table: str = "readings_by_station_day"
    aggregates_table: str = "aggregates_by_station_bucket"
    local_dc: str = "datacenter1"
    # true: every client logs in as its [credentials] role (PasswordAuthenticator, the local stack's and docker
    # compose's); false: no login and no roles or grants made by the set-up, for a Cassandra of your own without
    # authentication (AllowAllAuthenticator)
    authentication: bool = True
    # the Spark Cassandra Connector's consistency levels (cdc_to_cassandra reads back what it wrote:
    # on several nodes both LOCAL_QUORUM, so the read sees the write)
    read_consistency: READ_CONSISTENCY = "LOCAL_ONE"
    write_consistency: WRITE_CONSISTENCY = "LOCAL_ONE"

    _check_datacenters = field_validator("datacenters", mode="before")(
        classmethod(lambda cls, v: datacenter_replicas(v))
    )

    @model_validator(mode="after")
    def _replication_fits_the_strategy(self) -> CassandraConfig:
        if self.replication_strategy == "SimpleStrategy" and self.datacenters:
            raise ValueError("datacenters is for NetworkTopologyStrategy: set replication_strategy, or drop it")
        if self.replication_strategy == "NetworkTopologyStrategy" and self.local_dc not in self.datacenters:
            raise ValueError(
                f"NetworkTopologyStrategy: datacenters {self.datacenters} must give local_dc {self.local_dc!r} replicas"
            )
        return self

    def replication(self) -> dict[str, str | int]:
        """The keyspace's replication map, as CQL's ``WITH replication = {...}`` takes it."""
        if self.replication_strategy == "SimpleStrategy":
            return {"class": "SimpleStrategy", "replication_factor": self.replication_factor}
        return {"class": "NetworkTopologyStrategy", **self.datacenters}


class PathsConfig(_Section):
    checkpoint_root: FolderPath
    bronze: FolderPath
    quarantine: FolderPath
    cdc_quarantine: FolderPath

    def checkpoint(self, query_name: str) -> str:
        """One checkpoint folder per streaming query."""
        return child(self.checkpoint_root, query_name)


class StreamingConfig(_Section):
    trigger_interval: str = "1 second"
    # raw_to_mongo's Delta bronze query (a Delta commit costs ~1-2 s whatever its size: fewer, larger ones)
    bronze_trigger_interval: str = "30 seconds"
    future_tolerance: str = "10 minutes"
    max_record_bytes: int = Field(default=262144, gt=0)
    aggregate_watermark: str = "2 hours"
    # the raw contract's schema_version values accepted; others are quarantined (unknown_schema_version)
    accepted_schema_versions: tuple[int, ...] = (SCHEMA_VERSION,)

    _check_intervals = field_validator(
        "trigger_interval", "bronze_trigger_interval", "future_tolerance", "aggregate_watermark"
    )(classmethod(lambda cls, v: _interval(v)))
    _check_versions = field_validator("accepted_schema_versions", mode="before")(
        classmethod(lambda cls, v: accepted_schema_versions(v))
    )


class CdcConfig(_Section):
    """The Debezium CDC job (``jobs/cdc_to_cassandra.py``)."""

    # the Kafka Connect JsonConverter's schemas.enable: "auto" detects {schema, payload} per message
    schemas_enabled: Literal["auto", "true", "false"] = "auto"
    # Kafka records per micro-batch (null: kafka.max_offsets_per_trigger)
    max_offsets_per_trigger: int | None = Field(default=None, gt=0)
    # the aggregates query's trigger (the readings query runs on streaming.trigger_interval)
    aggregates_trigger_interval: str = "5 seconds"
    # how long an aggregates batch waits for the readings query to apply its changes before failing
    aggregates_wait_timeout_s: float = Field(default=600.0, gt=0)

    _check_interval = field_validator("aggregates_trigger_interval")(classmethod(lambda cls, v: _interval(v)))

    def schemas_enabled_flag(self) -> bool | None:
        return None if self.schemas_enabled == "auto" else self.schemas_enabled == "true"


JOBS = ("raw_to_mongo", "cdc_to_cassandra")


class MonitoringConfig(_Section):
    """Where each job serves its metrics (``jobs/metrics.py``), its Spark UI and its event logs, where a
    running collector serves its own (``collectors/metrics.py``), and what ``python -m jobs.status``
    asks (docs/monitoring.md)."""

    # the address the metrics servers listen on (loopback: a local Prometheus scrapes them)
    metrics_host: str = Field(default="127.0.0.1", min_length=1)
    # each job's Prometheus endpoint (/metrics); 0 disables it
    metrics_port_raw_to_mongo: int = Field(default=9401, ge=0, le=65535)
    metrics_port_cdc_to_cassandra: int = Field(default=9402, ge=0, le=65535)
    # a collector's endpoint while it runs (``--metrics-port`` overrides it); 0 disables it
    metrics_port_collectors: int = Field(default=9403, ge=0, le=65535)
    # each job's Spark UI (and its /metrics/prometheus), fixed so a scrape config can name it
    ui_port_raw_to_mongo: int = Field(default=4040, ge=1, le=65535)
    ui_port_cdc_to_cassandra: int = Field(default=4041, ge=1, le=65535)
    # after each batch, its end offsets are committed to the Kafka consumer group <prefix><query name>, so
    # kafka-consumer-groups.sh and Kafka UIs show each query's lag (reporting only: no job reads them)
    consumer_group_commits: bool = True
    consumer_group_prefix: str = Field(default="aqstream.", pattern=r"^[A-Za-z0-9._-]*$")

    # the jobs' Spark event logs (spark.eventLog.dir), which Spark's history server reads (make history):
    # a local folder or a URI, like [paths]
    event_log_dir: FolderPath = Field(default=".runs/spark-events", validate_default=True)
    # the history server's UI port (on loopback)
    history_port: int = Field(default=18080, ge=1, le=65535)
    # Kafka Connect's REST API, where jobs.status reads the Debezium connector's state
    connect_url: str = Field(default="http://127.0.0.1:8083", pattern=r"^https?://")
    # the Debezium connector jobs.status checks; unset: the name in conf/debezium/mongodb-readings.json
    connector_name: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _distinct_ports(self) -> MonitoringConfig:
        metrics_ports = (*map(self.metrics_port, JOBS), self.metrics_port_collectors)
        ports = [p for p in (*metrics_ports, *map(self.ui_port, JOBS), self.history_port) if p]
        if len(set(ports)) != len(ports):
            raise ValueError(f"the metrics, UI and history ports must differ, got {ports}")
        return self

    def metrics_port(self, job: str) -> int:
        return getattr(self, f"metrics_port_{job}")

    def ui_port(self, job: str) -> int:
        return getattr(self, f"ui_port_{job}")

    def consumer_group(self, query: str) -> str:
        """The consumer group a query's committed offsets are reported to (``aqstream.raw_to_mongo``)."""
        return f"{self.consumer_group_prefix}{query}"


class DashboardConfig(_Section):
    """The read API and dashboard page (``python -m dashboard``, docs/dashboard.md)."""

    # where the server listens (loopback: nothing else on this machine's network reaches it)
    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=8050, ge=1, le=65535)
    # how often the page asks again (stations, trend, alerts, health)
    refresh_seconds: int = Field(default=30, ge=2, le=3600)
    # the most rows one response carries (readings, aggregates, alerts): the LIMIT of every read
    max_page_size: int = Field(default=1000, ge=1, le=10000)
    # the longest time range a readings or aggregates request may span (one readings partition per day)
    max_range_days: int = Field(default=31, ge=1, le=366)
    # the hours of 1 h aggregates the page's trend shows, ending with the station's latest hour
    trend_hours: int = Field(default=72, ge=2)
    # where the health strip finds a stopped job's last batch (what Prometheus last scraped of it)
    prometheus_url: str = Field(default="http://127.0.0.1:9090", pattern=r"^https?://")
    prometheus_lookback: str = "7 days"

    _check_lookback = field_validator("prometheus_lookback")(classmethod(lambda cls, v: _interval(v)))

    @model_validator(mode="after")
    def _trend_fits_the_range(self) -> DashboardConfig:
        if self.trend_hours > 24 * self.max_range_days:
            raise ValueError(
                f"trend_hours {self.trend_hours} is longer than max_range_days ({self.max_range_days} days)"
            )
        return self


# the Kafka principals, one per component, each with only the ACLs it needs (jobs/kafka_acls.py); monitor:
# the read-only tools (jobs.status, the dashboard's health strip, jobs.report) that only look at offsets
KAFKA_PRINCIPALS = ("admin", "collector", "raw_to_mongo", "cdc_to_cassandra", "connect", "monitor")
# admin: the superuser replacing Cassandra's default one; cdc: the CDC job (reads and writes its keyspace);
# reader: read-only (the dashboard, jobs.report). jobs.setup grants them (jobs/cassandra_roles.py)
CASSANDRA_ROLES = ("admin", "cdc", "reader")
CassandraRole = Literal["admin", "cdc", "reader"]
# admin: root, set-up only (it makes the other two); raw_to_mongo: readWrite on the pipeline's database; debezium:
# what Debezium's MongoDB connector needs for change streams (jobs/mongo_users.py)
MONGO_USERS = ("admin", "raw_to_mongo", "debezium")


def _secret_reference(value: str) -> str:
    """The form of a reference (``env:NAME`` or ``file:PATH``); the field's name is added by pydantic."""
    try:
        SecretRef.parse("", value, Path("."))
    except SecretError:
        # never the value in the message: a literal secret put here by mistake stays unprinted
        raise ValueError("expected 'env:VARIABLE' or 'file:PATH' (a reference, never the secret)") from None
    return value


SecretReference = Annotated[str, AfterValidator(_secret_reference)]
LocalFolder = Annotated[Path, AfterValidator(lambda value: (REPO_ROOT / value).resolve())]


class Login(BaseModel):
    """A user name and its password, as a client presents them; the password never shows in repr or str."""

    model_config = ConfigDict(frozen=True)

    username: str
    password: SecretStr


class CredentialsConfig(_Section):
    """Who each component is to Kafka, Cassandra, MongoDB and OpenAQ: user names, and a reference to each
    secret (``env:VARIABLE`` or ``file:PATH``), read only when a component needs it (docs/security.md).
    The ``file:`` defaults are what ``python -m stack up`` generates in ``secrets_dir``."""

    # where relative file: references point; `python -m stack up` generates the defaults there (git-ignored)
    secrets_dir: LocalFolder = Field(default=Path(".state/secrets"), validate_default=True)
    # the broker's super user: set-up (topics, ACLs), the tests
    kafka_user_admin: str = Field(default="aqstream-admin", min_length=1)
    kafka_user_collector: str = Field(default="aqstream-collector", min_length=1)
    kafka_user_raw_to_mongo: str = Field(default="aqstream-raw-to-mongo", min_length=1)
    kafka_user_cdc_to_cassandra: str = Field(default="aqstream-cdc-to-cassandra", min_length=1)
    kafka_user_connect: str = Field(default="aqstream-connect", min_length=1)
    kafka_user_monitor: str = Field(default="aqstream-monitor", min_length=1)
    kafka_password_admin: SecretReference = "file:kafka_admin"
    kafka_password_collector: SecretReference = "file:kafka_collector"
    kafka_password_raw_to_mongo: SecretReference = "file:kafka_raw_to_mongo"
    kafka_password_cdc_to_cassandra: SecretReference = "file:kafka_cdc_to_cassandra"
    kafka_password_connect: SecretReference = "file:kafka_connect"
    kafka_password_monitor: SecretReference = "file:kafka_monitor"
    cassandra_user_admin: str = Field(default="aqstream_admin", min_length=1)
    cassandra_user_cdc: str = Field(default="aqstream_cdc", min_length=1)
    cassandra_password_admin: SecretReference = "file:cassandra_admin"
    cassandra_password_cdc: SecretReference = "file:cassandra_cdc"
    cassandra_user_reader: str = Field(default="aqstream_reader", min_length=1)
    cassandra_password_reader: SecretReference = "file:cassandra_reader"
    mongo_user_admin: str = Field(default="aqstream-mongo-admin", min_length=1)
    mongo_user_raw_to_mongo: str = Field(default="aqstream-raw-to-mongo", min_length=1)
    mongo_user_debezium: str = Field(default="aqstream-debezium", min_length=1)
    mongo_password_admin: SecretReference = "file:mongo_admin"
    mongo_password_raw_to_mongo: SecretReference = "file:mongo_raw_to_mongo"
    mongo_password_debezium: SecretReference = "file:mongo_debezium"
    # your own key (https://explore.openaq.org/register): nothing generates it
    openaq_api_key: SecretReference = "env:OPENAQ_API_KEY"

    def reference(self, field: str) -> SecretRef:
        if not _is_secret_field(field) or field not in type(self).model_fields:
            raise KeyError(f"credentials.{field} is not a secret")
        return SecretRef.parse(f"credentials.{field}", getattr(self, field), self.secrets_dir)

    def secret(self, field: str, environ: Mapping[str, str] | None = None) -> SecretStr:
        """The secret ``field`` refers to, read now; :class:`ConfigError` names the field and the variable or path."""
        try:
            return self.reference(field).read(environ)
        except SecretError as exc:
            raise ConfigError(str(exc)) from None

    def login(self, service: Literal["kafka", "cassandra", "mongo"], who: str, environ=None) -> Login:
        """``login("kafka", "collector")``: the user name and password of one principal."""
        names = {"kafka": KAFKA_PRINCIPALS, "cassandra": CASSANDRA_ROLES, "mongo": MONGO_USERS}[service]
        if who not in names:
            raise KeyError(f"no {service} login {who!r}; there are {', '.join(names)}")
        return Login(
            username=getattr(self, f"{service}_user_{who}"),
            password=self.secret(f"{service}_password_{who}", environ),
        )

    def generated_files(self) -> dict[str, Path]:
        """Every secret the configuration takes from a file: field → path (what the stack generates)."""
        refs = (self.reference(f) for f in type(self).model_fields if _is_secret_field(f))
        return {ref.field.removeprefix("credentials."): Path(ref.location) for ref in refs if ref.source == "file"}


def _is_secret_field(name: str) -> bool:
    return "_password_" in name or name.endswith("_api_key")


class PipelineConfig(_Section):
    kafka: KafkaConfig
    mongo: MongoConfig
    cassandra: CassandraConfig
    paths: PathsConfig
    streaming: StreamingConfig = StreamingConfig()
    cdc: CdcConfig = CdcConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    dashboard: DashboardConfig = DashboardConfig()
    credentials: CredentialsConfig = CredentialsConfig()


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> PipelineConfig:
    """Read the TOML file, apply ``AQSTREAM__SECTION__FIELD`` overrides, validate."""
    path = Path(path) if path else DEFAULT_CONFIG
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    environ = os.environ if environ is None else environ
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        parts = key[len(ENV_PREFIX) :].lower().split("__")
        if len(parts) != 2:
            raise ConfigError(f"{key}: expected {ENV_PREFIX}<SECTION>__<FIELD>")
        raw.setdefault(parts[0], {})[parts[1]] = value
    try:
        return PipelineConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid configuration ({path}): {problems}") from None


def load_config_or_report(path: str | Path | None = None) -> PipelineConfig | None:
    """:func:`load_config` for a command line: on a bad config, print the error (it names the field)
    to stderr and return None, so the command exits 2 without a traceback."""
    try:
        return load_config(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None
