"""Collectors → the real Kafka of the local stack → consumed back, equal to the expected readings.

Expected readings come from the same collectors writing NDJSON (``--out``); Kafka must deliver
exactly those, keyed by station. With Kafka stopped mid-run, readings go to the spool and are
delivered after it is back: none lost, none doubled (by ``event_id``).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from kafka.admin import KafkaAdminClient, NewTopic

from collectors import cli
from collectors.sink import Spool
from jobs.config import load_config
from jobs.kafka_acls import apply_acls
from jobs.topics import read_topic

pytestmark = pytest.mark.integration

VOLATILE = ("ingested_at", "sent_at")


def _topic(stack, partitions: int = 3) -> str:
    """A raw topic of this test's own, which the collector principal may write (as `jobs.setup topics` grants)."""
    name = f"test.collectors.{uuid.uuid4().hex[:10]}"
    admin = KafkaAdminClient(**stack.kafka_client("admin"))
    try:
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        admin.close()
    apply_acls(
        load_config(
            environ={"AQSTREAM__KAFKA__BOOTSTRAP_SERVERS": stack.kafka_bootstrap, "AQSTREAM__KAFKA__RAW_TOPIC": name}
        )
    )
    return name


def _keyed_readings(stack, topic: str) -> list[tuple[str, dict]]:
    """(key, reading) of every record of the topic."""
    return [(r.key.decode(), json.loads(r.value)) for r in read_topic(stack.kafka_client("admin"), topic)]


def _stable(reading: dict) -> dict:
    return {k: v for k, v in reading.items() if k not in VOLATILE}


def _ndjson(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _collector_runs(data_dir: Path) -> dict[str, list[str]]:
    om, oa = data_dir / "openmeteo", data_dir / "openaq"
    return {
        "openmeteo": [
            "openmeteo",
            "--from-file",
            str(om / "reflbo_air_brno_unixtime_2026-10-01.json"),
            "--as-of",
            "2026-10-01T08:30:00Z",
        ],
        "openaq": [
            "openaq",
            "--from-file",
            str(oa / "openaqpy_v3_locations.json"),
            "--from-file",
            str(oa / "openaqpy_v3_sensors.json"),
        ],
        "kaggle": [
            "replay",
            "--dataset",
            "kaggle",
            "--files",
            str(data_dir / "kaggle" / "air_quality_pollution_assessment.csv"),
            "--limit",
            "200",
        ],
        "beijing": [
            "replay",
            "--dataset",
            "beijing",
            "--files",
            *[str(p) for p in sorted((data_dir / "bench").glob("PRSA_Data_*.csv"))[:2]],
            "--limit",
            "100",
        ],
    }


@pytest.mark.parametrize("collector", ["openmeteo", "openaq", "kaggle", "beijing"])
def test_collector_to_kafka_and_back(stack, data_dir, tmp_path, collector):
    argv = _collector_runs(data_dir)[collector]
    expected_file = tmp_path / "expected.ndjson"
    assert cli.main([*argv, "--out", str(expected_file)]) == 0
    expected = _ndjson(expected_file)
    assert expected

    topic = _topic(stack)
    spool = tmp_path / "spool"
    assert cli.main([*argv, "--bootstrap", stack.kafka_bootstrap, "--topic", topic, "--spool-dir", str(spool)]) == 0
    consumed = _keyed_readings(stack, topic)

    assert all(key == message["station_id"] for key, message in consumed)
    assert all(isinstance(message["sent_at"], int) for _, message in consumed)
    by_id = {message["event_id"]: _stable(message) for _, message in consumed}
    assert len(by_id) == len(consumed) == len(expected)
    assert by_id == {r["event_id"]: _stable(r) for r in expected}
    assert not Spool(spool).files()


def test_an_api_collector_does_not_resend_after_a_restart(stack, data_dir, tmp_path):
    argv = _collector_runs(data_dir)["openaq"]
    topic = _topic(stack)
    common = ["--bootstrap", stack.kafka_bootstrap, "--topic", topic, "--spool-dir", str(tmp_path / "spool")]
    assert cli.main([*argv, *common]) == 0
    assert cli.main([*argv, *common]) == 0  # a restart: same latest values, already sent
    consumed = _keyed_readings(stack, topic)
    assert len(consumed) == 2  # Del Norte at 20:00Z and 21:00Z, once each


@pytest.mark.restarts_stack
def test_kafka_stopped_mid_run_spools_then_delivers(stack, data_dir, tmp_path):
    # three batches of real Kaggle readings; Kafka is stopped for the second
    source = tmp_path / "all.ndjson"
    kaggle = data_dir / "kaggle" / "air_quality_pollution_assessment.csv"
    assert (
        cli.main(["replay", "--dataset", "kaggle", "--files", str(kaggle), "--limit", "90", "--out", str(source)]) == 0
    )
    readings = source.read_text().splitlines()
    parts = []
    for n in range(3):
        part = tmp_path / f"part{n}.ndjson"
        part.write_text("\n".join(readings[n * 30 : (n + 1) * 30]) + "\n")
        parts.append(part)

    topic = _topic(stack)
    spool = tmp_path / "spool"

    def run(part: Path) -> int:
        return cli.main(
            [
                "replay",
                "--dataset",
                "ndjson",
                "--files",
                str(part),
                "--bootstrap",
                stack.kafka_bootstrap,
                "--topic",
                topic,
                "--spool-dir",
                str(spool),
                "--max-block-ms",
                "3000",
                "--delivery-timeout-ms",
                "12000",
            ]
        )

    assert run(parts[0]) == 0
    assert not Spool(spool).files(), "Kafka was up: the first part must not be spooled"
    stack.stop_service("kafka")
    try:
        assert run(parts[1]) == 0
        assert Spool(spool).pending_count() == 30
    finally:
        stack.start_service("kafka")
    assert run(parts[2]) == 0  # the next start sends the spool first, then its own batch
    assert not Spool(spool).files()

    consumed = [message["event_id"] for _, message in _keyed_readings(stack, topic)]
    expected = [json.loads(line)["event_id"] for line in readings]
    assert sorted(consumed) == sorted(expected)  # none lost, none doubled
    assert len(set(consumed)) == 90
