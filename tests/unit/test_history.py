"""Event logs and the history server: a job's session writes its event log into the configured folder
(created if missing), and ``python -m jobs.history start`` serves it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
import requests
from py4j.protocol import Py4JJavaError

from jobs import history
from jobs.config import REPO_ROOT, load_config
from jobs.session import CONTEXT_ATTEMPTS, event_log_settings, get_or_create

APP = "aqstream-eventlog-test"
# a job's session as jobs.runner builds it (build_spark), one tiny Spark job, stopped: its event log complete
JOB_SESSION = f"""
from jobs.config import load_config
from jobs.session import build_spark
spark = build_spark(load_config(), {APP!r}, master="local[1]", ui_port=0)
assert spark.range(10).count() == 10
spark.stop()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_event_log_settings_follow_the_config():
    default = load_config(environ={}).monitoring.event_log_dir
    assert default == str(REPO_ROOT / ".runs" / "spark-events")  # relative paths: against the repo, like paths.*

    def settings(event_log_dir: str) -> dict[str, str]:
        return event_log_settings(load_config(environ={"AQSTREAM__MONITORING__EVENT_LOG_DIR": event_log_dir}))

    assert settings("x/events")["spark.eventLog.enabled"] == "true"
    assert settings("x/events")["spark.eventLog.dir"] == (REPO_ROOT / "x" / "events").as_uri()
    assert settings("x/events")["spark.eventLog.rolling.enabled"] == "true"
    assert settings("hdfs://namenode:8020/spark-events")["spark.eventLog.dir"] == "hdfs://namenode:8020/spark-events"


def test_a_job_session_writes_its_event_log_and_the_history_server_serves_it(tmp_path):
    events = tmp_path / "not-yet" / "spark-events"  # Spark fails to start on a missing folder: build_spark makes it
    env = {
        "AQSTREAM__MONITORING__EVENT_LOG_DIR": str(events),
        "AQSTREAM__MONITORING__HISTORY_PORT": str(free_port()),
    }
    subprocess.run(
        [sys.executable, "-c", JOB_SESSION], env={**os.environ, **env}, cwd=REPO_ROOT, check=True, timeout=300
    )
    [log_folder] = events.glob("eventlog_v2_*")  # rolling event logs: one folder per application
    [events_file] = log_folder.glob("events_*")
    assert f'"App Name":"{APP}"' in events_file.read_text()

    config = load_config(environ=env)
    state = tmp_path / "history"  # its own pid file: never stops a history server the user started
    assert history.start(config, state_dir=state) == 0
    try:
        url = f"http://127.0.0.1:{config.monitoring.history_port}/api/v1/applications"
        deadline = time.monotonic() + 60
        apps: list = []
        while not apps and time.monotonic() < deadline:  # the server lists the folder shortly after it starts
            apps = requests.get(url, timeout=10).json()
            time.sleep(0.5)
        [app] = apps
        assert app["name"] == APP and app["attempts"][0]["completed"]
    finally:
        assert history.stop(config, state_dir=state) == 0
    assert not history.answers(f"http://127.0.0.1:{config.monitoring.history_port}")


def spark_refusal(spark, events) -> Py4JJavaError:
    """The error a context gets when its application's event log is already there: Spark's own writer,
    started twice on one application name."""
    jvm, jsc = spark._jvm, spark.sparkContext._jsc
    no_attempt = getattr(getattr(jvm.scala, "None$"), "MODULE$")

    def writer():
        return jvm.org.apache.spark.deploy.history.RollingEventLogFilesWriter(
            "local-1", no_attempt, jvm.java.net.URI(events.as_uri()), jsc.sc().conf(), jsc.hadoopConfiguration()
        )

    writer().start()
    with pytest.raises(Py4JJavaError) as refused:
        writer().start()
    return refused.value


class Builder:
    """A session builder whose first ``refusals`` contexts fail with ``error``."""

    def __init__(self, error: Exception, refusals: int):
        self.error, self.refusals, self.calls = error, refusals, 0

    def getOrCreate(self):  # noqa: N802 (SparkSession.Builder's name)
        self.calls += 1
        if self.calls <= self.refusals:
            raise self.error
        return "session"


def test_a_job_whose_event_log_name_was_taken_makes_a_new_context(spark, tmp_path):
    # two jobs started in the same millisecond draw the same local-<ms> name (seen in CI's fault suite)
    taken = spark_refusal(spark, tmp_path)
    builder = Builder(taken, refusals=CONTEXT_ATTEMPTS - 1)
    assert get_or_create(builder) == "session"
    assert builder.calls == CONTEXT_ATTEMPTS

    always = Builder(taken, refusals=CONTEXT_ATTEMPTS)
    with pytest.raises(Py4JJavaError, match="Target log directory already exists"):
        get_or_create(always)
    assert always.calls == CONTEXT_ATTEMPTS  # a bounded number of tries, then Spark's own error


def test_any_other_context_failure_is_raised_at_once(spark):
    with pytest.raises(Py4JJavaError) as other:
        spark._jvm.java.net.URI("not a uri")
    builder = Builder(other.value, refusals=1)
    with pytest.raises(Py4JJavaError, match="URISyntaxException"):
        get_or_create(builder)
    assert builder.calls == 1
