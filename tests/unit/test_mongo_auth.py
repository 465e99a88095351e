"""MongoDB authentication on a real mongod, tested without one (none can be installed here: docs/security.md):
the mongod command line and its keyfile, the users' commands, the jobs' URI and Debezium's login, redaction."""

from __future__ import annotations

import base64
import json
import os
import stat
import zipfile
from pathlib import Path

import pytest
from pydantic import SecretStr
from pymongo.uri_parser import parse_uri

from jobs.config import ConfigError, Login, load_config
from jobs.mongo_auth import (
    debezium_connector_login,
    jvm_trust_options,
    mongo_client,
    mongo_uri,
    uri_with_login,
    with_tls,
)
from jobs.mongo_users import create_admin_command, ensure_users, role_commands, user_commands
from jobs.redact import redact, redact_mapping, remember
from stack.config import StackConfig
from stack.connector import load_connector
from stack.java import find_java17
from stack.mongo_tls import MongoTls
from stack.secret_files import ensure_keyfile, ensure_secrets
from stack.services import MongoDB, StackError, mongod_command

pytestmark = pytest.mark.unit

# a password with every character a URI's userinfo must not hold as it is (and a space and a plus, which
# MongoDB's drivers decode as in a form: + would come back as a space)
AWKWARD = "p@ss:w/rd%+ ?#"
BASE64 = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def _config(tmp_path: Path, authentication: bool, tls: bool = False, **secrets: str):
    folder = tmp_path / "secrets"
    folder.mkdir(exist_ok=True)
    for name, value in secrets.items():
        (folder / name).write_text(value + "\n")
    environ = {"AQSTREAM__CREDENTIALS__SECRETS_DIR": str(folder), "AQSTREAM__MONGO__TLS": str(tls).lower()}
    if authentication:
        environ["AQSTREAM__MONGO__AUTHENTICATION"] = "true"
    return load_config(environ=environ)


# -- the mongod command line and its keyfile -----------------------------------------------------------------------


def test_the_mongod_command_line_enforces_logins_with_the_keyfile(tmp_path):
    keyfile = tmp_path / "secrets" / "mongod.keyfile"
    command = mongod_command(StackConfig(state_dir=tmp_path), tmp_path / "data", keyfile)
    assert command[0] == "mongod"
    assert "--auth" in command
    assert command[command.index("--keyFile") + 1] == str(keyfile)
    assert command[command.index("--replSet") + 1] == "rs0"
    assert command[command.index("--bind_ip") + 1] == "127.0.0.1"


def test_the_keyfile_is_base64_of_mongods_length_readable_by_its_owner_only_and_never_overwritten(tmp_path):
    path = ensure_keyfile(tmp_path / "secrets" / "mongod.keyfile")
    assert stat.S_IMODE(path.stat().st_mode) == 0o400  # mongod refuses a keyfile with group or world permissions
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    key = path.read_text().strip()
    # mongod: 6 to 1024 characters of the base64 set; MongoDB's tutorial makes it with `openssl rand -base64 756`
    assert 6 <= len(key) <= 1024 and set(key) <= BASE64
    assert len(key) == 1008 and len(base64.b64decode(key, validate=True)) == 756
    assert ensure_keyfile(path).read_text().strip() == key  # kept: a second set-up reuses it


