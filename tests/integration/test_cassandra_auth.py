"""The stack's Cassandra checks who logs in and what each role may do (docs/security.md): a wrong password,
no credentials and the default superuser are refused; the CDC job's role reads and writes its keyspace's
tables and can create, alter or drop nothing; the read-only role only reads."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from cassandra import AuthenticationFailed, Unauthorized
from cassandra.cluster import NoHostAvailable
from pydantic import SecretStr

from jobs.cassandra_client import connect_as
from jobs.config import Login, PipelineConfig
from jobs.setup import apply_cql
from schemas.cassandra import STATIONS_TABLE
from tests.support.cassandra import cassandra_session, stack_config


@pytest.fixture(scope="module")
def config(stack) -> Iterator[PipelineConfig]:
    """A keyspace of this module's own, set up as jobs.setup does (schema, roles, grants); dropped after."""
    config = stack_config(stack, AQSTREAM__CASSANDRA__KEYSPACE=f"aq_{uuid.uuid4().hex[:8]}")
    apply_cql(config)
    yield config
    cluster, session = cassandra_session(config)
    try:
        session.execute(f"DROP KEYSPACE IF EXISTS {config.cassandra.keyspace}", timeout=120)
    finally:
        cluster.shutdown()


def refusal(config: PipelineConfig, login: Login | None) -> str:
    """The server's answer to a login that must be refused (the test fails if it is accepted)."""
    with pytest.raises(NoHostAvailable) as refused:
        cluster, _ = connect_as(config.cassandra, login)
        cluster.shutdown()
    errors = list(refused.value.errors.values())
    assert errors and all(isinstance(e, AuthenticationFailed) for e in errors), errors
    return str(errors[0])


def test_a_wrong_password_is_refused(config):
    cdc = config.credentials.login("cassandra", "cdc")
    wrong = Login(username=cdc.username, password=SecretStr(cdc.password.get_secret_value() + "x"))
    assert "incorrect" in refusal(config, wrong)


def test_a_login_without_credentials_is_refused(config):
    assert "requires authentication" in refusal(config, None)


def test_the_default_superuser_can_no_longer_log_in(config):
    assert "not permitted to log in" in refusal(config, Login(username="cassandra", password=SecretStr("cassandra")))


def test_the_cdc_role_writes_and_reads_its_tables_and_changes_no_schema(config):
    keyspace = config.cassandra.keyspace
    cluster, session = cassandra_session(config, role="cdc")
    try:
        station = f"st-{uuid.uuid4().hex[:6]}"
        session.execute(
            f"INSERT INTO {keyspace}.{STATIONS_TABLE} (registry, station_id, station_name) VALUES (%s, %s, %s)",
            ("all", station, "Dongsi"),
        )
        row = session.execute(
            f"SELECT station_name FROM {keyspace}.{STATIONS_TABLE} WHERE registry = %s AND station_id = %s",
            ("all", station),
        ).one()
        assert row.station_name == "Dongsi"
        forbidden = [
            f"DROP KEYSPACE {keyspace}",
            f"DROP TABLE {keyspace}.{STATIONS_TABLE}",
            f"ALTER TABLE {keyspace}.{STATIONS_TABLE} ADD sneaked text",
            f"CREATE TABLE {keyspace}.sneaked (k text PRIMARY KEY)",
            "CREATE KEYSPACE aq_sneaked WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
            f'GRANT DROP ON KEYSPACE {keyspace} TO "{config.credentials.cassandra_user_cdc}"',
        ]
        for statement in forbidden:
            with pytest.raises(Unauthorized):
                session.execute(statement, timeout=30)
    finally:
        cluster.shutdown()
    # the keyspace is still there, whole
    cluster, session = cassandra_session(config)
    try:
        assert STATIONS_TABLE in session.cluster.metadata.keyspaces[keyspace].tables
    finally:
        cluster.shutdown()


def test_the_cdc_role_has_no_rights_on_another_keyspace(stack, config):
    other = stack_config(stack, AQSTREAM__CASSANDRA__KEYSPACE=f"aq_{uuid.uuid4().hex[:8]}")
    admin_cluster, admin = cassandra_session(other)
    try:
        admin.execute(
            f"CREATE KEYSPACE {other.cassandra.keyspace} "
            "WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
            timeout=60,
        )
        admin.execute(f"CREATE TABLE {other.cassandra.keyspace}.kv (k text PRIMARY KEY, v int)", timeout=60)
        cluster, session = cassandra_session(config, role="cdc")
        try:
            with pytest.raises(Unauthorized):
                session.execute(f"SELECT v FROM {other.cassandra.keyspace}.kv WHERE k = 'a'")
            with pytest.raises(Unauthorized):
                session.execute(f"INSERT INTO {other.cassandra.keyspace}.kv (k, v) VALUES ('a', 1)")
        finally:
            cluster.shutdown()
    finally:
        admin.execute(f"DROP KEYSPACE IF EXISTS {other.cassandra.keyspace}", timeout=120)
        admin_cluster.shutdown()


def test_the_reader_role_reads_and_writes_nothing(config):
    keyspace = config.cassandra.keyspace
    cluster, session = cassandra_session(config, role="reader")
    try:
        session.execute(f"SELECT station_id FROM {keyspace}.{STATIONS_TABLE} WHERE registry = 'all' LIMIT 1")
        with pytest.raises(Unauthorized):
            session.execute(f"INSERT INTO {keyspace}.{STATIONS_TABLE} (registry, station_id) VALUES ('all', 'sneaked')")
    finally:
        cluster.shutdown()
