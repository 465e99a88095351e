"""The fault-injection harness: the whole flow on the local stack, a fixed input, one fault at a time.

A :class:`FlowRun` owns one isolated pipeline (topics, database, keyspace, Delta paths, Debezium
connector) and runs both jobs as ``spark-submit`` subprocesses on their processing-time trigger, as
in production. The input is sent chunk by chunk through the real replay collector, with the poison
records produced between the chunks; a scenario injects its fault between two chunks, restarts
what it broke, and the run measures how long the pipeline took to catch up again. At the end the
stores are compared with the input: what a fault-free run gives, computed independently (the valid
readings' ids; aggregates from pandas; one quarantine row per poison record and flagged reading).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests
from kafka import KafkaConsumer, TopicPartition

from jobs import cdc_to_cassandra, raw_to_mongo
from jobs.kafka_auth import kafka_python_settings
from jobs.mongo_auth import mongo_client
from jobs.sinks import read_delta
from jobs.topics import topic_size
from jobs.transforms import raw_readings as T
from jobs.transforms.raw_readings import BRONZE_COORDINATES, bronze_readings
from stack import connector
from tests.support.cdc_events import reading_aqi_mismatches
from tests.support.flow import (
    aggregate_mismatches,
    cassandra_aggregates,
    cassandra_reading_rows,
    isolated_flow,
    out_of_range,
    submit_job,
)
from tests.support.pipeline import REPO_ROOT, produce

JOBS = ("raw_to_mongo", "cdc_to_cassandra")
TOPIC = {"raw_to_mongo": "raw_topic", "cdc_to_cassandra": "cdc_topic"}
QUERIES = {"raw_to_mongo": raw_to_mongo.QUERY_NAMES, "cdc_to_cassandra": cdc_to_cassandra.QUERY_NAMES}


# --- the fixed input ---------------------------------------------------------------------------


@dataclass
class Inputs:
    """Canonical readings as the collectors made them (their --out files), split for sending."""

    chunks: list[Path]  # NDJSON files, sent one by one by the replay collector
    late: Path  # the oldest Beijing readings, held back and sent last (behind the CDC watermark)
    readings: list[dict]  # every distinct reading of chunks + late

    @staticmethod
    def load(path: Path) -> list[dict]:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def build_inputs(data_dir: Path, folder: Path, beijing_rows: int, n_chunks: int) -> Inputs:
    """Run the collectors once over the recordings (Beijing slice, Open-Meteo, OpenAQ) into NDJSON files."""
    folder.mkdir(parents=True, exist_ok=True)
    collect = [sys.executable, "-m", "collectors"]
    beijing = sorted((data_dir / "bench").glob("PRSA_Data_*.csv"))[:3]
    runs = {
        "beijing": ["replay", "--dataset", "beijing", "--limit", str(beijing_rows), "--files", *map(str, beijing)],
        "openmeteo-brno": [
            "openmeteo",
            "--from-file",
            str(data_dir / "openmeteo" / "reflbo_air_brno_unixtime_2026-10-01.json"),
            "--as-of",
            "2026-10-01T08:30:00Z",
        ],
        "openmeteo-amsterdam": [
            "openmeteo",
            "--from-file",
            str(data_dir / "openmeteo" / "frenck_air_quality_current_hourly_amsterdam.json"),
        ],
        "openaq": [
            "openaq",
            "--from-file",
            str(data_dir / "openaq" / "openaqpy_v3_locations.json"),
            "--from-file",
            str(data_dir / "openaq" / "openaqpy_v3_sensors.json"),
        ],
    }
    readings: dict[str, list[dict]] = {}
    for name, argv in runs.items():
        out = folder / f"{name}.ndjson"
        subprocess.run(
            [*collect, *argv, "--out", str(out)], check=True, cwd=REPO_ROOT, timeout=300, capture_output=True
        )
        readings[name] = Inputs.load(out)
    # the first day of Beijing is held back: sent last, it is far behind the CDC job's watermark
    first_day = min(r["ts"] for r in readings["beijing"])[:10]
    late = [r for r in readings["beijing"] if r["ts"].startswith(first_day)]
    ordered = [r for r in readings["beijing"] if not r["ts"].startswith(first_day)]
    ordered += [r for name, rs in readings.items() if name != "beijing" for r in rs]
    chunks = []
    size = -(-len(ordered) // n_chunks)
    for i in range(n_chunks):
        path = folder / f"chunk-{i}.ndjson"
        path.write_text("".join(json.dumps(r) + "\n" for r in ordered[i * size : (i + 1) * size]))
        chunks.append(path)
    late_path = folder / "late.ndjson"
    late_path.write_text("".join(json.dumps(r) + "\n" for r in late))
    return Inputs(chunks=chunks, late=late_path, readings=ordered + late)


def poison_records(good: dict) -> dict[str, list[bytes]]:
    """One bad record of each kind the issue names, derived from a real reading, by expected reason."""
    encode = lambda r: json.dumps(r).encode()  # noqa: E731
    return {
        T.UNPARSEABLE: [encode(good)[:40]],  # truncated JSON
        T.WRONG_TYPE: [encode({**good, "pm25": "very high"})],
        T.UNKNOWN_SCHEMA_VERSION: [encode({**good, "schema_version": 99})],
        T.OUT_OF_RANGE: [encode({**good, "pm10": 1.0e9})],  # absurd value
        T.TOO_LARGE: [encode({**good, "raw": "x" * 1_000_000})],  # a 1 MB record
        T.EMPTY: [b""],
        T.NOT_UTF8: [b'{"event_id": "\xff\xfe\xfd"}'],
    }


# --- the table ---------------------------------------------------------------------------------


@dataclass
class Row:
    scenario: str
    repetitions: int = 0
    readings_in: int = 0
    mongo: int = 0
    bronze: int = 0
    cassandra: int | str = 0
    aggregates: str = ""
    lost: int = 0
    doubled: int = 0
    quarantined: int = 0
    recover_s: list[float] = field(default_factory=list)
    note: str = ""

    def as_dict(self) -> dict:
        rec = self.recover_s
        return {
            "scenario": self.scenario,
            "repetitions": self.repetitions,
            "readings in": self.readings_in,
            "MongoDB": self.mongo,
            "Delta bronze": self.bronze,
            "Cassandra": self.cassandra,
            "aggregates": self.aggregates,
            "lost": self.lost,
            "doubled": self.doubled,
            "quarantined": self.quarantined,
            "time to recover (s)": f"{min(rec):.0f}–{max(rec):.0f}"
            if len(rec) > 1
            else (f"{rec[0]:.0f}" if rec else "–"),
            "note": self.note,
        }


# --- one run of the flow -----------------------------------------------------------------------


class FlowRun:
    def __init__(
        self,
        stack,
        spark,
        tmp_path: Path,
        inputs: Inputs,
        scenario: str,
        submit_args: tuple[str, ...] = (),
        **overrides: str,
    ):
        self.stack, self.spark, self.tmp, self.inputs = stack, spark, tmp_path, inputs
        self.submit_args = submit_args  # jobs.submit's own (--master, --conf), before the job's
        self.row = Row(scenario)
        self.logs = tmp_path / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen] = {}
        self.starts: Counter = Counter()
        self.sends: Counter = Counter()  # event_id -> times sent
        self.poison = poison_records(inputs.readings[0])
        self.poison_sent: list[tuple[str, bytes]] = []
        self._flow = isolated_flow(stack, tmp_path, **overrides)
        self.config, self.env, self.session = self._flow.__enter__()
        self.mongo = mongo_client(self.config)[self.config.mongo.database][self.config.mongo.collection]
        self.connector_name = f"aqstream-flow-{self.config.mongo.database.removeprefix('aq_')}"

    # -- jobs -----------------------------------------------------------------------------------
    def checkpoint(self, job: str) -> Path:
        return Path(self.config.paths.checkpoint(job))

    def log_of(self, job: str) -> Path:
        return self.logs / f"{job}.log"

    def start_job(self, job: str) -> None:
        self.starts[job] += 1
        with self.log_of(job).open("a") as log:
            log.write(f"\n=== start {self.starts[job]} ===\n")
        self.procs[job] = submit_job(job, self.env, *self.submit_args, output=self.log_of(job))

    def start_jobs(self) -> None:
        for job in JOBS:
            self.start_job(job)

    def kill_job(self, job: str) -> None:
        proc = self.procs[job]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)

    def check_jobs(self) -> None:
        """A job that exited on its own is a loud failure of the run."""
        for job, proc in self.procs.items():
            if proc.poll() is not None:
                raise AssertionError(f"{job} exited {proc.returncode}:\n{self.tail(job)}")

    def tail(self, job: str, lines: int = 40) -> str:
        return "\n".join(self.log_of(job).read_text(errors="replace").splitlines()[-lines:])

    def batches(self, job: str, kind: str) -> list[int]:
        folder = self.checkpoint(job) / kind
        if not folder.is_dir():
            return []
        return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())

    def kill_during_batch(self, job: str, timeout_s: float = 240) -> str:
        """SIGKILL while a micro-batch runs: its offsets are logged, its commit is not."""
        return self.during_batch(job, lambda: self.kill_job(job), timeout_s)

    def during_batch(self, job: str, action: Callable[[], None], timeout_s: float = 240) -> str:
        """Run ``action`` the moment one of ``job``'s micro-batches runs (offsets logged, not committed)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_jobs()
            offsets, commits = self.batches(job, "offsets"), self.batches(job, "commits")
            if offsets and (not commits or offsets[-1] > commits[-1]):
                action()
                return f"batch {offsets[-1]} running"
            time.sleep(0.05)
        raise AssertionError(f"{job} started no micro-batch in {timeout_s:.0f}s:\n{self.tail(job)}")

    def driver_api(self, job: str, path: str):
        """GET ``path`` of the job's application in its driver's REST API (the Spark UI's /api/v1)."""
        applications = f"http://127.0.0.1:{self.config.monitoring.ui_port(job)}/api/v1/applications"
        app = requests.get(applications, timeout=5).json()[0]["id"]
        return requests.get(f"{applications}/{app}/{path}", timeout=5).json()

    def during_tasks(
        self,
        job: str,
        action: Callable[[], None],
        timeout_s: float = 240,
        feed: Callable[[], None] | None = None,
        feed_after_s: float = 20,
    ) -> str:
        """Run ``action`` while one of ``job``'s micro-batches, after its first two, has tasks running (its
        driver's REST API lists the same active stage with active tasks twice in a row, 50 ms apart: the
        listener's view lags the tasks): what the executors are doing then is lost with them. ``feed``, once,
        when no task has been seen ``feed_after_s`` after those two batches: the job may have finished its
        input before the first poll (its batches of a few hundred readings take about a second)."""
        deadline, seen, ready_at = time.monotonic() + timeout_s, None, None
        while time.monotonic() < deadline:
            if ready_at is not None and feed is not None and time.monotonic() - ready_at > feed_after_s:
                feed()
                feed = None
            self.check_jobs()
            if len(self.batches(job, "commits")) < 2:  # the first batches pay for the executors' start
                time.sleep(0.2)
                continue
            ready_at = ready_at or time.monotonic()
            try:
                stages = self.driver_api(job, "stages?status=active")
            except (requests.RequestException, ValueError, IndexError, KeyError):
                stages = []  # the driver's UI not up yet
            running = {s["stageId"]: s["numActiveTasks"] for s in stages if s.get("numActiveTasks", 0) > 0}
            if seen is not None and seen in running:
                action()
                return f"stage {seen} with {running[seen]} tasks running"
            seen = next(iter(running), None)
            time.sleep(0.05)
        raise AssertionError(f"{job} ran no task in {timeout_s:.0f}s:\n{self.tail(job)}")

    def kill_at_commit(self, job: str, timeout_s: float = 240) -> str:
        """SIGKILL the moment a batch has written its sinks (its log line): the checkpoint commit is under way."""
        seen = len(re.findall(rb"aqstream\.\w+: batch \d+:", self.log_of(job).read_bytes()))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_jobs()
            lines = re.findall(rb"aqstream\.\w+: batch (\d+):", self.log_of(job).read_bytes())
            if len(lines) > seen:
                self.kill_job(job)
                batch = int(lines[-1])
                state = "committed" if batch in self.batches(job, "commits") else "not committed"
                return f"batch {batch} written, {state}"
            time.sleep(0.02)
        raise AssertionError(f"{job} finished no micro-batch in {timeout_s:.0f}s:\n{self.tail(job)}")

    def kill_at_random(self, job: str, rng: random.Random) -> str:
        delay = rng.uniform(0.5, 12.0)
        time.sleep(delay)
        self.kill_job(job)
        return f"after {delay:.1f}s"

    # -- input ----------------------------------------------------------------------------------
    def send(self, path: Path, poison: bool = True, **collector_args: str) -> subprocess.Popen | None:
        """Send a chunk through the replay collector, then (interleaved) one poison record of each kind."""
        proc = self.collector(path, **collector_args)
        if collector_args.get("background"):
            return proc
        self._sent(path)
        if poison:
            self.send_poison()
        return None

    def collector(self, path: Path, background: str = "", speed: str = "max") -> subprocess.Popen:
        argv = [sys.executable, "-m", "collectors", "replay", "--dataset", "ndjson", "--files", str(path)]
        argv += ["--speed", speed, "--bootstrap", self.config.kafka.bootstrap_servers]
        argv += [
            "--topic",
            self.config.kafka.raw_topic,
            "--spool-dir",
            str(self.tmp / "spool"),
            "--log-level",
            "WARNING",
        ]
        proc = subprocess.Popen(argv, cwd=REPO_ROOT, start_new_session=True)
        if not background:
            assert proc.wait(timeout=300) == 0, f"the collector failed on {path}"
        return proc

    def _sent(self, path: Path) -> None:
        for reading in Inputs.load(path):
            self.sends[reading["event_id"]] += 1

    def send_poison(self) -> None:
        messages = [(code, value) for code, values in self.poison.items() for value in values]
        produce(
            kafka_python_settings(self.config, "admin"),
            self.config.kafka.raw_topic,
            [(b"poison", v) for _, v in messages],
        )
        self.poison_sent += messages

    # -- waiting ----------------------------------------------------------------------------------
    def caught_up(self, job: str) -> bool:
        """Every query of the job has committed its last planned batch, and it reaches the topic's end."""
        topic = getattr(self.config.kafka, TOPIC[job])
        return all(self._query_caught_up(query, topic) for query in QUERIES[job])

    def _query_caught_up(self, query: str, topic: str) -> bool:
        offsets, commits = self.batches(query, "offsets"), self.batches(query, "commits")
        if not offsets or not commits or commits[-1] != offsets[-1]:
            return False
        lines = (self.checkpoint(query) / "offsets" / str(offsets[-1])).read_text().splitlines()
        planned = {int(p): o for p, o in json.loads(lines[2])[topic].items()}
        return planned == self.end_offsets(topic)

    def end_offsets(self, topic: str) -> dict[int, int]:
        consumer = KafkaConsumer(**kafka_python_settings(self.config, "admin"), request_timeout_ms=20000)
        try:
            partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
            return {tp.partition: o for tp, o in consumer.end_offsets(partitions).items()}
        finally:
            consumer.close()

    def settled(self) -> bool:
        """Every job caught up, and Debezium has emitted an event for every document MongoDB holds."""
        try:
            documents = self.mongo.count_documents({})
            events = topic_size(kafka_python_settings(self.config, "admin"), self.config.kafka.cdc_topic)
            if "cdc_to_cassandra" in self.procs:
                table = f"{self.config.cassandra.keyspace}.{self.config.cassandra.readings_table}"
                rows = self.session.execute(f"SELECT count(*) FROM {table}", timeout=30).one()[0]
                if rows != documents or events < documents:
                    return False
            return all(self.caught_up(job) for job in self.procs)
        except Exception:  # a store that is down or restarting: not settled yet
            return False

    def wait_settled(self, timeout_s: float = 600) -> float:
        """Seconds until the pipeline has caught up with everything sent (two polls in a row)."""
        t0 = time.monotonic()
        streak = 0
        while streak < 2:
            self.check_jobs()
            streak = streak + 1 if self.settled() else 0
            if time.monotonic() - t0 > timeout_s:
                raise AssertionError(
                    f"{self.row.scenario}: not caught up in {timeout_s:.0f}s\n"
                    + "\n".join(f"--- {job}\n{self.tail(job)}" for job in self.procs)
                )
            time.sleep(1.0)
        return time.monotonic() - t0

    def recovered(self, t0: float) -> None:
        """Record the time from the end of a fault (t0) until the pipeline caught up again."""
        self.wait_settled()
        self.row.recover_s.append(time.monotonic() - t0)

    # -- the end state ----------------------------------------------------------------------------
    def expected_valid(self) -> dict[str, dict]:
        by_id = {r["event_id"]: r for r in self.inputs.readings}
        return {i: by_id[i] for i in self.sends if not out_of_range(by_id[i])}

    def expected_quarantine(self) -> Counter:
        by_id = {r["event_id"]: r for r in self.inputs.readings}
        expected = Counter(code for code, _ in self.poison_sent)
        expected[T.OUT_OF_RANGE] += sum(n for i, n in self.sends.items() if out_of_range(by_id[i]))
        return expected

    def compare(self, lost_ids: set[str] = frozenset(), with_cdc: bool = True) -> dict:
        """The stores against the input; ``lost_ids``: readings the scenario's config says must be missing."""
        expected = set(self.expected_valid()) - set(lost_ids)
        mongo_ids = [d["_id"] for d in self.mongo.find({}, {"_id": 1})]
        # bronze keeps every Kafka record once (a re-sent reading is a record of its own): its readings
        # are its one-row-per-event_id view, and a record in it twice is a doubled record
        bronze = read_delta(self.spark, str(self.config.paths.bronze))
        records = [tuple(r) for r in bronze.select(*BRONZE_COORDINATES).collect()]
        bronze_ids = [r.event_id for r in bronze_readings(bronze).select("event_id").collect()]
        stores = {"mongo": mongo_ids, "bronze": bronze_ids}
        if with_cdc:
            cassandra_rows = list(cassandra_reading_rows(self.session, self.config).values())
            stores["cassandra"] = [r["event_id"] for r in cassandra_rows]
        quarantine = read_delta(self.spark, str(self.config.paths.quarantine))
        quarantined = [
            (r.reason_code, bytes(r.value or b"")) for r in quarantine.select("reason_code", "value").collect()
        ]
        result = {
            name: {
                "landed": len(set(ids) & expected),
                "lost": sorted(expected - set(ids))[:5],
                "n_lost": len(expected - set(ids)),
                "doubled": len(ids) - len(set(ids)),
                "unexpected": sorted(set(ids) - expected)[:5],
            }
            for name, ids in stores.items()
        }
        result["bronze"]["doubled"] = len(records) - len(set(records))
        result["quarantine"] = Counter(code for code, _ in quarantined)
        result["expected_quarantine"] = self.expected_quarantine()
        # each poison record in quarantine with its own reason (by its original bytes)
        reasons_by_value = Counter(quarantined)
        result["poison_misfiled"] = [
            (code, value[:60]) for code, value in set(self.poison_sent) if reasons_by_value[(code, value)] < 1
        ]
        if with_cdc:
            valid = self.expected_valid()
            result["aggregates"] = aggregate_mismatches(
                [valid[i] for i in expected], cassandra_aggregates(self.session, self.config)
            )
            # each stored reading's AQI columns: the pure functions over the reading sent
            result["reading_aqi"] = reading_aqi_mismatches(
                {r["event_id"]: r for r in cassandra_rows}, [valid[i] for i in expected]
            )
        row = self.row
        row.readings_in = sum(self.sends.values()) + len(self.poison_sent)
        row.mongo, row.bronze = result["mongo"]["landed"], result["bronze"]["landed"]
        row.cassandra = result["cassandra"]["landed"] if with_cdc else "–"
        row.aggregates = ("equal" if not result["aggregates"] else "DIFFER") if with_cdc else "–"
        row.lost = max(r["n_lost"] for name, r in result.items() if name in stores)
        row.doubled = sum(r["doubled"] for name, r in result.items() if name in stores)
        row.quarantined = sum(result["quarantine"].values())
        return result

    def assert_exact(self, result: dict, with_cdc: bool = True) -> None:
        stores = ("mongo", "bronze", "cassandra") if with_cdc else ("mongo", "bronze")
        for name in stores:
            r = result[name]
            assert (r["n_lost"], r["doubled"], r["unexpected"]) == (0, 0, []), f"{self.row.scenario}: {name}: {r}"
        assert result["quarantine"] == result["expected_quarantine"], self.row.scenario
        assert result["poison_misfiled"] == [], self.row.scenario
        if with_cdc:
            assert result["aggregates"] == [], f"{self.row.scenario}: aggregates: {result['aggregates'][:10]}"
            assert result["reading_aqi"] == [], f"{self.row.scenario}: readings' AQI: {result['reading_aqi'][:10]}"

    def late_logged(self) -> int:
        """Late changes the CDC job counted (summed over its batch log lines)."""
        text = self.log_of("cdc_to_cassandra").read_text(errors="replace")
        return sum(int(n) for n in re.findall(r"batch \d+: (\d+) changes later than the watermark", text))

    def assert_late_counted_and_applied(self) -> int:
        """The late Beijing day (sent after everything newer had landed, far behind the CDC job's watermark)
        was counted and logged as late by cdc_to_cassandra, and still applied: each of its valid readings
        is in Cassandra's readings (their values, AQI and windows are checked by :meth:`compare`).
        Returns the late changes logged."""
        valid = self.expected_valid()
        late = [r["event_id"] for r in Inputs.load(self.inputs.late) if r["event_id"] in valid]
        assert late, "the input has no valid late reading"
        logged = self.late_logged()
        scenario = self.row.scenario
        assert logged >= len(late), f"{scenario}: cdc_to_cassandra logged {logged} late changes, {len(late)} sent"
        stored = cassandra_reading_rows(self.session, self.config).keys()
        missing = sorted(set(late) - stored)
        assert not missing, f"{scenario}: late readings counted but not applied: {missing[:5]}"
        return logged

    def close(self) -> None:
        for job, proc in self.procs.items():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=60)
            (self.tmp.parent / f"{self.row.scenario}-{job}.log").write_bytes(self.log_of(job).read_bytes())
        self.mongo.database.client.close()
        self._flow.__exit__(None, None, None)

    def connector_state(self) -> str:
        status = connector.status(self.stack.connect_url, self.connector_name) or {}
        return str([t.get("state") for t in status.get("tasks", [])])
