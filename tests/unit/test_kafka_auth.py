"""How each Kafka client authenticates (jobs/kafka_auth.py) and what each principal may do (jobs/kafka_acls.py)."""

from __future__ import annotations

import pytest

from jobs.config import REPO_ROOT, load_config
from jobs.kafka_acls import CONNECT_GROUP, CONNECT_INTERNAL_TOPIC_PREFIX, Grant, apply_acls, grants
from jobs.kafka_auth import java_client_properties, kafka_python_settings, spark_kafka_options

pytestmark = pytest.mark.unit

PASSWORD = "pw-Zq83mLx0-kk"  # this test's own, through an env: reference
ENVIRON = {"AQSTREAM__CREDENTIALS__KAFKA_PASSWORD_RAW_TO_MONGO": "env:TEST_KAFKA_PW", "TEST_KAFKA_PW": PASSWORD}


def config_with_env_password(**extra: str):
    return load_config(environ={**ENVIRON, **extra})


def test_spark_options_carry_the_principals_scram_login(monkeypatch):
    monkeypatch.setenv("TEST_KAFKA_PW", PASSWORD)
    options = spark_kafka_options(config_with_env_password(), "raw_to_mongo")
    assert options == {
        "kafka.bootstrap.servers": "127.0.0.1:9092",
        "kafka.security.protocol": "SASL_PLAINTEXT",
        "kafka.sasl.mechanism": "SCRAM-SHA-512",
        "kafka.sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="aqstream-raw-to-mongo" password="{PASSWORD}";',
    }


def test_kafka_python_settings_are_the_same_login(monkeypatch):
    monkeypatch.setenv("TEST_KAFKA_PW", PASSWORD)
    assert kafka_python_settings(config_with_env_password(), "raw_to_mongo") == {
        "bootstrap_servers": ["127.0.0.1:9092"],
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "aqstream-raw-to-mongo",
        "sasl_plain_password": PASSWORD,
    }


def test_a_plaintext_broker_reads_no_secret():
    # no secret file and no variable: a PLAINTEXT broker must not need one
    config = load_config(
        environ={
            "AQSTREAM__KAFKA__SECURITY_PROTOCOL": "PLAINTEXT",
            "AQSTREAM__CREDENTIALS__SECRETS_DIR": "/nonexistent",
        }
    )
    assert spark_kafka_options(config, "collector") == {"kafka.bootstrap.servers": "127.0.0.1:9092"}
    assert kafka_python_settings(config, "collector") == {"bootstrap_servers": ["127.0.0.1:9092"]}
    assert java_client_properties(config.kafka, None) == {}
    # nothing to grant on such a broker: no admin client is made (nothing listens at 127.0.0.1:9092 here)
    assert apply_acls(config) == 0


def test_a_cassandra_without_authentication_reads_no_secret():
    from jobs.cassandra_client import connect
    from jobs.session import cassandra_auth_settings

    config = load_config(
        environ={
            "AQSTREAM__CASSANDRA__AUTHENTICATION": "false",
            "AQSTREAM__CASSANDRA__PORT": "1",  # nothing listens: the connection fails, not the secret's read
            "AQSTREAM__CREDENTIALS__SECRETS_DIR": "/nonexistent",
        }
    )
    assert cassandra_auth_settings(config, "cdc") == {}
    with pytest.raises(Exception) as refused:
        connect(config, "cdc", timeout_s=1.0)
    assert "NoHostAvailable" in type(refused.value).__name__


def test_a_quote_in_a_password_is_escaped_for_jaas(monkeypatch):
    monkeypatch.setenv("TEST_KAFKA_PW", 'a"b\\c-long-enough')
    jaas = spark_kafka_options(config_with_env_password(), "raw_to_mongo")["kafka.sasl.jaas.config"]
    assert jaas.endswith('password="a\\"b\\\\c-long-enough";')


def allowed(config, who: str, resource: str, name: str, operation: str) -> bool:
    """Whether ``grants`` lets ``who`` do ``operation`` on a resource, as the broker matches ACLs."""
    for g in grants(config):
        if g.who != who or g.resource != resource or g.operation != operation:
            continue
        if name == g.name if g.pattern == "literal" else name.startswith(g.name):
            return True
    return False


def test_each_principal_may_do_what_it_needs_and_no_more():
    config = load_config(environ={})
    raw, quarantine, cdc, alerts = (
        "aq.readings.raw",
        "aq.readings.quarantine",
        "aqcdc.airquality.readings_raw",
        "aq.alerts",
    )
    expected = {
        ("collector", raw, "write"): True,
        ("collector", raw, "read"): False,
        ("collector", cdc, "read"): False,
        ("raw_to_mongo", raw, "read"): True,
        ("raw_to_mongo", quarantine, "write"): True,
        ("raw_to_mongo", raw, "write"): False,
        ("raw_to_mongo", cdc, "read"): False,
        ("cdc_to_cassandra", cdc, "read"): True,
        ("cdc_to_cassandra", alerts, "write"): True,
        ("cdc_to_cassandra", raw, "read"): False,
        ("cdc_to_cassandra", cdc, "write"): False,
        ("connect", cdc, "write"): True,
        ("connect", cdc, "create"): True,
        ("connect", "_aqstream-connect-offsets", "write"): True,
        ("connect", alerts, "write"): False,
        # the read-only tools: offsets of every pipeline topic, no record of any
        **{("monitor", topic, "describe"): True for topic in (raw, quarantine, cdc, alerts)},
        **{("monitor", topic, "read"): False for topic in (raw, quarantine, cdc, alerts)},
        ("monitor", raw, "write"): False,
    }
    actual = {(who, topic, op): allowed(config, who, "topic", topic, op) for who, topic, op in expected}
    assert actual == expected
    # Spark's generated group ids and the monitoring groups, for the two jobs only
    for who in ("raw_to_mongo", "cdc_to_cassandra"):
        assert allowed(config, who, "group", "spark-kafka-source-1b2c-driver-0", "read")
        assert allowed(config, who, "group", f"aqstream.{who}", "read")
    assert not allowed(config, "collector", "group", "spark-kafka-source-1b2c-driver-0", "read")
    assert not [g for g in grants(config) if g.who == "monitor" and g.resource != "topic"]
    assert allowed(config, "connect", "group", "aqstream-connect", "read")
    # no principal but the admin (a super user, no ACL) may alter or delete anything
    assert not [g for g in grants(config) if g.operation in ("alter_configs", "delete")]
    assert Grant("collector", "cluster", "kafka-cluster", "literal", "idempotent_write") in grants(config)


def test_the_connect_acls_name_the_workers_group_and_internal_topics():
    properties = dict(
        line.split("=", 1)
        for line in (REPO_ROOT / "conf" / "stack" / "connect-distributed.properties").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert properties["group.id"] == CONNECT_GROUP
    for key in ("offset.storage.topic", "config.storage.topic", "status.storage.topic"):
        assert properties[key].startswith(CONNECT_INTERNAL_TOPIC_PREFIX), key
