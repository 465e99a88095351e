"""Secrets: references in the config, the stack's generated defaults, and the one redaction (docs/security.md)."""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime

import pytest

from jobs import redact as redaction
from jobs.config import REPO_ROOT, ConfigError, load_config
from jobs.redact import redact, redact_argv, redact_mapping, redact_url, redacted_excepthook, remember
from stack.config import StackConfig
from stack.core import Stack
from stack.secret_files import dotenv_name, ensure_secrets, read_dotenv, write_dotenv

pytestmark = pytest.mark.unit

PASSWORD = "pw-8fK2q9Lm-zz"  # a secret of this test's own, never a generated one


@pytest.fixture(autouse=True)
def no_known_secrets():
    """Each test starts with no remembered values (they are process-wide) and leaves none behind."""
    redaction.forget_all()
    yield
    redaction.forget_all()


# --- the config: references, read when needed ----------------------------------------------------------


def test_a_password_from_an_environment_variable():
    config = load_config(environ={"AQSTREAM__CREDENTIALS__KAFKA_PASSWORD_COLLECTOR": "env:MY_KAFKA_PASSWORD"})
    login = config.credentials.login("kafka", "collector", environ={"MY_KAFKA_PASSWORD": PASSWORD})
    assert login.username == "aqstream-collector"
    assert login.password.get_secret_value() == PASSWORD


def test_a_password_from_a_file_relative_to_secrets_dir_and_from_an_absolute_path(tmp_path):
    (tmp_path / "cassandra_cdc").write_text(PASSWORD + "\n")
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("another-secret-1\n")
    config = load_config(
        environ={
            "AQSTREAM__CREDENTIALS__SECRETS_DIR": str(tmp_path),
            "AQSTREAM__CREDENTIALS__MONGO_PASSWORD_DEBEZIUM": f"file:{elsewhere}",
        }
    )
    assert config.credentials.login("cassandra", "cdc").password.get_secret_value() == PASSWORD
    assert config.credentials.secret("mongo_password_debezium").get_secret_value() == "another-secret-1"


def test_a_missing_secret_file_names_the_field_and_the_path(tmp_path):
    config = load_config(environ={"AQSTREAM__CREDENTIALS__SECRETS_DIR": str(tmp_path)})
    with pytest.raises(ConfigError) as missing:
        config.credentials.login("cassandra", "admin")
    assert "credentials.cassandra_password_admin" in str(missing.value)
    assert str(tmp_path / "cassandra_admin") in str(missing.value)
    # a folder where the file should be: unreadable, named the same way
    (tmp_path / "kafka_connect").mkdir()
    unreadable = r"credentials\.kafka_password_connect: cannot read secret file .*kafka_connect"
    with pytest.raises(ConfigError, match=unreadable):
        config.credentials.secret("kafka_password_connect")


def test_an_unset_variable_names_the_field_and_the_variable():
    config = load_config(environ={})
    with pytest.raises(ConfigError, match=r"credentials\.openaq_api_key: environment variable OPENAQ_API_KEY"):
        config.credentials.secret("openaq_api_key", environ={})


def test_a_literal_secret_in_the_config_is_refused_without_being_printed():
    with pytest.raises(ConfigError) as refused:
        load_config(environ={"AQSTREAM__CREDENTIALS__CASSANDRA_PASSWORD_CDC": PASSWORD})
    assert "credentials.cassandra_password_cdc" in str(refused.value)
    assert PASSWORD not in str(refused.value)


def test_neither_the_config_nor_a_login_shows_a_password():
    config = load_config(environ={"AQSTREAM__CREDENTIALS__KAFKA_PASSWORD_CONNECT": "env:CONNECT_PW"})
    login = config.credentials.login("kafka", "connect", environ={"CONNECT_PW": PASSWORD})
    for shown in (repr(login), str(login), repr(login.password), str(login.password), repr(config), str(config)):
        assert PASSWORD not in shown
    assert "env:CONNECT_PW" in repr(config)  # where the secret is: that, the config does show


