"""How a Kafka client presents itself: one principal per component (docs/security.md).

Every Kafka client of the suite gets its settings here, so there is one place that says how the
suite authenticates: kafka-python's keyword arguments (:func:`kafka_python_settings`), the Java client's
properties (:func:`java_client_properties`: Kafka Connect's worker) and the Spark Kafka source/sink
options (:func:`spark_kafka_options`, the same properties prefixed ``kafka.``). The password is read from
``[credentials]`` only when a client is built, and never logged: :mod:`jobs.redact` masks it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jobs.config import KafkaConfig, Login, PipelineConfig

SCRAM_LOGIN_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"


def jaas_config(login: Login) -> str:
    """The ``sasl.jaas.config`` of a SCRAM login. The generated secrets are URL-safe base64: nothing to escape;
    a quote or backslash in a password of your own is escaped as JAAS reads it."""

    def quoted(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'

    password = login.password.get_secret_value()
    return f"{SCRAM_LOGIN_MODULE} required username={quoted(login.username)} password={quoted(password)};"


def java_client_properties(kafka: KafkaConfig, login: Login | None) -> dict[str, str]:
    """The Java client's security properties (no bootstrap servers): none for a PLAINTEXT broker."""
    if kafka.security_protocol == "PLAINTEXT":
        return {}
    assert login is not None
    return {
        "security.protocol": kafka.security_protocol,
        "sasl.mechanism": kafka.sasl_mechanism,
        "sasl.jaas.config": jaas_config(login),
    }


def _login(config: PipelineConfig, who: str) -> Login | None:
    if config.kafka.security_protocol == "PLAINTEXT":
        return None
    return config.credentials.login("kafka", who)


def spark_kafka_options(config: PipelineConfig, who: str) -> dict[str, str]:
    """The Spark Kafka source's or sink's connection options for principal ``who``."""
    properties = java_client_properties(config.kafka, _login(config, who))
    return {"kafka.bootstrap.servers": config.kafka.bootstrap_servers} | {
        f"kafka.{name}": value for name, value in properties.items()
    }


def kafka_python_security(config: PipelineConfig, who: str) -> dict[str, Any]:
    """kafka-python's SASL keyword arguments for principal ``who`` (none for a PLAINTEXT broker)."""
    login = _login(config, who)
    if login is None:
        return {}
    return {
        "security_protocol": config.kafka.security_protocol,
        "sasl_mechanism": config.kafka.sasl_mechanism,
        "sasl_plain_username": login.username,
        "sasl_plain_password": login.password.get_secret_value(),
    }


def kafka_python_settings(config: PipelineConfig, who: str) -> dict[str, Any]:
    """kafka-python's keyword arguments for principal ``who``: ``KafkaConsumer(**settings, ...)``."""
    return {"bootstrap_servers": config.kafka.bootstrap_servers.split(","), **kafka_python_security(config, who)}


@contextlib.contextmanager
def client_properties_file(config: PipelineConfig, who: str) -> Iterator[Path | None]:
    """The Java client's properties for principal ``who`` in a private temporary file (mode 0600, removed
    after), for Kafka's command-line tools (``--command-config``); None for a PLAINTEXT broker."""
    properties = java_client_properties(config.kafka, _login(config, who))
    if not properties:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="aqstream-kafka-") as folder:  # created 0700
        path = Path(folder) / "client.properties"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write("".join(f"{name}={value}\n" for name, value in properties.items()))
        yield path