def _fake_mongod_on_path(tmp_path: Path, monkeypatch) -> None:
    """An executable named mongod first on PATH: the stack then takes the real-mongod path (nothing runs it)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "mongod"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_a_real_mongod_is_prepared_with_a_keyfile_in_the_stacks_secrets_and_started_with_it(tmp_path, monkeypatch):
    _fake_mongod_on_path(tmp_path, monkeypatch)
    monkeypatch.setenv("AQSTREAM__MONGO__AUTHENTICATION", "true")
    monkeypatch.setenv("AQSTREAM__MONGO__TLS", "false")
    mongod = MongoDB(StackConfig(state_dir=tmp_path / "state", mongo_impl="mongod"), None)
    mongod.prepare()
    keyfile = tmp_path / "state" / "secrets" / "mongod.keyfile"
    assert stat.S_IMODE(keyfile.stat().st_mode) == 0o400
    command = mongod.command()
    assert "--auth" in command and command[command.index("--keyFile") + 1] == str(keyfile)
    assert "--auth with a keyfile" in mongod.implementation


def test_a_real_mongod_with_authentication_off_in_the_config_is_refused_naming_the_field(tmp_path, monkeypatch):
    _fake_mongod_on_path(tmp_path, monkeypatch)
    monkeypatch.delenv("AQSTREAM__MONGO__AUTHENTICATION", raising=False)
    monkeypatch.setenv("AQSTREAM__MONGO__TLS", "false")
    mongod = MongoDB(StackConfig(state_dir=tmp_path / "state", mongo_impl="mongod"), None)
    with pytest.raises(StackError, match="mongo.authentication is false") as refused:
        mongod.prepare()
    assert "AQSTREAM__MONGO__AUTHENTICATION=true" in str(refused.value)


def test_a_real_mongod_with_tls_on_in_the_config_is_refused_naming_the_field(tmp_path, monkeypatch):
    _fake_mongod_on_path(tmp_path, monkeypatch)
    monkeypatch.setenv("AQSTREAM__MONGO__AUTHENTICATION", "true")
    monkeypatch.delenv("AQSTREAM__MONGO__TLS", raising=False)  # conf/pipeline.toml: on
    mongod = MongoDB(StackConfig(state_dir=tmp_path / "state", mongo_impl="mongod"), None)
    with pytest.raises(StackError, match="mongo.tls is true, but the stack serves TLS from its Java stand-in only"):
        mongod.prepare()


def test_the_java_stand_in_is_prepared_with_tls_and_refuses_authentication_on(tmp_path, monkeypatch):
    monkeypatch.delenv("AQSTREAM__MONGO__AUTHENTICATION", raising=False)
    monkeypatch.delenv("AQSTREAM__MONGO__TLS", raising=False)
    monkeypatch.delenv("AQSTREAM__CREDENTIALS__SECRETS_DIR", raising=False)  # the stack's own: <state>/secrets
    stand_in = MongoDB(StackConfig(state_dir=tmp_path / "state", mongo_impl="java"), find_java17())
    stand_in.prepare()
    assert not (tmp_path / "state" / "secrets" / "mongod.keyfile").exists()
    # keytool made the stand-in's key store and what clients trust; the password reaches it as a file
    tls = MongoTls.in_folder(tmp_path / "state" / "secrets")
    command = stand_in.command()
    assert command[command.index("--tls-keystore") + 1] == str(tls.keystore)
    assert command[command.index("--tls-keystore-password-file") + 1] == str(tls.keystore_password_file)
    password = tls.keystore_password_file.read_text().strip()
    assert password not in " ".join(command) and stat.S_IMODE(tls.keystore.stat().st_mode) == 0o600
    assert tls.cert.read_text().startswith("-----BEGIN CERTIFICATE-----") and tls.truststore.stat().st_size > 0
    assert "TLS only" in stand_in.implementation
    made = tls.cert.read_text()
    stand_in.prepare()
    assert tls.cert.read_text() == made  # kept: a second start serves the same certificate
    monkeypatch.setenv("AQSTREAM__MONGO__AUTHENTICATION", "true")
    with pytest.raises(StackError, match="mongo.authentication is true, but the stack runs the Java stand-in"):
        stand_in.prepare()


# -- the users: the commands the stack runs in the admin database -------------------------------------------------

RAW = Login(username="aqstream-raw-to-mongo", password=SecretStr("raw-secret-1"))
DEBEZIUM = Login(username="aqstream-debezium", password=SecretStr("dbz-secret-2"))

# Written from Debezium's documentation ("Setting up MongoDB"): read on admin, read on config, listDatabases
# (a cluster action), and find and changeStream cluster-wide, i.e. on every collection of every database
# ({db: "", collection: ""} in MongoDB's resource documents); and ("Required user permissions") read on the
# capture target, here its database.
DEBEZIUM_ROLE_PRIVILEGES = [
    {"resource": {"cluster": True}, "actions": ["listDatabases"]},
    {"resource": {"db": "", "collection": ""}, "actions": ["find", "changeStream"]},
]
DEBEZIUM_USER_ROLES = [
    {"role": "aqstream-debezium-capture", "db": "admin"},
    {"role": "read", "db": "admin"},
    {"role": "read", "db": "config"},
    {"role": "read", "db": "airquality"},
]


def test_a_fresh_mongod_gets_the_debezium_role_and_both_users_with_their_documented_roles():
    assert role_commands(set()) == [
        {"createRole": "aqstream-debezium-capture", "privileges": DEBEZIUM_ROLE_PRIVILEGES, "roles": []}
    ]
    assert user_commands(set(), RAW, DEBEZIUM, "airquality") == [
        {
            "createUser": "aqstream-raw-to-mongo",
            "pwd": "raw-secret-1",
            "roles": [{"role": "readWrite", "db": "airquality"}],
        },
        {"createUser": "aqstream-debezium", "pwd": "dbz-secret-2", "roles": DEBEZIUM_USER_ROLES},
    ]


def test_set_up_again_updates_what_exists_to_the_same_roles_and_the_current_password():
    changed = Login(username="aqstream-debezium", password=SecretStr("dbz-secret-3"))
    existing = {"aqstream-raw-to-mongo", "aqstream-debezium", "aqstream-mongo-admin"}
    assert role_commands({"aqstream-debezium-capture"}) == [
        {"updateRole": "aqstream-debezium-capture", "privileges": DEBEZIUM_ROLE_PRIVILEGES, "roles": []}
    ]
    assert user_commands(existing, RAW, changed, "airquality") == [
        {
            "updateUser": "aqstream-raw-to-mongo",
            "pwd": "raw-secret-1",
            "roles": [{"role": "readWrite", "db": "airquality"}],
        },
        {"updateUser": "aqstream-debezium", "pwd": "dbz-secret-3", "roles": DEBEZIUM_USER_ROLES},
    ]
    # no createUser for a user that exists: createUser would fail on it (error 51003, user already exists)
    again = role_commands({"aqstream-debezium-capture"}) + user_commands(existing, RAW, DEBEZIUM, "airquality")
    assert not [c for c in again if "createUser" in c or "createRole" in c]


def test_the_admins_password_is_a_generated_secret_like_every_login_and_a_missing_one_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("AQSTREAM__CREDENTIALS__SECRETS_DIR", str(tmp_path / "secrets"))
    mongod = MongoDB(StackConfig(state_dir=tmp_path, mongo_impl="java"), None)
    with pytest.raises(StackError, match="credentials.mongo_password_admin"):
        mongod.admin_login()
    secret = ensure_secrets(tmp_path / "secrets")["mongo_admin"]  # what `stack up` generates
    admin = mongod.admin_login()
    assert admin.username == "aqstream-mongo-admin"
    assert admin.password.get_secret_value() == secret.read_text().strip() and len(secret.read_text().strip()) >= 40
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600


class RecordingAdminDatabase:
    """pymongo's ``client.admin`` as :func:`ensure_users` uses it: answers rolesInfo/usersInfo from what it holds,
    records every other command."""

    def __init__(self, roles: set[str], users: set[str]):
        self.roles, self.users, self.commands = roles, users, []

    def command(self, command, value=None):
        if command == "rolesInfo":
            return {"roles": [{"role": role} for role in self.roles]}
        if command == "usersInfo":
            return {"users": [{"user": user} for user in self.users]}
        self.commands.append(command)
        return {"ok": 1}


def test_ensure_users_creates_the_role_and_the_users_with_the_configured_secrets_and_returns_no_password(tmp_path):
    config = _config(tmp_path, authentication=True, mongo_raw_to_mongo="raw-secret-1", mongo_debezium="dbz-secret-2")
    fresh = RecordingAdminDatabase(set(), set())
    done = ensure_users(fresh, config)
    assert fresh.commands == role_commands(set()) + user_commands(set(), RAW, DEBEZIUM, "airquality")
    assert done == [
        "createRole aqstream-debezium-capture",
        "createUser aqstream-raw-to-mongo",
        "createUser aqstream-debezium",
    ]
    again = RecordingAdminDatabase({"aqstream-debezium-capture"}, {RAW.username, DEBEZIUM.username})
    assert [line.split()[0] for line in ensure_users(again, config)] == ["updateRole", "updateUser", "updateUser"]


def test_the_admin_is_the_one_root_user_made_through_the_localhost_exception():
    admin = Login(username="aqstream-mongo-admin", password=SecretStr("adm-secret-4"))
    assert create_admin_command(admin) == {
        "createUser": "aqstream-mongo-admin",
        "pwd": "adm-secret-4",
        "roles": [{"role": "root", "db": "admin"}],
    }


# -- the jobs' connection string ----------------------------------------------------------------------------------


def test_the_uri_carries_the_login_percent_encoded_and_the_admin_database_as_its_source():
    login = Login(username="aqstream-raw-to-mongo", password=SecretStr(AWKWARD))
    uri = uri_with_login("mongodb://127.0.0.1:27017/?directConnection=true", login)
    assert uri == (
        "mongodb://aqstream-raw-to-mongo:p%40ss%3Aw%2Frd%25%2B%20%3F%23@127.0.0.1:27017/"
        "?directConnection=true&authSource=admin"
    )
    parsed = parse_uri(uri)  # the driver's own parser (no connection) gets the password back as it was
    assert (parsed["username"], parsed["password"]) == ("aqstream-raw-to-mongo", AWKWARD)
    assert parsed["options"]["authSource"] == "admin"
    assert parsed["nodelist"] == [("127.0.0.1", 27017)]


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("mongodb://db1:27017", "mongodb://u:pw@db1:27017/?authSource=admin"),
        # a /database path would be the source otherwise: the users live in admin
        ("mongodb://db1:27017/airquality", "mongodb://u:pw@db1:27017/airquality?authSource=admin"),
        (
            "mongodb://a:1,b:2/?replicaSet=rs0&authSource=users",
            "mongodb://u:pw@a:1,b:2/?replicaSet=rs0&authSource=users",
        ),
    ],
)
def test_the_uri_forms(uri, expected):
    assert uri_with_login(uri, Login(username="u", password=SecretStr("pw"))) == expected


def test_the_jobs_uri_is_the_configured_one_when_authentication_is_off_and_no_secret_is_read(tmp_path):
    config = _config(tmp_path, authentication=False)  # no secret file at all
    assert mongo_uri(config, "raw_to_mongo") == "mongodb://127.0.0.1:27017/?directConnection=true"
    assert debezium_connector_login(config) == {}


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("mongodb://h:1/?directConnection=true", "mongodb://h:1/?directConnection=true&tls=true"),
        ("mongodb://h:1", "mongodb://h:1/?tls=true"),
        ("mongodb://h:1/db", "mongodb://h:1/db?tls=true"),
        ("mongodb://h:1/?replicaSet=rs0&tls=false", "mongodb://h:1/?replicaSet=rs0&tls=false"),  # the URI's own say
        ("mongodb://h:1/?ssl=true", "mongodb://h:1/?ssl=true"),
    ],
)
def test_tls_is_asked_for_in_the_uri_unless_it_says_so_itself(uri, expected):
    assert with_tls(uri) == expected
    assert with_tls(uri, tls=False) == uri


def test_with_tls_the_clients_trust_the_files_in_the_secrets_folder_and_name_a_missing_one(tmp_path):
    config = _config(tmp_path, authentication=False, tls=True)
    assert mongo_uri(config, "raw_to_mongo") == "mongodb://127.0.0.1:27017/?directConnection=true&tls=true"
    truststore = tmp_path / "secrets" / "tls" / "mongo-truststore.jks"
    trusted = [f"-Djavax.net.ssl.trustStore={truststore}", "-Djavax.net.ssl.trustStoreType=JKS"]
    assert jvm_trust_options(config) == trusted
    with pytest.raises(ConfigError, match=r"^mongo\.tls_ca_file: no file .*secrets/tls/mongo-cert\.pem"):
        mongo_client(config)
    assert jvm_trust_options(_config(tmp_path, authentication=False, tls=False)) == []


def test_the_jobs_uri_logs_in_as_raw_to_mongo_when_authentication_is_on(tmp_path):
    config = _config(tmp_path, authentication=True, mongo_raw_to_mongo=AWKWARD)
    parsed = parse_uri(mongo_uri(config, "raw_to_mongo"))
    assert (parsed["username"], parsed["password"]) == ("aqstream-raw-to-mongo", AWKWARD)
    assert parsed["options"]["authSource"] == "admin" and parsed["options"]["directConnection"] is True


def test_authentication_on_without_the_secret_fails_naming_the_switch_and_the_field(tmp_path):
    config = _config(tmp_path, authentication=True)
    with pytest.raises(ConfigError) as missing:
        mongo_uri(config, "raw_to_mongo")
    assert "mongo.authentication is on" in str(missing.value)
    assert "credentials.mongo_password_raw_to_mongo" in str(missing.value)
    with pytest.raises(ConfigError, match="credentials.mongo_password_debezium"):
        debezium_connector_login(config)


def test_a_uri_that_already_holds_a_user_is_refused_naming_the_field(tmp_path):
    config = _config(tmp_path, authentication=True, mongo_raw_to_mongo="pw-123456")
    config = config.model_copy(update={"mongo": config.mongo.model_copy(update={"uri": "mongodb://me:x@db1/"})})
    with pytest.raises(ConfigError, match=r"^mongo\.uri: it already holds a user"):
        mongo_uri(config, "raw_to_mongo")


# -- Debezium's connector config -----------------------------------------------------------------------------------


def test_the_connector_config_gets_debeziums_login_in_the_fields_debezium_3_3_takes(tmp_path):
    config = _config(tmp_path, authentication=True, mongo_debezium=AWKWARD)
    login = debezium_connector_login(config)
    assert login == {"mongodb.user": "aqstream-debezium", "mongodb.password": AWKWARD, "mongodb.authsource": "admin"}
    definition = load_connector(login=login, overrides={"mongodb.connection.string": "mongodb://mongodb:27017/"})
    assert {k: definition["config"][k] for k in login} == login
    assert definition["config"]["mongodb.connection.string"] == "mongodb://mongodb:27017/"  # no login in it
    assert load_connector()["config"].keys().isdisjoint(login)  # off: the committed definition as it is


def test_the_connector_field_names_are_the_ones_the_debezium_jar_defines():
    """The names come from the connector the stack runs (jars/lib), not from memory."""
    jar = next(
        (Path(__file__).resolve().parents[2] / "jars" / "lib" / "connect-plugins").glob(
            "**/debezium-connector-mongodb-*.jar"
        )
    )
    with zipfile.ZipFile(jar) as archive:
        code = archive.read("io/debezium/connector/mongodb/MongoDbConnectorConfig.class")
    for name in (b"mongodb.user", b"mongodb.password", b"mongodb.authsource"):
        assert name in code, name


# -- redaction -----------------------------------------------------------------------------------------------------


def test_a_uri_with_the_login_and_the_connector_config_print_no_password(tmp_path):
    config = _config(tmp_path, authentication=True, mongo_raw_to_mongo=AWKWARD, mongo_debezium="dbz-Secret-5678")
    uri = mongo_uri(config, "raw_to_mongo")
    shown = redact(f"connecting to {uri} failed")
    assert shown == (
        "connecting to mongodb://aqstream-raw-to-mongo:***@127.0.0.1:27017/?directConnection=true&authSource=admin"
        " failed"
    )
    definition = load_connector(login=debezium_connector_login(config))
    printed = json.dumps(redact_mapping(definition))
    assert "dbz-Secret-5678" not in printed and json.loads(printed)["config"]["mongodb.password"] == "***"
    remember("dbz-Secret-5678")  # and by value, wherever else it shows (a driver's error message)
    assert redact("Authentication failed for dbz-Secret-5678.") == "Authentication failed for ***."


# -- jobs.setup: the users step (docker compose's mongod; the stack's own set-up does the same) --------------------


def test_setup_makes_no_user_and_reads_no_secret_when_authentication_is_off(tmp_path):
    from jobs.setup import create_mongo_users

    assert create_mongo_users(_config(tmp_path, authentication=False)) == []  # no secret, no server: nothing asked


def test_setup_without_the_admins_secret_exits_2_naming_the_field(tmp_path, monkeypatch, capsys):
    from jobs.setup import main

    (tmp_path / "secrets").mkdir()
    monkeypatch.setenv("AQSTREAM__CREDENTIALS__SECRETS_DIR", str(tmp_path / "secrets"))
    monkeypatch.setenv("AQSTREAM__MONGO__AUTHENTICATION", "true")
    monkeypatch.setenv("AQSTREAM__MONGO__TLS", "false")
    assert main(["mongo"]) == 2
    err = capsys.readouterr().err
    assert "mongo.authentication is on" in err and "credentials.mongo_password_admin" in err
