"""The local broker lets in only who presents its own SCRAM login, and each principal only where its ACLs
allow (jobs/kafka_acls.py): no credentials, a wrong password and another component's topic are refused.
Spark shows no Kafka password in a query's plan."""

from __future__ import annotations

import time
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.errors import KafkaError, NoBrokersAvailable

from jobs.kafka_auth import spark_kafka_options
from jobs.setup import create_topics
from jobs.topics import topic_size
from stack.services import kafka_pipeline_config
from tests.support.pipeline import isolated_config

pytestmark = pytest.mark.integration

BOUNDED = {"request_timeout_ms": 5000, "api_version_auto_timeout_ms": 5000}


def test_a_client_without_credentials_is_refused(stack):
    # PLAINTEXT on the SASL listener: the broker never gets a login, so it answers no request
    started = time.monotonic()
    with pytest.raises((NoBrokersAvailable, KafkaError)):
        admin = KafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap, **BOUNDED)
        try:
            admin.list_topics()
        finally:
            admin.close()
    assert time.monotonic() - started < 60


def test_a_wrong_password_is_refused(stack):
    wrong = {**stack.kafka_client("collector"), "sasl_plain_password": "not-the-collector-password-" + uuid.uuid4().hex}
    with pytest.raises((NoBrokersAvailable, KafkaError)) as refused:
        producer = KafkaProducer(**wrong, max_block_ms=5000, **BOUNDED)
        try:
            producer.send(kafka_pipeline_config(stack.cfg).kafka.raw_topic, b"x").get(timeout=10)
        finally:
            producer.close(timeout=0)
    assert "not-the-collector-password" not in str(refused.value)


def test_the_collector_may_write_raw_but_not_read_cdc(stack, spark, tmp_path):
    config, _ = isolated_config(stack, tmp_path, partitions=1)
    create_topics(config)  # the CDC topic too
    # its own topic: allowed
    producer = KafkaProducer(**stack.kafka_client("collector"), acks="all", max_block_ms=10000)
    try:
        producer.send(config.kafka.raw_topic, b"allowed").get(timeout=10)
    finally:
        producer.close()
    # another component's topic, read the way the jobs read (Spark's Kafka source): refused by the ACLs
    read_as_collector = {**spark_kafka_options(config, "collector"), "subscribe": config.kafka.cdc_topic}
    with pytest.raises(Exception, match="TopicAuthorizationException: Topic authorization failed"):
        spark.read.format("kafka").options(**read_as_collector).load().count()
    # the admin reads it: the topic exists, so the refusal is the ACLs', not a missing topic's
    read_as_admin = {**spark_kafka_options(config, "admin"), "subscribe": config.kafka.cdc_topic}
    assert spark.read.format("kafka").options(**read_as_admin).load().count() == 0


def test_spark_masks_the_jaas_option_in_a_plans_options(stack, spark):
    """The streaming source's options in a plan show the JAAS value redacted (spark.redaction.regex matches its
    value's ``password=``). Spark's v1 fallback relation in the same unstarted plan still prints it in clear:
    docs/security.md says so; no job prints that plan."""
    config = kafka_pipeline_config(stack.cfg)
    options = spark_kafka_options(config, "raw_to_mongo")
    stream = spark.readStream.format("kafka").options(**options, subscribe=config.kafka.raw_topic).load()
    plan = stream._jdf.queryExecution().toString()  # what explain(True) prints
    assert "kafka.sasl.jaas.config=*********(redacted)" in plan


def test_the_monitor_sees_offsets_but_reads_and_writes_no_record(stack, spark, tmp_path):
    config, _ = isolated_config(stack, tmp_path, partitions=1)
    create_topics(config)
    producer = KafkaProducer(**stack.kafka_client("collector"), acks="all", max_block_ms=10000)
    try:
        producer.send(config.kafka.raw_topic, b"a reading").get(timeout=10)
    finally:
        producer.close()
    # what jobs.status and jobs.report ask: the topic's offsets
    assert topic_size(stack.kafka_client("monitor"), config.kafka.raw_topic) == 1
    # a record: refused, whether read the way the jobs read or written
    read_as_monitor = {**spark_kafka_options(config, "monitor"), "subscribe": config.kafka.raw_topic}
    # it may describe the topic, so the refusal comes with the fetch of its records
    with pytest.raises(Exception, match="TopicAuthorizationException: Not authorized to access topics"):
        spark.read.format("kafka").options(**read_as_monitor).load().count()
    with pytest.raises(KafkaError, match="TopicAuthorizationFailed"):
        producer = KafkaProducer(**stack.kafka_client("monitor"), max_block_ms=10000, **BOUNDED)
        try:
            producer.send(config.kafka.raw_topic, b"not allowed").get(timeout=10)
        finally:
            producer.close(timeout=0)