# --- the stack's generated defaults ---------------------------------------------------------------------


def test_generated_secrets_are_made_once_private_and_what_the_config_reads(tmp_path):
    folder = tmp_path / "secrets"
    first = {name: path.read_text() for name, path in ensure_secrets(folder).items()}
    again = {name: path.read_text() for name, path in ensure_secrets(folder).items()}
    assert again == first  # never overwritten
    expected = {
        "kafka_admin",
        "kafka_collector",
        "kafka_raw_to_mongo",
        "kafka_cdc_to_cassandra",
        "kafka_connect",
        "kafka_monitor",
        "cassandra_admin",
        "cassandra_cdc",
        "cassandra_reader",
        "mongo_admin",
        "mongo_raw_to_mongo",
        "mongo_debezium",
    }
    assert set(first) == expected
    assert len(set(first.values())) == len(expected)  # each random, none shared
    assert all(len(value.strip()) >= 40 for value in first.values())  # 32 random bytes, base64
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert {stat.S_IMODE((folder / name).stat().st_mode) for name in expected} == {0o600}
    # the config's defaults read exactly these files
    config = load_config(environ={"AQSTREAM__CREDENTIALS__SECRETS_DIR": str(folder)})
    assert (
        config.credentials.login("kafka", "raw_to_mongo").password.get_secret_value()
        == first["kafka_raw_to_mongo"].strip()
    )


def test_a_secret_already_there_is_kept(tmp_path):
    (tmp_path / "cassandra_admin").write_text(PASSWORD + "\n")
    ensure_secrets(tmp_path)
    assert (tmp_path / "cassandra_admin").read_text() == PASSWORD + "\n"


def test_the_stacks_secrets_and_dotenv_are_git_ignored_and_the_example_is_not():
    secrets_dir = Stack(StackConfig.from_env({})).secrets_dir
    paths = [secrets_dir / "kafka_collector", REPO_ROOT / ".env"]
    ignored = subprocess.run(
        ["git", "check-ignore", *map(str, paths)], cwd=REPO_ROOT, capture_output=True, text=True
    ).stdout.split()
    assert ignored == [str(p) for p in paths]
    example = subprocess.run(["git", "check-ignore", "-q", ".env.example"], cwd=REPO_ROOT)
    assert example.returncode == 1  # not ignored: committed


def test_dotenv_gets_the_generated_secrets_keeps_yours_and_takes_the_pins_from_the_example(tmp_path):
    example = tmp_path / ".env.example"
    example.write_text("# pins\nKAFKA_VERSION=4.1.1\nKAFKA_COLLECTOR_PASSWORD=\nCASSANDRA_CDC_PASSWORD=\n")
    target = tmp_path / ".env"
    target.write_text(f"KAFKA_VERSION=0.0.1\nCASSANDRA_CDC_PASSWORD={PASSWORD}\n")
    (tmp_path / "kafka_collector").write_text("generated-value-1\n")
    (tmp_path / "cassandra_cdc").write_text("generated-value-2\n")
    files = {"kafka_collector": tmp_path / "kafka_collector", "cassandra_cdc": tmp_path / "cassandra_cdc"}
    assert write_dotenv(example, target, files) == ["KAFKA_COLLECTOR_PASSWORD"]
    assert target.read_text() == (
        f"# pins\nKAFKA_VERSION=4.1.1\nKAFKA_COLLECTOR_PASSWORD=generated-value-1\nCASSANDRA_CDC_PASSWORD={PASSWORD}\n"
    )
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


# --- redaction -------------------------------------------------------------------------------------------


def test_a_jaas_config_loses_its_password_and_keeps_its_user():
    jaas = (
        'org.apache.kafka.common.security.scram.ScramLoginModule required username="aqstream-collector" '
        f'password="{PASSWORD}";'
    )
    assert redact(jaas) == (
        'org.apache.kafka.common.security.scram.ScramLoginModule required username="aqstream-collector" password="***";'
    )


