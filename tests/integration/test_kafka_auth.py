"""The local broker lets in only who presents its own SCRAM login, and each principal only where its ACLs
allow (jobs/kafka_acls.py): no credentials, a wrong password and another component's topic are refused.
Spark shows no Kafka password in a query's plan."""

from __future__ import annotations

import time
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError, NoBrokersAvailable, TopicAuthorizationFailedError

from jobs.kafka_auth import spark_kafka_options
from jobs.setup import create_topics
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


def test_the_collector_may_write_raw_but_not_read_cdc(stack, tmp_path):
    config, _ = isolated_config(stack, tmp_path, partitions=1)
    create_topics(config)  # the CDC topic too
    # its own topic: allowed
    producer = KafkaProducer(**stack.kafka_client("collector"), acks="all", max_block_ms=10000)
    try:
        producer.send(config.kafka.raw_topic, b"allowed").get(timeout=10)
    finally:
        producer.close()
    # another component's topic: refused by the ACLs, not by a missing topic
    consumer = KafkaConsumer(**stack.kafka_client("collector"), group_id=None, consumer_timeout_ms=10000)
    try:
        consumer.subscribe([config.kafka.cdc_topic])
        with pytest.raises(TopicAuthorizationFailedError):
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                consumer.poll(timeout_ms=1000)
    finally:
        consumer.close()


def test_spark_shows_no_kafka_password_in_a_plan(stack, spark):
    config = kafka_pipeline_config(stack.cfg)
    options = spark_kafka_options(config, "raw_to_mongo")
    password = config.credentials.login("kafka", "raw_to_mongo").password.get_secret_value()
    stream = spark.readStream.format("kafka").options(**options, subscribe=config.kafka.raw_topic).load()
    plan = stream._jdf.queryExecution().toString()  # what explain() and the SQL tab of the UI print
    assert "kafka.sasl.jaas.config" in plan or "redacted" in plan.lower() or config.kafka.raw_topic in plan
    assert password not in plan
