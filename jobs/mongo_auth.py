"""How each MongoDB client connects: its connection string (login, TLS), pymongo's client, the JVM's trust,
and the Debezium connector's login.

With ``mongo.tls = true`` the connection string carries ``tls=true``; pymongo verifies the server against
``mongo.tls_ca_file``, a JVM (the Spark connector's, Kafka Connect's) against ``mongo.tls_truststore`` as its
default trust store (``javax.net.ssl.trustStore``: the Mongo Spark connector and Debezium's sink take TLS
trust from nowhere else), both files relative to ``[credentials] secrets_dir`` unless absolute.

With ``mongo.authentication = true`` (conf/pipeline.toml) a client logs in as its own user of
``[credentials]``, whose password is read now (a secret that cannot be read fails naming the field);
with ``false`` nothing changes: the configured URI as it is, no login (the Java stand-in cannot
authenticate). The users live in the ``admin`` database (jobs/mongo_users.py creates them there), so
the login names it as its authentication source. docs/security.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from jobs.config import ConfigError, Login, PipelineConfig

# where the stack creates the users (a URI's /database path would otherwise be taken as the source)
AUTH_SOURCE = "admin"


def uri_with_login(uri: str, login: Login, auth_source: str = AUTH_SOURCE) -> str:
    """``uri`` with ``user:password@`` before its hosts, both percent-encoded (a ``@``, ``:``, ``/``, ``%`` or
    ``+`` in a password would otherwise end or change it), and ``authSource`` unless the URI sets one.
    A URI that already holds a login is refused (two logins for one client)."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        raise ValueError("expected mongodb://… or mongodb+srv://…")
    end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    hosts, tail = rest[:end], rest[end:]
    if "@" in hosts:
        raise ValueError("it already holds a user: with mongo.authentication the login comes from [credentials]")
    path, question, query = tail.partition("?")
    options = [option for option in query.split("&") if option]
    if not any(option.split("=", 1)[0].lower() == "authsource" for option in options):
        options.append(f"authSource={quote(auth_source, safe='')}")
    userinfo = f"{quote(login.username, safe='')}:{quote(login.password.get_secret_value(), safe='')}"
    return f"{scheme}://{userinfo}@{hosts}{path or '/'}?{'&'.join(options)}"


def mongo_login(config: PipelineConfig, who: str) -> Login:
    """``who``'s MongoDB user and password; a secret that cannot be read fails naming the switch and the field."""
    try:
        return config.credentials.login("mongo", who)
    except ConfigError as exc:
        raise ConfigError(f"mongo.authentication is on, but {exc}") from None


def with_tls(uri: str, tls: bool = True) -> str:
    """``uri`` with ``tls=true`` added when ``tls`` and the URI says nothing of TLS (``tls``/``ssl``) itself."""
    base, question, query = uri.partition("?")
    options = [option for option in query.split("&") if option]
    if not tls or any(option.split("=", 1)[0].lower() in ("tls", "ssl") for option in options):
        return uri
    if not question and base.count("/") == 2:  # mongodb://host:port: the options follow a "/"
        base += "/"
    return f"{base}?{'&'.join([*options, 'tls=true'])}"


def mongo_uri(config: PipelineConfig, who: str) -> str:
    """The connection string ``who`` (``raw_to_mongo``, ``admin``) connects with: ``mongo.uri``, logged in as
    ``who`` when ``mongo.authentication`` is on, with ``tls=true`` when ``mongo.tls`` is."""
    uri = with_tls(config.mongo.uri, config.mongo.tls)
    if not config.mongo.authentication:
        return uri
    login = mongo_login(config, who)
    try:
        return uri_with_login(uri, login)
    except ValueError as exc:
        raise ConfigError(f"mongo.uri: {exc}") from None


def tls_path(config: PipelineConfig, field: str) -> Path:
    """``mongo.tls_ca_file`` or ``mongo.tls_truststore`` as a path (a relative one in ``credentials.secrets_dir``)."""
    path = Path(getattr(config.mongo, field))
    return path if path.is_absolute() else config.credentials.secrets_dir / path


def tls_file(config: PipelineConfig, field: str) -> Path:
    """:func:`tls_path`, which must exist: else a ConfigError naming the field and the path (``python -m stack
    up`` makes the stack's)."""
    path = tls_path(config, field)
    if not path.is_file():
        raise ConfigError(f"mongo.{field}: no file {path} (mongo.tls is on; `python -m stack up` makes its own)")
    return path


def mongo_client(config: PipelineConfig, who: str = "raw_to_mongo", **options: Any):
    """A pymongo client as ``who`` (:func:`mongo_uri`), verifying the server against ``mongo.tls_ca_file`` when
    ``mongo.tls`` is on; ``options`` are MongoClient's (e.g. ``serverSelectionTimeoutMS``)."""
    from pymongo import MongoClient

    if config.mongo.tls:
        options.setdefault("tlsCAFile", str(tls_file(config, "tls_ca_file")))
    return MongoClient(mongo_uri(config, who), **options)


def jvm_trust_options(config: PipelineConfig) -> list[str]:
    """The JVM options that make ``mongo.tls_truststore`` a JVM's default trust store (nothing without TLS).
    A JKS store of public certificates needs no password to be read. Not checked here (a session that never
    reaches MongoDB needs no store): a job that writes MongoDB checks it at start (:func:`tls_file`)."""
    if not config.mongo.tls:
        return []
    return [f"-Djavax.net.ssl.trustStore={tls_path(config, 'tls_truststore')}", "-Djavax.net.ssl.trustStoreType=JKS"]


def debezium_connector_login(config: PipelineConfig) -> dict[str, str]:
    """What the Debezium connector's config gets when ``mongo.authentication`` is on (else nothing): Debezium
    3.3's ``mongodb.user``, ``mongodb.password`` (a Connect PASSWORD field: Connect's logs show ``[hidden]``)
    and ``mongodb.authsource`` (its default is ``admin`` too; said here so the two cannot drift). Separate
    fields rather than a login in ``mongodb.connection.string``: Connect masks a PASSWORD field in the
    configurations it logs, and the connection string is a plain string to it."""
    if not config.mongo.authentication:
        return {}
    login = mongo_login(config, "debezium")
    return {
        "mongodb.user": login.username,
        "mongodb.password": login.password.get_secret_value(),
        "mongodb.authsource": AUTH_SOURCE,
    }
