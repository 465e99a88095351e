"""Spark's history server on the jobs' event logs: finished and running jobs' stages, SQL plans, streaming
batches stay inspectable after the job's own UI is gone.

Usage:
    python -m jobs.history start [--config conf/pipeline.toml]   (make history)
    python -m jobs.history stop  [--config conf/pipeline.toml]   (make history-stop)

The jobs write their event logs to ``monitoring.event_log_dir`` (jobs/session.py); the server reads that
folder and serves its UI on loopback at ``monitoring.history_port``. It is Spark's own
``sbin/start-history-server.sh`` from the pyspark wheel, its pid file and log under .runs/spark-history.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from jobs.config import REPO_ROOT, PipelineConfig, load_config_or_report
from jobs.paths import ensure_local_dir, path_uri

HOST = "127.0.0.1"
STATE_DIR = REPO_ROOT / ".runs" / "spark-history"  # the server's pid file and log
IDENT = "aqstream"  # spark-daemon.sh names its pid and log files after it


def spark_home() -> Path:
    """The pyspark wheel's folder: Spark's bin/, sbin/ and jars/."""
    import pyspark

    return Path(pyspark.__file__).parent


def server_env(config: PipelineConfig, state_dir: Path = STATE_DIR) -> dict[str, str]:
    """The environment spark-daemon.sh reads: where the logs are, the port, loopback only, where its
    pid file and log go (not the wheel's folder, not /tmp)."""
    options = {
        "spark.history.fs.logDirectory": path_uri(config.monitoring.event_log_dir),
        "spark.history.ui.port": str(config.monitoring.history_port),
    }
    return {
        **os.environ,
        "SPARK_HOME": str(spark_home()),
        "SPARK_HISTORY_OPTS": " ".join(f"-D{key}={value}" for key, value in options.items()),
        "SPARK_LOCAL_IP": HOST,  # Spark's web UIs bind to SPARK_LOCAL_IP, else every interface
        "SPARK_PUBLIC_DNS": HOST,
        "SPARK_LOG_DIR": str(state_dir),
        "SPARK_PID_DIR": str(state_dir),
        "SPARK_IDENT_STRING": IDENT,
    }


def url(config: PipelineConfig) -> str:
    return f"http://{HOST}:{config.monitoring.history_port}"


def answers(base_url: str) -> bool:
    try:
        return requests.get(f"{base_url}/api/v1/applications", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def start(config: PipelineConfig, state_dir: Path = STATE_DIR, timeout_s: float = 90.0) -> int:
    base_url = url(config)
    if answers(base_url):
        print(f"Spark history server already running: {base_url}")
        return 0
    ensure_local_dir(config.monitoring.event_log_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    script = spark_home() / "sbin" / "start-history-server.sh"
    started = subprocess.run([str(script)], env=server_env(config, state_dir), capture_output=True, text=True)
    if started.returncode != 0:
        print(f"{script} failed: {started.stdout}{started.stderr}", file=sys.stderr)
        return 1
    deadline = time.monotonic() + timeout_s
    while not answers(base_url):
        if time.monotonic() > deadline:
            print(f"the history server did not answer at {base_url} in {timeout_s:.0f}s; its log:", file=sys.stderr)
            for log in sorted(state_dir.glob(f"spark-{IDENT}-*HistoryServer*.out")):
                print("\n".join(log.read_text().splitlines()[-30:]), file=sys.stderr)
            return 1
        time.sleep(1.0)
    print(f"Spark history server: {base_url} (event logs: {config.monitoring.event_log_dir})")
    return 0


def stop(config: PipelineConfig, state_dir: Path = STATE_DIR, timeout_s: float = 60.0) -> int:
    """Stop the server this pid file names; return once its port no longer answers (spark-daemon.sh only
    sends SIGTERM)."""
    script = spark_home() / "sbin" / "stop-history-server.sh"
    stopped = subprocess.run([str(script)], env=server_env(config, state_dir), capture_output=True, text=True)
    print((stopped.stdout + stopped.stderr).strip() or "Spark history server stopped")
    deadline = time.monotonic() + timeout_s
    while answers(url(config)):
        if time.monotonic() > deadline:
            print(f"the history server still answers at {url(config)} after {timeout_s:.0f}s", file=sys.stderr)
            return 1
        time.sleep(0.5)
    return stopped.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jobs.history", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=("start", "stop"))
    parser.add_argument("--config", default=None, help="pipeline config TOML (default conf/pipeline.toml)")
    args = parser.parse_args(argv)
    config = load_config_or_report(args.config)
    if config is None:
        return 2
    return start(config) if args.action == "start" else stop(config)


if __name__ == "__main__":
    sys.exit(main())
