"""The users of the stack's real ``mongod`` (it runs with ``--auth``): the commands that create them.

Pure functions: each returns the command documents the stack runs in the ``admin`` database (where the users
live, the clients' ``authSource``), so what is granted is tested without a mongod. The stack's set-up
(``MongoDB.after_healthy`` in stack/services.py) creates the admin through the localhost exception, logs in as
it, then runs :func:`role_commands` and :func:`user_commands`. Run again, they leave the same users and roles:
an existing role or user is updated (``updateRole``/``updateUser``, to the same privileges, roles and current
password: a changed password is set, an unchanged one stays what it was). docs/security.md.
"""

from __future__ import annotations

from typing import Any

from jobs.config import Login

Command = dict[str, Any]

# the admin: the stack's set-up only (it creates the role and the users). Its password is the stack's own secret,
# <state_dir>/secrets/mongod_admin (no job and no [credentials] field needs it)
ADMIN_USER = "aqstream-mongo-admin"
ADMIN_SECRET = "mongod_admin"
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
