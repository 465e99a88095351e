"""Spool, high-water state and the CLI's pieces, with no Kafka running."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta

import pytest

from collectors import cli
from collectors.sink import KafkaSettings, KafkaSink, SentState, Spool
from jobs.config import load_config
from schemas.reading import build_reading

pytestmark = pytest.mark.unit

TS = datetime(2026, 10, 3, 10, 0, tzinfo=UTC)


def _reading(station="openmeteo-nairobi", hours=0):
    return build_reading(
        source="openmeteo",
        station_id=station,
        ts=TS + timedelta(hours=hours),
        ingested_at=TS,
        values={"pm25": 10.0 + hours},
        raw={},
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_kafka_spools_everything_in_order(tmp_path):
    settings = KafkaSettings(
        bootstrap_servers=f"127.0.0.1:{_closed_port()}",
        topic="aq.readings.raw",
        max_block_ms=1000,
        request_timeout_ms=1000,
        delivery_timeout_ms=2000,
    )
    sink = KafkaSink(settings, Spool(tmp_path))
    readings = [_reading(hours=h) for h in range(5)]
    report = sink.send(readings)
    assert (report.sent, report.spooled) == (0, 5)
    # the next batch waits behind the spool, which still cannot be sent
    report = sink.send([_reading(hours=5)])
    assert (report.sent, report.spooled) == (0, 1)
    sink.close()
    spooled = [r for path in Spool(tmp_path).files() for r in Spool.read(path)]
    assert [r["event_id"] for r in spooled] == [r["event_id"] for r in readings] + [_reading(hours=5)["event_id"]]
    assert not list(tmp_path.glob("*.tmp"))


def test_sent_state_skips_what_was_sent_and_survives_a_restart(tmp_path):
    state = SentState(tmp_path / "state.json")
    state.record([_reading(hours=0), _reading(hours=1), _reading("openmeteo-mombasa", hours=-3)])
    again = SentState(tmp_path / "state.json")
    assert not again.is_new(_reading(hours=1)) and again.is_new(_reading(hours=2))
    assert again.oldest_newest() == TS - timedelta(hours=3)
    assert json.loads((tmp_path / "state.json").read_text())["openmeteo-nairobi"] == "2026-10-03T11:00:00Z"


@pytest.mark.parametrize(("text", "seconds"), [("1h", 3600), ("15m", 900), ("1d", 86400), ("90s", 90)])
def test_parse_interval(text, seconds):
    assert cli.parse_interval(text).total_seconds() == seconds


def test_every_is_aligned_to_the_clock():
    now = datetime(2026, 11, 23, 11, 7, 43, tzinfo=UTC)
    assert cli.next_aligned(now, timedelta(hours=1)) == datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    assert cli.next_aligned(now, timedelta(minutes=15)) == datetime(2026, 11, 23, 11, 15, tzinfo=UTC)


def test_speed_option():
    assert cli.parse_speed("max") is None and cli.parse_speed("1") == 1.0 and cli.parse_speed("x60") == 60.0


def test_openaq_without_a_key_says_what_to_set(monkeypatch, caplog):
    monkeypatch.delenv("OPENAQ_API_KEY", raising=False)
    assert cli.main(["openaq", "--country", "KE", "--dry-run"]) == 2
    assert "set OPENAQ_API_KEY" in caplog.text


@pytest.mark.parametrize("command", ["openmeteo", "openaq", "replay"])
def test_help_for_each_command(command, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main([command, "--help"])
    assert done.value.code == 0 and "--dry-run" in capsys.readouterr().out


def test_openmeteo_from_file_to_ndjson(data_dir, tmp_path):
    out = tmp_path / "readings.ndjson"
    recorded = data_dir / "openmeteo" / "reflbo_air_brno_unixtime_2026-10-01.json"
    argv = ["openmeteo", "--from-file", str(recorded), "--as-of", "2026-10-01T08:30:00Z", "--out", str(out)]
    assert cli.main(argv) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 11 and all(isinstance(r["sent_at"], int) for r in lines)
    assert lines[-1]["event_id"] == "openmeteo:openmeteo-brno:20261001T080000Z"


def test_the_pipeline_config_sets_the_collectors_kafka_and_a_flag_overrides_it(data_dir, tmp_path, monkeypatch, caplog):
    """AQSTREAM__KAFKA__* (the jobs' settings) reach the collector's producer; --bootstrap still wins."""
    recorded = data_dir / "openmeteo" / "reflbo_air_brno_unixtime_2026-10-01.json"
    readings = tmp_path / "readings.ndjson"
    argv = ["openmeteo", "--from-file", str(recorded), "--as-of", "2026-10-01T08:30:00Z", "--out", str(readings)]
    assert cli.main(argv) == 0
    from_config, from_flag = _closed_port(), _closed_port()
    monkeypatch.setenv("AQSTREAM__KAFKA__BOOTSTRAP_SERVERS", f"127.0.0.1:{from_config}")
    monkeypatch.setenv("AQSTREAM__KAFKA__RAW_TOPIC", "site.readings.raw")
    # the collector principal's password, not a generated secret
    monkeypatch.setenv("AQSTREAM__CREDENTIALS__KAFKA_PASSWORD_COLLECTOR", "env:TEST_KAFKA_COLLECTOR_PW")
    monkeypatch.setenv("TEST_KAFKA_COLLECTOR_PW", "pw-collector-test-8c1d")
    replay = ["replay", "--dataset", "ndjson", "--files", str(readings), "--spool-dir", str(tmp_path / "spool")]
    replay += ["--max-block-ms", "1000"]

    assert cli.main(replay) == 0
    assert f"Kafka at 127.0.0.1:{from_config} unreachable" in caplog.text
    assert len([r for path in Spool(tmp_path / "spool").files() for r in Spool.read(path)]) == 11
    settings = cli.settings_from_args(cli.build_parser().parse_args(replay), load_config())
    assert (settings.kafka.bootstrap_servers, settings.kafka.topic) == (f"127.0.0.1:{from_config}", "site.readings.raw")

    caplog.clear()
    assert cli.main([*replay, "--bootstrap", f"127.0.0.1:{from_flag}"]) == 0
    assert f"Kafka at 127.0.0.1:{from_flag} unreachable" in caplog.text