def test_the_printed_spark_submit_command_masks_credentials(capsys):
    from jobs import submit

    jaas = f'org.apache.kafka.common.security.scram.ScramLoginModule required username="u" password="{PASSWORD}";'
    confs = [f"spark.cassandra.auth.password={PASSWORD}", f"kafka.sasl.jaas.config={jaas}", "spark.cores.max=1"]
    argv = ["raw_to_mongo", "--print", *(arg for conf in confs for arg in ("--conf", conf)), "--available-now"]
    assert submit.main(argv) == 0
    printed = capsys.readouterr().out
    assert PASSWORD not in printed
    command = shlex.split(printed)
    shown_confs = [command[i + 1] for i, arg in enumerate(command) if arg == "--conf"]
    assert shown_confs == ["spark.cassandra.auth.password=***", "kafka.sasl.jaas.config=***", "spark.cores.max=1"]
    assert command[-1] == "--available-now"


def test_an_argv_with_a_password_option_and_a_known_value():
    remember("generated-Kz81-Qp")
    argv = ["cqlsh", "-u", "aqstream_admin", "--password", PASSWORD, "-e", "LIST ROLES -- generated-Kz81-Qp"]
    assert redact_argv(argv) == ["cqlsh", "-u", "aqstream_admin", "--password", "***", "-e", "LIST ROLES -- ***"]


def test_a_connector_definition_and_its_status_are_redacted():
    definition = {
        "name": "aqstream-mongodb-readings",
        "config": {
            "connector.class": "io.debezium.connector.mongodb.MongoDbConnector",
            "mongodb.connection.string": f"mongodb://aqstream-debezium:{PASSWORD}@mongodb:27017/?replicaSet=rs0",
            "mongodb.password": PASSWORD,
            "key.converter": "org.apache.kafka.connect.json.JsonConverter",
            "tasks": [{"trace": f"com.mongodb.MongoSecurityException: password={PASSWORD} refused"}],
        },
    }
    shown = redact_mapping(definition)
    assert PASSWORD not in json.dumps(shown)
    assert (
        shown["config"]["mongodb.connection.string"] == "mongodb://aqstream-debezium:***@mongodb:27017/?replicaSet=rs0"
    )
    assert shown["config"]["mongodb.password"] == "***"
    assert shown["config"]["key.converter"] == "org.apache.kafka.connect.json.JsonConverter"  # not a secret
    assert shown["config"]["tasks"][0]["trace"] == "com.mongodb.MongoSecurityException: password=*** refused"
    assert shown["name"] == "aqstream-mongodb-readings"


def test_an_uncaught_exception_is_printed_redacted(capsys):
    remember(PASSWORD)
    try:
        raise RuntimeError(f"authentication failed: the server said {PASSWORD!r} is wrong")
    except RuntimeError:
        redacted_excepthook(*sys.exc_info())
    printed = capsys.readouterr().err
    assert "RuntimeError: authentication failed: the server said '***' is wrong" in printed
    assert PASSWORD not in printed


def test_the_openaq_key_in_a_url_by_name_and_by_value():
    assert redact_url("https://api.openaq.org/v3/locations?iso=KE&api_key=abc") == (
        "https://api.openaq.org/v3/locations?iso=KE&api_key=***"
    )
    remember("oaq-1234567890abcdef")
    assert redact_url("https://api.openaq.org/v3/x/oaq-1234567890abcdef?limit=5") == (
        "https://api.openaq.org/v3/x/***?limit=5"
    )


def test_what_is_no_secret_is_left_alone():
    text = "pm25=12.5 key.converter=JsonConverter topic=aq.readings.raw mongodb://mongodb:27017/?replicaSet=rs0"
    assert redact(text) == text


def test_the_generated_secrets_are_redacted_by_value_once_generated(tmp_path):
    value = ensure_secrets(tmp_path)["cassandra_cdc"].read_text().strip()
    assert redact(f"CREATE ROLE aqstream_cdc WITH PASSWORD = '{value}'") == (
        "CREATE ROLE aqstream_cdc WITH PASSWORD = '***'"
    )
    assert redact(f"something printed {value} in passing") == "something printed *** in passing"


