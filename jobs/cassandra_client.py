"""A cassandra-driver session on the configured cluster: every Python process's reads and writes that do
not go through Spark (the dashboard, the CDC job's keyed I/O on its driver, jobs.setup, jobs.report, the
stack's health check, the tests) connect here, so authentication is in one place.

Token-aware routing (each statement goes to a replica of its partition), the local data centre of
``[cassandra]``, rows as dicts unless asked otherwise; logged in as one of the roles of
``[credentials]`` (``admin``, ``cdc``, ``reader``: docs/security.md).
"""

from __future__ import annotations

from typing import Any

from cassandra import ConsistencyLevel
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.policies import DCAwareRoundRobinPolicy, ExponentialReconnectionPolicy, TokenAwarePolicy
from cassandra.query import dict_factory

from jobs.config import CassandraConfig, CassandraRole, Login, PipelineConfig


def consistency_level(name: str) -> int:
    """A consistency level of the config (``LOCAL_ONE``…) as the driver's constant."""
    return getattr(ConsistencyLevel, name)


def connect(
    config: PipelineConfig,
    role: CassandraRole,
    timeout_s: float = 10.0,
    keyspace: str | None = None,
    row_factory: Any = dict_factory,
) -> tuple[Cluster, Session]:
    """A session logged in as ``role``; its password is read now (a missing one: ConfigError naming it). With
    ``cassandra.authentication`` off, a session without a login (no password is read)."""
    login = config.credentials.login("cassandra", role) if config.cassandra.authentication else None
    return connect_as(config.cassandra, login, timeout_s, keyspace, row_factory)


def connect_as(
    cassandra: CassandraConfig,
    login: Login | None,
    timeout_s: float = 10.0,
    keyspace: str | None = None,
    row_factory: Any = dict_factory,
) -> tuple[Cluster, Session]:
    """A connected session as ``login`` (None: no credentials, which the stack's Cassandra refuses).
    Statements run at ``cassandra.read_consistency`` unless they set their own."""
    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=cassandra.local_dc)),
        consistency_level=consistency_level(cassandra.read_consistency),
        request_timeout=timeout_s,
        row_factory=row_factory,
    )
    auth = None if login is None else PlainTextAuthProvider(login.username, login.password.get_secret_value())
    cluster = Cluster(
        [cassandra.host],
        port=cassandra.port,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=timeout_s,
        control_connection_timeout=timeout_s,
        auth_provider=auth,
        # a node that went down is tried again within 10 s of its return (the driver's default waits up to
        # 600 s between tries, longer than any caller's retry budget: jobs.sinks.CASSANDRA_ATTEMPTS)
        reconnection_policy=ExponentialReconnectionPolicy(base_delay=1.0, max_delay=10.0),
    )
    try:
        return cluster, cluster.connect(keyspace)
    except BaseException:
        cluster.shutdown()  # else its event loop thread outlives a refused login
        raise
