"""The Cassandra roles' set-up statements and the connector's login, from a config with secrets of a test's own
(the live checks, refused logins and an unauthorised DROP, are in tests/integration/test_cassandra_auth.py)."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from jobs.cassandra_roles import (
    application_role_statements,
    create_admin_statement,
    disable_default_superuser_statement,
)
from jobs.config import load_config
from jobs.redact import redact_mapping
from jobs.session import spark_settings


@pytest.fixture
def config(tmp_path):
    for name, value in {"cassandra_admin": "admin-pw-0123456789", "cassandra_cdc": "cdc-pw-0123456789"}.items():
        (tmp_path / name).write_text(value + "\n")
    (tmp_path / "cassandra_reader").write_text("reader-pw-0123456789\n")
    return load_config(
        environ={"AQSTREAM__CREDENTIALS__SECRETS_DIR": str(tmp_path), "AQSTREAM__CASSANDRA__KEYSPACE": "aq_roles"}
    )


def test_the_cdc_role_reads_and_writes_its_keyspace_and_the_reader_only_reads_it(config):
    statements = application_role_statements(config)
    assert statements == [
        ('CREATE ROLE IF NOT EXISTS "aqstream_cdc" WITH PASSWORD = %s AND LOGIN = true', ("cdc-pw-0123456789",)),
        ('ALTER ROLE "aqstream_cdc" WITH PASSWORD = %s', ("cdc-pw-0123456789",)),
        ('GRANT SELECT ON KEYSPACE aq_roles TO "aqstream_cdc"', ()),
        ('GRANT MODIFY ON KEYSPACE aq_roles TO "aqstream_cdc"', ()),
        ('CREATE ROLE IF NOT EXISTS "aqstream_reader" WITH PASSWORD = %s AND LOGIN = true', ("reader-pw-0123456789",)),
        ('ALTER ROLE "aqstream_reader" WITH PASSWORD = %s', ("reader-pw-0123456789",)),
        ('GRANT SELECT ON KEYSPACE aq_roles TO "aqstream_reader"', ()),
    ]
    # a password is a bound value, never in the statement's text (a logged statement shows no secret)
    assert not any("pw-" in cql for cql, _ in statements)


def test_the_admin_replaces_the_default_superuser():
    cql, params = create_admin_statement("aqstream_admin", SecretStr("admin-pw-0123456789"))
    assert cql == (
        'CREATE ROLE IF NOT EXISTS "aqstream_admin" WITH PASSWORD = %s AND SUPERUSER = true AND LOGIN = true'
    )
    assert params == ("admin-pw-0123456789",)
    assert disable_default_superuser_statement() == 'ALTER ROLE "cassandra" WITH SUPERUSER = false AND LOGIN = false'


def test_the_connector_logs_in_as_the_role_asked_and_only_then(config):
    settings = spark_settings(config, cassandra_role="cdc")
    assert settings["spark.cassandra.auth.username"] == "aqstream_cdc"
    assert settings["spark.cassandra.auth.password"] == "cdc-pw-0123456789"
    assert not any(key.startswith("spark.cassandra.auth.") for key in spark_settings(config))
    # printed through jobs.redact (jobs.report, stack status): the password masked, the user name kept
    shown = redact_mapping(settings)
    assert shown["spark.cassandra.auth.password"] == "***"
    assert shown["spark.cassandra.auth.username"] == "aqstream_cdc"
