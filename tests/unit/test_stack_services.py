"""The stack's preparation steps: Kafka's cluster id, and how a failed preparation is reported."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from stack.config import StackConfig
from stack.core import JAR_SETS
from stack.secret_files import ensure_secrets
from stack.services import Kafka, StackError, kafka_random_uuid

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_kafka_cluster_ids_are_url_safe_base64_of_16_bytes_and_never_begin_with_a_dash():
    # about one uuid4 in 64 encodes to a leading '-'; 20,000 draws would meet ~300 of them
    ids = [kafka_random_uuid() for _ in range(20_000)]
    assert not [i for i in ids if i.startswith("-")]
    for cluster_id in ids:
        assert len(cluster_id) == 22
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16
        assert set(cluster_id) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert any("-" in i for i in ids)  # the alphabet still has '-', only not first
    assert len(set(ids)) == len(ids)


def _fake_java_home(root: Path) -> Path:
    """A JAVA_HOME whose java says it is Java 17 and fails every other command like StorageTool did."""
    java = root / "java17" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-version" ]; then echo \'openjdk version "17.0.9"\' >&2; exit 0; fi\n'
        "echo 'argument --cluster-id/-t: expected one argument' >&2\n"
        "exit 1\n"
    )
    java.chmod(0o755)
    return java.parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stack_up(tmp_path: Path, service: str, **settings: str) -> subprocess.CompletedProcess:
    """``python -m stack up <service>`` on a throwaway state folder and jar folder, with a fake Java 17."""
    lib = tmp_path / "lib"
    for jar_set in JAR_SETS:
        (lib / jar_set).mkdir(parents=True)
        (lib / jar_set / "placeholder.jar").touch()
    env = {
        **os.environ,
        "AQSTREAM_JAVA_HOME": str(_fake_java_home(tmp_path)),
        "AQSTREAM_STATE_DIR": str(tmp_path / "state"),
        "AQSTREAM_LIB_DIR": str(lib),
        "PYTHONPATH": str(REPO_ROOT),
        **settings,
    }
    return subprocess.run(
        [sys.executable, "-m", "stack", "up", service],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_failed_preparation_names_the_service_and_shows_the_command_output(tmp_path):
    # free ports: a stack the developer has up must not turn this into a port clash
    ports = {"AQSTREAM_KAFKA_PORT": str(_free_port()), "AQSTREAM_KAFKA_CONTROLLER_PORT": str(_free_port())}
    done = _stack_up(tmp_path, "kafka", **ports)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("stack: kafka: storage format failed (exit 1)")
    assert "argument --cluster-id/-t: expected one argument" in done.stderr
    assert not (tmp_path / "state" / "kafka" / "pid").exists()


def test_a_port_taken_by_another_process_fails_the_start_naming_the_service_port_and_setting(tmp_path):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        free = {"AQSTREAM_CASSANDRA_STORAGE_PORT": str(_free_port()), "AQSTREAM_CASSANDRA_JMX_PORT": str(_free_port())}
        done = _stack_up(tmp_path, "cassandra", AQSTREAM_CASSANDRA_PORT=str(port), **free)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(f"stack: cassandra cannot start: another process already listens on 127.0.0.1:{port}")
    assert "AQSTREAM_CASSANDRA_PORT" in done.stderr
    assert not (tmp_path / "state" / "cassandra" / "pid").exists()


def test_a_failed_format_shows_no_scram_password(tmp_path):
    """In-process (the stack fixture's way, no redacting command line around it): the error shows the format
    command, its passwords masked."""
    cfg = StackConfig(state_dir=tmp_path / "state", lib_dir=tmp_path / "lib")
    secrets = [path.read_text().strip() for name, path in ensure_secrets(cfg.state_dir / "secrets").items()]
    with pytest.raises(StackError) as failed:
        Kafka(cfg, _fake_java_home(tmp_path)).prepare()
    message = str(failed.value)
    assert message.startswith("kafka: storage format failed (exit 1)")
    assert "--add-scram SCRAM-SHA-512=[name=aqstream-admin,password=" in message  # the command is shown
    assert not [secret for secret in secrets if secret in message]


def test_a_storage_formatted_before_authentication_is_named_with_how_to_recreate_it(tmp_path):
    (tmp_path / "state" / "kafka" / "data").mkdir(parents=True)
    (tmp_path / "state" / "kafka" / "data" / "meta.properties").write_text("node.id=1\n")  # no scram-users beside
    ports = {"AQSTREAM_KAFKA_PORT": str(_free_port()), "AQSTREAM_KAFKA_CONTROLLER_PORT": str(_free_port())}
    done = _stack_up(tmp_path, "kafka", **ports)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "was formatted without SCRAM credentials for aqstream-admin, aqstream-cdc-to-cassandra" in done.stderr
    assert f"remove {tmp_path / 'state' / 'kafka'}" in done.stderr


def test_status_says_the_mongodb_stand_in_enforces_no_authentication(tmp_path):
    """The Java stand-in answers no authentication command: `stack status` must not let anyone think otherwise."""
    from stack.services import MongoDB

    stand_in = MongoDB(StackConfig(state_dir=tmp_path, mongo_impl="java"), None)
    assert "authentication NOT enforced" in stand_in.implementation


@pytest.mark.parametrize("authentication", [True, False])
def test_the_brokers_and_cassandras_settings_follow_the_stacks_authentication(tmp_path, authentication):
    """As shipped: SASL/SCRAM on the client listener, ACLs, SCRAM credentials at the format, Cassandra's password
    logins. AQSTREAM_AUTHENTICATION=false (the bench beside it): PLAINTEXT, no ACLs, no credentials, open Cassandra,
    and the pipeline configs the stack hands out say so."""
    from stack.services import Cassandra, kafka_pipeline_config

    cfg = StackConfig(state_dir=tmp_path / "state", lib_dir=tmp_path / "lib", authentication=authentication)
    ensure_secrets(cfg.state_dir / "secrets")
    with pytest.raises(StackError) as format_failed:  # the fake java: the properties are written by then
        Kafka(cfg, _fake_java_home(tmp_path)).prepare()
    server = dict(
        line.split("=", 1)
        for line in (cfg.state_dir / "kafka" / "server.properties").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    protocol = "SASL_PLAINTEXT" if authentication else "PLAINTEXT"
    assert server["listeners"].startswith(f"{protocol}://") and server["inter.broker.listener.name"] == protocol
    assert ("authorizer.class.name" in server) is authentication
    assert ("sasl.enabled.mechanisms" in server) is authentication
    assert ("--add-scram" in str(format_failed.value)) is authentication
    assert kafka_pipeline_config(cfg).kafka.security_protocol == protocol

    Cassandra(cfg, None).prepare()
    cassandra = (cfg.state_dir / "cassandra" / "cassandra.yaml").read_text()
    expected = "PasswordAuthenticator" if authentication else "AllowAllAuthenticator"
    assert f"\nauthenticator: {expected}\n" in cassandra
    assert (Cassandra(cfg, None).pipeline_config().cassandra.authentication) is authentication
