"""A cassandra-driver session on the configured cluster, for the reads and writes made from a Python
process rather than from Spark: the dashboard's, and the CDC job's keyed I/O on its driver.

Token-aware routing (each statement goes to a replica of its partition), the local data centre of
``[cassandra]``, rows as dicts.
"""

from __future__ import annotations

from cassandra import ConsistencyLevel
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, Session
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
from cassandra.query import dict_factory

from jobs.config import CassandraConfig


def consistency_level(name: str) -> int:
    """A consistency level of the config (``LOCAL_ONE``…) as the driver's constant."""
    return getattr(ConsistencyLevel, name)


def connect(cassandra: CassandraConfig, timeout_s: float = 10.0) -> tuple[Cluster, Session]:
    """A connected session; statements run at ``cassandra.read_consistency`` unless they set their own."""
    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=cassandra.local_dc)),
        consistency_level=consistency_level(cassandra.read_consistency),
        request_timeout=timeout_s,
        row_factory=dict_factory,
    )
    cluster = Cluster(
        [cassandra.host],
        port=cassandra.port,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=timeout_s,
    )
    return cluster, cluster.connect()
