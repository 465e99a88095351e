"""The SparkSession every aqstream job uses: conf/spark-defaults.conf + the jars of jars/lib/spark."""

from __future__ import annotations

from pathlib import Path

from py4j.protocol import Py4JJavaError
from pyspark.sql import SparkSession

from jobs.config import REPO_ROOT, CassandraRole, PipelineConfig
from jobs.mongo_auth import jvm_trust_options
from jobs.paths import ensure_local_dir, path_uri
from jobs.retries import with_retries

SPARK_DEFAULTS = REPO_ROOT / "conf" / "spark-defaults.conf"
SPARK_JARS_DIR = REPO_ROOT / "jars" / "lib" / "spark"
FAIR_SCHEDULER_POOLS = REPO_ROOT / "conf" / "fairscheduler.xml"
# EventLogFileWriters.scala's refusal when an application's event log is already there (rolling: a
# directory; single file: a file)
EVENT_LOG_TAKEN = ("Target log directory already exists", "Target log file already exists")
CONTEXT_ATTEMPTS = 3


class MissingJars(RuntimeError):
    pass


def read_spark_defaults(path: Path = SPARK_DEFAULTS) -> dict[str, str]:
    """Parse a spark-defaults.conf file (key, whitespace, value; # comments)."""
    settings = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        settings[key] = value.strip()
    return settings


def connector_jars(jars_dir: Path = SPARK_JARS_DIR) -> list[str]:
    jars = sorted(str(p) for p in jars_dir.glob("*.jar"))
    if not jars:
        raise MissingJars(f"no connector jars in {jars_dir}: run `make jars` first")
    return jars


def spark_settings(config: PipelineConfig, cassandra_role: CassandraRole | None = None) -> dict[str, str]:
    """Everything the jobs set on Spark: the defaults file, the jars, the stores' addresses and Cassandra's
    consistency levels; with ``cassandra_role``, the Spark Cassandra Connector's login as that role (read now:
    a job that does not use the connector never reads a Cassandra secret)."""
    settings = read_spark_defaults()
    settings["spark.jars"] = ",".join(connector_jars())
    settings.setdefault("spark.scheduler.allocation.file", str(FAIR_SCHEDULER_POOLS))
    settings["spark.cassandra.connection.host"] = config.cassandra.host
    settings["spark.cassandra.connection.port"] = str(config.cassandra.port)
    settings["spark.cassandra.connection.localDC"] = config.cassandra.local_dc
    settings["spark.cassandra.input.consistency.level"] = config.cassandra.read_consistency
    settings["spark.cassandra.output.consistency.level"] = config.cassandra.write_consistency
    for side in ("driver", "executor"):  # the Mongo Spark connector's TLS trust: the JVM's default store
        key = f"spark.{side}.extraJavaOptions"
        settings[key] = " ".join([settings.get(key, ""), *jvm_trust_options(config)]).strip()
    if cassandra_role is not None:
        settings.update(cassandra_auth_settings(config, cassandra_role))
    return settings


def cassandra_auth_settings(config: PipelineConfig, role: CassandraRole) -> dict[str, str]:
    """The connector's login. Never on a command line (jobs.submit does not pass it): set on the session in
    the job's own process. Spark's UI shows it as *********(redacted): ``spark.redaction.regex`` matches
    ``password``; jobs.redact masks it wherever the suite prints a config."""
    if not config.cassandra.authentication:
        return {}
    login = config.credentials.login("cassandra", role)
    return {
        "spark.cassandra.auth.username": login.username,
        "spark.cassandra.auth.password": login.password.get_secret_value(),
    }


def event_log_settings(config: PipelineConfig) -> dict[str, str]:
    """Spark's event log in ``monitoring.event_log_dir``, for the history server (``make history``).

    Rolling: a streaming job runs for days and logs every micro-batch's jobs and stages; rolled files
    (``eventlog_v2_<app>/events_<n>_…``, 128 MiB each) let the history server read a running job's log
    without re-parsing one ever-growing file, and let old files be compacted or deleted."""
    return {
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": path_uri(config.monitoring.event_log_dir),
        "spark.eventLog.rolling.enabled": "true",
        "spark.eventLog.rolling.maxFileSize": "128m",
    }


def build_spark(
    config: PipelineConfig,
    app_name: str,
    master: str | None = None,
    ui_port: int | None = None,
    event_log: bool = True,
    cassandra_role: CassandraRole | None = None,
) -> SparkSession:
    """Get or create the session. Under spark-submit the launcher's own settings win.

    ``ui_port``: the job's fixed Spark UI port (``monitoring.ui_port_<job>``). A taken port moves the UI
    to the next free one (Spark's port retries): the job logs the address it got. ``event_log``: write
    Spark's event log for the history server (:func:`event_log_settings`). ``cassandra_role``: the role the
    Spark Cassandra Connector logs in as (None: the job does not use the connector)."""
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    settings = spark_settings(config, cassandra_role)
    if ui_port is not None:
        settings["spark.ui.port"] = str(ui_port)
    if event_log:
        settings.update(event_log_settings(config))
        ensure_local_dir(config.monitoring.event_log_dir)
    for key, value in settings.items():
        builder = builder.config(key, value)
    return get_or_create(builder)


def get_or_create(builder: SparkSession.Builder, attempts: int = CONTEXT_ATTEMPTS) -> SparkSession:
    """``builder.getOrCreate()``, again when the event log's name was taken.

    A local application is named ``local-<epoch ms>`` (LocalSchedulerBackend), so two jobs started
    together on one machine can draw the same millisecond; the second then finds the first's event log
    and its context fails to start. A context made a moment later draws a new name."""
    return with_retries(
        "spark context", builder.getOrCreate, attempts=attempts, first_delay_s=0.1, retry_if=event_log_taken
    )


def event_log_taken(error: Exception) -> bool:
    return isinstance(error, Py4JJavaError) and any(taken in str(error) for taken in EVENT_LOG_TAKEN)


def tool_session(config: PipelineConfig, app_name: str) -> SparkSession:
    """A one-core local session for the command-line tools (report, quarantine replay, status), quiet
    but for errors. Its UI on an ephemeral port (a tool must not take a job's fixed UI port while the
    job is down, nor push a starting job off it) and no event log (the history server is for the jobs)."""
    spark = build_spark(config, app_name, master="local[1]", ui_port=0, event_log=False)
    spark.sparkContext.setLogLevel("ERROR")
    return spark
