"""The whole flow on the local stack, from recorded real data to Cassandra, then a summary.

Usage:
    python -m stack.demo [--data-dir ../shared/data] [--beijing-rows 2000] [--keep-running] [--live]

Steps: start the stack; create topics, Mongo indexes, the Cassandra schema; register the
Debezium connector; replay the recorded Open-Meteo and OpenAQ responses, the Kaggle set and a
slice of the UCI Beijing set through the collectors into Kafka (``--live`` asks the live
Open-Meteo API instead); run raw_to_mongo with spark-submit until it has caught up; wait for
Debezium; run cdc_to_cassandra until it has caught up; print what landed where; stop the stack
(unless ``--keep-running`` or it was already running).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

from jobs.topics import wait_for_cdc
from stack import connector
from stack.config import REPO_ROOT
from stack.core import Stack

PY = sys.executable


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def run(args: list[str], quiet: bool = False, env: dict | None = None, show_all: bool = False) -> None:
    """Run a command from the repo root; stream the lines that matter, fail loudly."""
    print("$ " + " ".join(str(a) for a in args), flush=True)
    proc = subprocess.Popen(
        [str(a) for a in args],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", **(env or {})},
    )
    tail: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        tail = (tail + [line])[-60:]
        if show_all or (not quiet and ("aqstream" in line or " ERROR " in line or "collectors" in line)):
            print("   " + line.rstrip(), flush=True)
    if proc.wait() != 0:
        sys.stdout.write("".join(tail))
        raise SystemExit(f"demo: step failed ({proc.returncode}): {' '.join(map(str, args))}")


def collect(data_dir: Path, beijing_rows: int, live: bool) -> None:
    om, oa = data_dir / "openmeteo", data_dir / "openaq"
    if live:
        run([PY, "-m", "collectors", "openmeteo", "--once", "--past-days", "1"])
    else:
        for name in ("reflbo_air_brno_unixtime_2026-10-01.json", "reflbo_air_new_york_unixtime_2026-10-01.json"):
            run([PY, "-m", "collectors", "openmeteo", "--from-file", om / name, "--as-of", "2026-10-01T08:30:00Z"])
        amsterdam = om / "frenck_air_quality_current_hourly_amsterdam.json"  # its `current.time` dates it
        run([PY, "-m", "collectors", "openmeteo", "--from-file", amsterdam])
        # trimmed to one hour, without `current` or a recorded fetch time: dated at that hour (it is observed)
        tempi = om / "tempi_air_quality_trimmed_amsterdam.json"
        run([PY, "-m", "collectors", "openmeteo", "--from-file", tempi, "--as-of", "2026-07-10T22:00:00Z"])
    run(
        [
            PY,
            "-m",
            "collectors",
            "openaq",
            "--from-file",
            oa / "openaqpy_v3_locations.json",
            "--from-file",
            oa / "openaqpy_v3_sensors.json",
        ]
    )
    run(
        [
            PY,
            "-m",
            "collectors",
            "replay",
            "--dataset",
            "kaggle",
            "--files",
            data_dir / "kaggle" / "air_quality_pollution_assessment.csv",
        ]
    )
    beijing = sorted((data_dir / "bench").glob("PRSA_Data_*.csv"))
    run([PY, "-m", "collectors", "replay", "--dataset", "beijing", "--limit", str(beijing_rows), "--files", *beijing])


LAG_QUERY = "sum by (query) (aqstream_records_behind_latest)"


def lag_graph_url(prometheus_url: str, range_input: str = "15m") -> str:
    """The Prometheus graph page of every query's records behind latest (its classic UI's URL parameters)."""
    params = {"g0.expr": LAG_QUERY, "g0.tab": "0", "g0.range_input": range_input}
    return f"{prometheus_url}/graph?{urllib.parse.urlencode(params)}"


def dashboard_url() -> str:
    """Where ``make serve`` (python -m dashboard) answers, from ``[dashboard]`` of the pipeline config."""
    from jobs.config import load_config

    settings = load_config().dashboard
    return f"http://{settings.host}:{settings.port}/"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stack.demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("AQSTREAM_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))
    )
    parser.add_argument("--beijing-rows", type=int, default=2000, help="Beijing readings (six stations, time order)")
    parser.add_argument("--keep-running", action="store_true", help="leave the stack up at the end")
    parser.add_argument("--live", action="store_true", help="live Open-Meteo API instead of recorded responses")
    args = parser.parse_args(argv)
    started = time.monotonic()

    stack = Stack()
    was_running = all(s.pid for s in stack.status())
    step("Starting the local stack")
    stack.up()
    try:
        step("Topics, MongoDB indexes, Cassandra schema")
        run([PY, "-m", "jobs.setup", "all"])
        step("Debezium MongoDB connector")
        definition = connector.stack_definition(stack.cfg)
        print(f"  {definition['name']}: {connector.register(stack.connect_url, definition)}")
        connector.wait_running(stack.connect_url, definition["name"])
        step("Replaying recorded real readings through the collectors")
        collect(args.data_dir, args.beijing_rows, args.live)
        print(f"\nPrometheus graphs each job's lag while it runs: {lag_graph_url(stack.cfg.prometheus_url)}")
        step("raw_to_mongo (spark-submit; Spark UI on http://localhost:4040 while it runs)")
        run([PY, "-m", "jobs.submit", "raw_to_mongo", "--available-now"])
        step("Waiting for Debezium to emit every change")
        captured = definition["config"]["collection.include.list"]  # "<database>.<collection>"
        cdc_topic = f"{definition['config']['topic.prefix']}.{captured}"
        database, collection = captured.split(".", 1)
        client = stack.mongo_client()
        document_ids = [d["_id"] for d in client[database][collection].find({}, {"_id": 1})]
        client.close()
        try:
            events = wait_for_cdc(stack.kafka_client("admin"), cdc_topic, document_ids)
        except TimeoutError as exc:
            raise SystemExit(f"demo: {exc}") from None
        print(f"  {events} change events for {len(document_ids)} documents")
        step("cdc_to_cassandra (spark-submit; Spark UI on http://localhost:4041 while it runs)")
        run([PY, "-m", "jobs.submit", "cdc_to_cassandra", "--available-now"])
        step("What landed where")
        run([PY, "-m", "jobs.report"], quiet=False, show_all=True)
    finally:
        kept = args.keep_running or was_running
        if kept:
            print("\nThe stack is still running (make down stops it).")
        else:
            step("Stopping the stack")
            stack.down()
    print(f"\ndemo finished in {time.monotonic() - started:.0f}s")
    print(f"The dashboard over what landed: {'' if kept else 'make up && '}make serve, then {dashboard_url()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
