"""Cassandra's roles (docs/security.md): the default superuser replaced by the admin role, and the
application roles granted on the pipeline's keyspace only.

:func:`admin_session` is the one way set-up logs in: the local stack calls it once Cassandra answers
(``python -m stack up``), jobs.setup before its CQL. A fresh node has only the default superuser
``cassandra``/``cassandra`` (made a few seconds after it starts): logged in as it, the admin role is
created from ``credentials.cassandra_password_admin``; logged in as the admin, the default superuser
loses its superuser status and its login. Both steps are skipped when already done.
:func:`grant_application_roles` (jobs.setup, after the keyspace exists) creates ``cdc`` and ``reader``
and grants each its rights on the keyspace, nothing else: neither can create, alter or drop anything.
"""

from __future__ import annotations

import time

from cassandra import AuthenticationFailed
from cassandra.cluster import Cluster, NoHostAvailable, Session
from pydantic import SecretStr

from jobs.cassandra_client import connect, connect_as
from jobs.config import Login, PipelineConfig

# what a fresh Cassandra node lets in (CassandraRoleManager's default role): never kept
DEFAULT_SUPERUSER = "cassandra"
# the rights each application role gets on the pipeline's keyspace (MODIFY: INSERT, UPDATE, DELETE, TRUNCATE)
KEYSPACE_PERMISSIONS: dict[str, tuple[str, ...]] = {"cdc": ("SELECT", "MODIFY"), "reader": ("SELECT",)}


class RoleSetupError(RuntimeError):
    """Neither the admin role nor the default superuser could log in; the message says which was refused how."""


Statement = tuple[str, tuple[str, ...]]


def role_name(name: str) -> str:
    """A role as a CQL identifier: quoted, so its case and any character are kept."""
    return '"' + name.replace('"', '""') + '"'


def create_admin_statement(username: str, password: SecretStr) -> Statement:
    """Run as the default superuser: the admin role, a superuser that can log in."""
    cql = f"CREATE ROLE IF NOT EXISTS {role_name(username)} WITH PASSWORD = %s AND SUPERUSER = true AND LOGIN = true"
    return cql, (password.get_secret_value(),)


def disable_default_superuser_statement() -> str:
    """Run as the admin: the default superuser can no longer log in nor do anything as a superuser."""
    return f"ALTER ROLE {role_name(DEFAULT_SUPERUSER)} WITH SUPERUSER = false AND LOGIN = false"


def application_role_statements(config: PipelineConfig) -> list[Statement]:
    """Run as the admin once the keyspace exists: each application role created (or its password set to its
    secret's current value) and granted its permissions on the keyspace."""
    keyspace = config.cassandra.keyspace
    statements: list[Statement] = []
    for role, permissions in KEYSPACE_PERMISSIONS.items():
        login = config.credentials.login("cassandra", role)
        name, password = role_name(login.username), (login.password.get_secret_value(),)
        statements.append((f"CREATE ROLE IF NOT EXISTS {name} WITH PASSWORD = %s AND LOGIN = true", password))
        statements.append((f"ALTER ROLE {name} WITH PASSWORD = %s", password))
        statements += [(f"GRANT {p} ON KEYSPACE {keyspace} TO {name}", ()) for p in permissions]
    return statements


def login_refused(exc: NoHostAvailable) -> bool:
    """The node answered and refused the credentials (rather than not answering)."""
    return bool(exc.errors) and all(isinstance(e, AuthenticationFailed) for e in exc.errors.values())


def _reason(exc: NoHostAvailable) -> str:
    return "; ".join(str(e) for e in exc.errors.values()) or str(exc)


def admin_session(config: PipelineConfig, wait_s: float = 60.0, poll_s: float = 1.0) -> tuple[Cluster, Session]:
    """A session as the admin role, the default superuser replaced first if it has not been (module doc).

    Waits up to ``wait_s`` for the default superuser of a node that has just started; raises
    :class:`RoleSetupError` when neither login is accepted by then, or at once when the default superuser is
    already disabled and the admin's password is refused (its secret changed since the set-up). With
    ``cassandra.authentication`` off, a session without a login: there is no role to set up."""
    if not config.cassandra.authentication:
        return connect(config, "admin")
    admin = config.credentials.login("cassandra", "admin")
    deadline = time.monotonic() + wait_s
    while True:
        try:
            cluster, session = connect(config, "admin")
        except NoHostAvailable as exc:
            if not login_refused(exc):
                raise
            admin_refused = _reason(exc)
        else:
            _disable_default_superuser(session)
            return cluster, session
        try:
            _create_admin(config)
            continue  # log in as the new admin
        except NoHostAvailable as exc:
            if not login_refused(exc):
                raise
            default_refused = _reason(exc)
        where = f"{config.cassandra.host}:{config.cassandra.port}"
        if "not permitted to log in" in default_refused or time.monotonic() > deadline:
            raise RoleSetupError(
                f"cannot log in to Cassandra at {where}: the admin role {admin.username!r} was refused "
                f"({admin_refused}) and the default superuser {DEFAULT_SUPERUSER!r} too ({default_refused}). If the "
                f"default superuser is disabled, the admin's password (credentials.cassandra_password_admin) is not "
                f"the one it was created with: restore that secret, or remove the stack's cassandra folder to start "
                f"afresh"
            )
        time.sleep(poll_s)


def _create_admin(config: PipelineConfig) -> None:
    default = Login(username=DEFAULT_SUPERUSER, password=SecretStr(DEFAULT_SUPERUSER))  # public: Cassandra's
    cluster, session = connect_as(config.cassandra, default)
    try:
        admin = config.credentials.login("cassandra", "admin")
        session.execute(*create_admin_statement(admin.username, admin.password), timeout=30)
    finally:
        cluster.shutdown()


def _disable_default_superuser(session: Session) -> None:
    row = session.execute(
        "SELECT can_login, is_superuser FROM system_auth.roles WHERE role = %s", (DEFAULT_SUPERUSER,), timeout=30
    ).one()
    if row is not None and (row["can_login"] or row["is_superuser"]):
        session.execute(disable_default_superuser_statement(), timeout=30)


def grant_application_roles(session: Session, config: PipelineConfig) -> list[str]:
    """Run :func:`application_role_statements` on an admin session; returns what it did, without passwords.
    Nothing with ``cassandra.authentication`` off (a Cassandra without authentication has no passwords to set)."""
    done: list[str] = []
    if not config.cassandra.authentication:
        return done
    for cql, params in application_role_statements(config):
        session.execute(cql, params, timeout=30)
        done.append(cql.split(" WITH ")[0])
    return done
