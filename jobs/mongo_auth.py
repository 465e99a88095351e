"""How each MongoDB client logs in: the jobs' connection string and the Debezium connector's login.

With ``mongo.authentication = true`` (conf/pipeline.toml) a client logs in as its own user of
``[credentials]``, whose password is read now (a secret that cannot be read fails naming the field);
with ``false`` nothing changes: the configured URI as it is, no login (the Java stand-in cannot
authenticate). The users live in the ``admin`` database (stack/mongo_users.py creates them there), so
the login names it as its authentication source. docs/security.md.
"""

from __future__ import annotations

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


def mongo_uri(config: PipelineConfig, who: str) -> str:
    """The connection string ``who`` (``raw_to_mongo``, ``admin``) connects with: ``mongo.uri``, logged in as
    ``who`` when ``mongo.authentication`` is on."""
    if not config.mongo.authentication:
        return config.mongo.uri
    login = mongo_login(config, who)
    try:
        return uri_with_login(config.mongo.uri, login)
    except ValueError as exc:
        raise ConfigError(f"mongo.uri: {exc}") from None


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