def test_stack_secrets_writes_dotenv_without_printing_a_secret(tmp_path, capsys, monkeypatch):
    from stack import __main__ as stack_main

    monkeypatch.setenv("AQSTREAM_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(stack_main, "DOTENV", tmp_path / ".env")
    assert stack_main.main(["secrets"]) == 0
    printed = capsys.readouterr().out
    written = dict(line.split("=", 1) for line in (tmp_path / ".env").read_text().splitlines() if "=" in line)
    files = list((tmp_path / "state" / "secrets").iterdir())
    # .env holds every generated secret, each one compose uses: the Kafka admin's (the broker's super user and
    # set-up), every other principal's, each Cassandra role's (set-up creates them, the reader's too), MongoDB's
    generated = {dotenv_name(p.name): p.read_text().strip() for p in files}
    assert "KAFKA_ADMIN_PASSWORD" in generated
    assert set(generated) <= set(read_dotenv(REPO_ROOT / ".env.example"))
    assert {k: v for k, v in written.items() if k.endswith("_PASSWORD")} == generated
    assert not any(p.read_text().strip() in printed for p in files)
    assert os.stat(tmp_path / ".env").st_mode & 0o077 == 0


def test_stack_connector_status_prints_the_rest_output_redacted(monkeypatch, capsys):
    """`python -m stack connector status` against a real HTTP server answering like Kafka Connect."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from stack import __main__ as stack_main

    body = {
        "name": "aqstream-mongodb-readings",
        "connector": {"state": "RUNNING", "worker_id": "127.0.0.1:8083"},
        "tasks": [{"id": 0, "state": "FAILED", "trace": f"MongoSecurityException: mongodb://u:{PASSWORD}@h:27017"}],
    }

    class Connect(BaseHTTPRequestHandler):
        def do_GET(self):
            payload = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Connect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("AQSTREAM_CONNECT_PORT", str(server.server_address[1]))
        assert stack_main.main(["connector", "status", "--name", "aqstream-mongodb-readings"]) == 0
    finally:
        server.shutdown()
    printed = capsys.readouterr().out
    assert PASSWORD not in printed
    assert json.loads(printed)["tasks"][0]["trace"] == "MongoSecurityException: mongodb://u:***@h:27017"


def test_the_report_prints_no_known_secret(capsys):
    from jobs.report import print_report

    remember(PASSWORD)
    counts = {
        "kafka_raw": 1,
        "kafka_quarantine": 0,
        "kafka_cdc": 1,
        "mongo_documents": 1,
        "bronze_rows": 1,
        "bronze_records": 1,
        "quarantine_rows": 0,
        "quarantine_reasons": Counter(),
        "cassandra_readings": 1,
        "cassandra_aggregates": 2,
        # a store's content can hold anything: here, a secret someone wrote into a station id
        "latest_per_city": [
            {"_id": "beijing", "ts": datetime(2026, 1, 1, tzinfo=UTC), "station": PASSWORD, "pm25": 1, "pm10": 2}
        ],
    }
    print_report(load_config(environ={}), counts, [], "beijing-dongsi")
    printed = capsys.readouterr().out
    assert PASSWORD not in printed
    assert "  beijing            2026-01-01 00:00Z  ***" in printed


def test_an_openaq_key_file_that_is_missing_stops_the_collector_naming_field_and_path(tmp_path, monkeypatch, caplog):
    from collectors import cli

    missing = tmp_path / "openaq.key"
    monkeypatch.setenv("AQSTREAM__CREDENTIALS__OPENAQ_API_KEY", f"file:{missing}")
    assert cli.main(["openaq", "--country", "KE", "--dry-run", "--metrics-port", "0"]) == 2
    assert f"credentials.openaq_api_key: cannot read secret file {missing}" in caplog.text
