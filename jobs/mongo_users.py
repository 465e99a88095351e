"""The users of a real ``mongod`` run with ``--auth``: the commands that create them, and their one application.

The commands are pure functions: each returns the command documents run in the ``admin`` database (where the
users live, the clients' ``authSource``), so what is granted is tested without a mongod. :func:`ensure_users`
runs them logged in as the admin (``[credentials] mongo_user_admin``): ``jobs.setup mongo`` does (docker
compose's mongod, whose image creates the admin on a fresh volume), and so does the local stack once it has
created the admin through the localhost exception (``MongoDB.after_healthy`` in stack/services.py). Run
again, they leave the same users and roles: an existing role or user is updated (``updateRole``/``updateUser``,
to the same privileges, roles and current password: a changed password is set, an unchanged one stays what it
was). docs/security.md.
"""

from __future__ import annotations

from typing import Any

from jobs.config import Login, PipelineConfig

Command = dict[str, Any]

# the admin ([credentials] mongo_user_admin): set-up only (it creates the role and the users)
ADMIN_ROLES = [{"role": "root", "db": "admin"}]

DEBEZIUM_ROLE = "aqstream-debezium-capture"
# What Debezium's MongoDB connector documentation asks of its user (read in debezium/debezium's
# documentation/modules/ROOT/pages/connectors/mongodb.adoc at 00020a66, published at
# https://debezium.io/documentation/reference/stable/connectors/mongodb.html#setting-up-mongodb):
# - "Setting up MongoDB": "a MongoDB user that has the appropriate roles to read the admin database where the
#   oplog can be read. Additionally, the user must also be able to read the config database in the configuration
#   server of a sharded cluster and must have listDatabases privilege action. When change streams are used (the
#   default) the user also must have cluster-wide privilege actions find and changeStream."
# - "Required user permissions": with capture.scope = collection (conf/debezium/mongodb-readings.json), permission
#   to read the capture.target collection; and to run `hello` (which needs no privilege).
# listDatabases is a cluster action (resource {cluster: true}); find and changeStream over the whole deployment
# are granted on {db: "", collection: ""}, every non-system collection of every database (MongoDB's change
# streams access control, https://jira.mongodb.org/browse/DOCS-11617).
DEBEZIUM_PRIVILEGES = [
    {"resource": {"cluster": True}, "actions": ["listDatabases"]},
    {"resource": {"db": "", "collection": ""}, "actions": ["find", "changeStream"]},
]


def debezium_roles(database: str) -> list[dict[str, str]]:
    """The documented privileges (:data:`DEBEZIUM_ROLE`), read on admin and config, and read on the pipeline's
    database, which holds the capture target (the read role also lists its collections, as a snapshot does)."""
    return [
        {"role": DEBEZIUM_ROLE, "db": "admin"},
        {"role": "read", "db": "admin"},
        {"role": "read", "db": "config"},
        {"role": "read", "db": database},
    ]


def raw_to_mongo_roles(database: str) -> list[dict[str, str]]:
    """raw_to_mongo upserts the readings and (jobs.setup) creates their collection and index: readWrite there only."""
    return [{"role": "readWrite", "db": database}]


def create_admin_command(admin: Login) -> Command:
    """The first user, made through the localhost exception (allowed only while the mongod has no user)."""
    return {"createUser": admin.username, "pwd": admin.password.get_secret_value(), "roles": ADMIN_ROLES}


def role_commands(existing_roles: set[str]) -> list[Command]:
    """The Debezium role, created or (when it exists) set to the documented privileges."""
    verb = "updateRole" if DEBEZIUM_ROLE in existing_roles else "createRole"
    return [{verb: DEBEZIUM_ROLE, "privileges": DEBEZIUM_PRIVILEGES, "roles": []}]


def user_commands(existing_users: set[str], raw_to_mongo: Login, debezium: Login, database: str) -> list[Command]:
    """raw_to_mongo's and Debezium's users: created, or (when they exist) set to their roles and current password."""
    wanted = [(raw_to_mongo, raw_to_mongo_roles(database)), (debezium, debezium_roles(database))]
    return [
        {
            "updateUser" if login.username in existing_users else "createUser": login.username,
            "pwd": login.password.get_secret_value(),
            "roles": roles,
        }
        for login, roles in wanted
    ]


def ensure_users(admin_db: Any, config: PipelineConfig) -> list[str]:
    """Create or update the Debezium role and the two users, ``admin_db`` being the ``admin`` database of a client
    logged in as the admin; returns the commands run, by verb and name (never a password)."""
    roles = {role["role"] for role in admin_db.command("rolesInfo", 1)["roles"]}
    users = {user["user"] for user in admin_db.command("usersInfo", 1)["users"]}
    raw_to_mongo, debezium = (config.credentials.login("mongo", who) for who in ("raw_to_mongo", "debezium"))
    commands = role_commands(roles) + user_commands(users, raw_to_mongo, debezium, config.mongo.database)
    for command in commands:
        admin_db.command(command)
    return [" ".join(map(str, next(iter(command.items())))) for command in commands]
