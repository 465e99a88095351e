"""Monitoring against the real stack: both jobs run as spark-submit processes over a known set of
readings while the stack's Prometheus scrapes them; Prometheus itself is then asked what it saw.

What the jobs were given is known here, independently of the code under test: the readings the
replay collector sent (its --out copy), the broken records this test produced, the readings the
collector flagged out of range, and the CDC topic's own size. A batch limit of 100 records makes
the jobs work through the backlog in several batches, so the lag Prometheus records is not zero.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

import pytest

from jobs.topics import topic_size, wait_for_cdc
from jobs.transforms import raw_readings as T
from tests.support import prometheus as prom
from tests.support.flow import POISON, isolated_flow, out_of_range, submit_job
from tests.support.pipeline import produce, replay_to_kafka

BATCH_LIMIT = 100
RULE_FOR_S = 60  # AqstreamJobDown's `for:` in conf/prometheus/rules.yml
SCRAPE_S = 5  # scrape and evaluation interval of conf/prometheus/prometheus.yml


@pytest.fixture
def monitored_flow(stack, tmp_path):
    overrides = {
        "kafka__max_offsets_per_trigger": str(BATCH_LIMIT),
        "streaming__trigger_interval": "5 seconds",
        "streaming__bronze_trigger_interval": "5 seconds",
    }
    with isolated_flow(stack, tmp_path, **overrides) as flow:
        yield flow


def _stop(process) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)


def test_prometheus_sees_each_jobs_rows_quarantine_and_lag_and_fires_job_down(
    stack, data_dir, tmp_path, monitored_flow
):
    config, env, _session = monitored_flow
    url = stack.cfg.prometheus_url
    beijing = sorted((data_dir / "bench").glob("PRSA_Data_*.csv"))[:1]
    sent = replay_to_kafka(config, "beijing", beijing, limit=400, out=tmp_path / "beijing.ndjson")
    poison = [(b"poison", v) for values in POISON.values() for v in values]
    produce(config.kafka.bootstrap_servers, config.kafka.raw_topic, poison)
    records = len(sent) + len(poison)
    valid = {r["event_id"] for r in sent if not out_of_range(r)}
    expected_reasons = Counter({code: len(values) for code, values in POISON.items()})
    expected_reasons[T.OUT_OF_RANGE] += sum(out_of_range(r) for r in sent)

    started = time.time()
    raw = submit_job("raw_to_mongo", env, output=tmp_path / "raw_to_mongo.log")
    cdc = submit_job("cdc_to_cassandra", env, output=tmp_path / "cdc_to_cassandra.log")
    try:
        # everything read, and nothing behind, as Prometheus scraped it from the jobs' endpoints
        wait_for_cdc(config.kafka.bootstrap_servers, config.kafka.cdc_topic, valid, timeout_s=300)
        changes = topic_size(config.kafka.bootstrap_servers, config.kafka.cdc_topic)
        for query, expected in (
            ("raw_to_mongo", records),
            ("raw_to_mongo_bronze", records),
            ("cdc_to_cassandra", changes),
        ):
            prom.wait_until(
                url,
                f'aqstream_input_rows_total{{query="{query}"}}',
                lambda v, n=expected: v == n,
                timeout_s=240,
                what=f"{query}'s input rows (expected {expected})",
            )
            prom.wait_until(
                url,
                f'sum(aqstream_records_behind_latest{{query="{query}"}})',
                lambda v: v == 0,
                timeout_s=60,
                what=f"{query}'s records behind latest",
            )
        quarantined = {
            labels["reason"]: n
            for labels, n in prom.query(url, 'aqstream_quarantined_records_total{query="raw_to_mongo"}')
        }
        assert quarantined == dict(+expected_reasons)

        # the lag on the way: whenever Prometheus scraped raw_to_mongo, what it had read plus what
        # it had left unread was the whole topic (every record was sent before the job started),
        # and at the first batches most of it was still unread
        read_plus_unread = prom.query_range(
            url,
            'sum(aqstream_records_behind_latest{query="raw_to_mongo"})'
            ' + sum(aqstream_input_rows_total{query="raw_to_mongo"})',
            started,
            time.time(),
            SCRAPE_S,
        )
        assert read_plus_unread and set(read_plus_unread[0][1]) == {float(records)}
        since = f"{int(time.time() - started) + 60}s"
        behind = f'aqstream_records_behind_latest{{query="raw_to_mongo", topic="{config.kafka.raw_topic}"}}'
        peak = prom.value(url, f"max_over_time({behind}[{since}])")
        assert peak is not None and peak >= records - 2 * BATCH_LIMIT

        # Spark's own metrics (PrometheusServlet) and the connector's state (Kafka Connect's JMX agent)
        assert prom.value(url, 'up{job="spark_raw_to_mongo"}') == 1
        assert prom.value(url, 'up{job="spark_cdc_to_cassandra"}') == 1
        connector = f"aqstream-flow-{config.mongo.database.removeprefix('aq_')}"
        assert prom.value(url, f'min(aqstream_connector_task_running{{connector="{connector}"}})') == 1

        # a killed job: its scrape fails, and AqstreamJobDown fires within its `for:` window
        prom.wait_until(
            url,
            'count(ALERTS{alertname="AqstreamJobDown", job="aqstream_raw_to_mongo"})',
            lambda v: v is None,
            timeout_s=4 * SCRAPE_S,
            what="AqstreamJobDown while raw_to_mongo runs",
        )
        _stop(raw)
        killed = time.monotonic()
        prom.wait_until(
            url,
            'count(ALERTS{alertname="AqstreamJobDown", job="aqstream_raw_to_mongo", alertstate="firing"})',
            lambda v: v == 1,
            timeout_s=RULE_FOR_S + 4 * SCRAPE_S,
            what="AqstreamJobDown after raw_to_mongo was killed",
        )
        assert time.monotonic() - killed >= RULE_FOR_S - SCRAPE_S  # it waited its `for:` window
    finally:
        _stop(raw)
        _stop(cdc)
