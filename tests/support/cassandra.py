"""Cassandra for the tests: a pipeline config pointed at the stack's Cassandra and secrets, and driver
sessions as one of its roles (through jobs.cassandra_client, like every client of the suite)."""

from __future__ import annotations

import os

from cassandra.cluster import Cluster, Session
from cassandra.query import named_tuple_factory

from jobs.cassandra_client import connect
from jobs.config import CassandraRole, PipelineConfig, load_config

SECRETS_DIR_SETTING = "AQSTREAM__CREDENTIALS__SECRETS_DIR"


def stack_client_env(stack) -> dict[str, str]:
    """The settings that make a pipeline config a client of this stack: the secrets it generated
    (``<state_dir>/secrets``, so ``.state-faults/secrets`` for a stack with ``AQSTREAM_STATE_DIR=.state-faults``,
    unless the run sets its own), and no login where the stack runs without authentication."""
    return {
        SECRETS_DIR_SETTING: os.environ.get(SECRETS_DIR_SETTING, str(stack.secrets_dir)),
        **stack.cfg.pipeline_auth_env(),
    }


def stack_config(stack, **settings: str) -> PipelineConfig:
    """conf/pipeline.toml pointed at this stack's Cassandra and secrets (``settings``: more AQSTREAM__ ones)."""
    env = {
        "AQSTREAM__CASSANDRA__HOST": stack.cfg.host,
        "AQSTREAM__CASSANDRA__PORT": str(stack.cfg.cassandra_port),
        **stack_client_env(stack),
        **settings,
    }
    return load_config(environ=env)


def cassandra_session(
    config: PipelineConfig, role: CassandraRole = "admin", keyspace: str | None = None
) -> tuple[Cluster, Session]:
    """A session as ``role`` (admin by default: the tests create and drop keyspaces), rows as the driver's
    named tuples."""
    return connect(config, role, timeout_s=30.0, keyspace=keyspace, row_factory=named_tuple_factory)
