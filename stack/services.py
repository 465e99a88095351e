"""The services of the local stack: how each is configured, started and asked whether it is up.

Each service runs as a child process on loopback from the artifacts in ``jars/lib`` (see
``jars/pom.xml``), with its config, data, log and pid file under ``<state_dir>/<service>/``.
"""

from __future__ import annotations

import base64
import importlib.util
import os
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from jobs.mongo_auth import AUTH_SOURCE, jvm_trust_options
from jobs.redact import redact
from stack.config import REPO_ROOT, StackConfig
from stack.process import pid_alive, port_taken, rss_bytes, start_detached, stop_pid, wait_exec

PROMETHEUS_CONF_DIR = REPO_ROOT / "conf" / "prometheus"

# Kafka's own reserved ids (org.apache.kafka.common.Uuid): ZERO_UUID and METADATA_TOPIC_ID.
_KAFKA_RESERVED_UUIDS = (bytes(16), bytes(15) + b"\x01")


class StackError(RuntimeError):
    """A service of the stack could not be prepared, started or reached; the message names it."""


def kafka_random_uuid() -> str:
    """A cluster id as Kafka's ``random-uuid`` makes it (``Uuid.randomUuid``).

    Kafka prints a UUID's 16 bytes as URL-safe base64 without padding and redraws any id that
    is reserved or begins with ``-``: ``StorageTool format -t -xyz`` would read ``-xyz`` as an option.
    """
    while True:
        raw = uuid.uuid4().bytes
        text = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        if raw not in _KAFKA_RESERVED_UUIDS and not text.startswith("-"):
            return text


# The JPMS flags Cassandra 5.0 needs on Java 17 (as in its conf/jvm17-server.options).
CASSANDRA_JAVA17_FLAGS = [
    "-Djdk.attach.allowAttachSelf=true",
    "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports=java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED",
    "--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports=java.rmi/sun.rmi.server=ALL-UNNAMED",
    "--add-exports=java.sql/java.sql=ALL-UNNAMED",
    "--add-exports=java.base/java.lang.ref=ALL-UNNAMED",
    "--add-exports=jdk.unsupported/sun.misc=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.module=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.loader=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.reflect=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.math=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.module=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.util.jar=ALL-UNNAMED",
    "--add-opens=jdk.management/com.sun.management.internal=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "-Dio.netty.tryReflectionSetAccessible=true",
]


class Service:
    """One process of the stack. Subclasses say how to configure, start and probe it."""

    name: str = ""
    port_field: str = ""
    other_port_fields: tuple[str, ...] = ()  # the ports it binds besides the one clients use
    needs: str | None = None  # a service that must answer before this one starts

    def __init__(self, cfg: StackConfig, java_home: Path | None):
        self.cfg = cfg
        self.java_home = java_home

    # -- layout ---------------------------------------------------------------------------------
    @property
    def dir(self) -> Path:
        return self.cfg.state_dir / self.name

    @property
    def log_file(self) -> Path:
        return self.dir / f"{self.name}.log"

    @property
    def pid_file(self) -> Path:
        return self.dir / "pid"

    @property
    def port(self) -> int:
        return int(getattr(self.cfg, self.port_field))

    def taken_ports(self) -> dict[str, int]:
        """Its ports (by config field) that another process already listens on: checked before it starts."""
        ports = {f: int(getattr(self.cfg, f)) for f in (self.port_field, *self.other_port_fields)}
        return {f: p for f, p in ports.items() if port_taken(self.cfg.host, p)}

    @property
    def marker(self) -> str:
        """A string in the process's command line that proves the pid is ours."""
        return f"-Daqstream.service={self.name}"

    @property
    def implementation(self) -> str:
        return self.name

    # -- lifecycle ------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Write configs and do first-start initialisation. Idempotent."""
        self.dir.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        raise NotImplementedError

    def healthy(self) -> bool:
        """One real client round trip, bounded in time."""
        raise NotImplementedError

    def after_healthy(self) -> None:
        """Hook run once the service answers (e.g. initiate a replica set)."""

    def environment(self) -> dict[str, str]:
        """Variables its process needs on top of ours."""
        return {}

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid, self.marker) else None

    def start(self) -> int:
        try:
            self.prepare()
        except OSError as exc:  # a folder of the state dir that cannot be made
            raise StackError(f"{self.name}: preparation failed: {exc}") from None
        env = {**os.environ, **self.environment()}
        if self.java_home is not None:
            env["JAVA_HOME"] = str(self.java_home)
        pid = start_detached(self.command(), self.dir, self.log_file, env)
        self.pid_file.write_text(str(pid))
        wait_exec(pid, self.marker)  # until then /proc shows the forking Python, not the service
        return pid

    def stop(self) -> str:
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return "not running"
        outcome = stop_pid(pid, self.marker, self.cfg.stop_timeout_s)
        self.pid_file.unlink(missing_ok=True)
        return outcome

    def rss(self) -> int:
        pid = self.pid()
        return rss_bytes(pid) if pid else 0

    # -- helpers --------------------------------------------------------------------------------
    def java(self) -> str:
        assert self.java_home is not None
        return str(self.java_home / "bin" / "java")

    def keytool(self) -> Path:
        assert self.java_home is not None
        return self.java_home / "bin" / "keytool"

    def classpath(self, *sets: str) -> str:
        return ":".join(str(self.cfg.lib_dir / s / "*") for s in sets)

    def render(self, template: str, target: str, **extra: str) -> Path:
        path = self.dir / target
        text = self.render_text(template, **extra)
        try:
            path.write_text(text)
        except OSError as exc:
            raise StackError(f"{self.name}: could not write {path}: {exc!r}") from None
        return path

    def render_text(self, template: str, **extra: str) -> str:
        """A template of conf/stack with its {name} placeholders filled (no other braces in templates)."""
        source = self.cfg.conf_dir / template
        try:
            return source.read_text().format_map({**self.cfg.template_values(), **extra})
        except (OSError, KeyError, ValueError) as exc:
            raise StackError(f"{self.name}: could not fill {source}: {exc!r}") from None

    def run_preparation(self, what: str, cmd: list[str], timeout_s: float = 120.0) -> None:
        """Run one preparation command; on failure raise StackError with its name and output tail."""
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=timeout_s)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise StackError(f"{self.name}: {what} could not run: {exc}") from None
        if done.returncode != 0:
            output = "\n".join((done.stderr + done.stdout).strip().splitlines()[-40:])
            raise StackError(
                f"{self.name}: {what} failed (exit {done.returncode}): {' '.join(cmd)}\n{output or '(no output)'}"
            )


def kafka_pipeline_config(cfg: StackConfig, service: str = "kafka"):
    """The pipeline config (conf/pipeline.toml and its overrides) pointed at this stack's broker and at the
    secrets this stack generated (``<state_dir>/secrets``, unless AQSTREAM__CREDENTIALS__SECRETS_DIR says
    otherwise): the logins and topics the broker and Kafka Connect are set up with. The jobs and tests run
    against a stack with another state dir take its secrets with AQSTREAM__CREDENTIALS__SECRETS_DIR."""
    from jobs.config import ConfigError, load_config

    try:
        config = load_config(environ={**os.environ, **cfg.pipeline_auth_env()})
    except ConfigError as exc:
        raise StackError(f"{service}: cannot read the pipeline config: {exc}") from None
    credentials = config.credentials
    if "AQSTREAM__CREDENTIALS__SECRETS_DIR" not in os.environ:
        credentials = credentials.model_copy(update={"secrets_dir": cfg.state_dir / "secrets"})
    kafka = config.kafka.model_copy(update={"bootstrap_servers": cfg.kafka_bootstrap})
    return config.model_copy(update={"kafka": kafka, "credentials": credentials})


def kafka_login(config, who: str):
    from jobs.config import ConfigError

    try:
        return config.credentials.login("kafka", who)
    except ConfigError as exc:
        raise StackError(f"kafka: {exc}") from None


def scram_argument(mechanism: str, username: str, password: str) -> str:
    """One ``--add-scram`` value of ``kafka-storage format``: ``SCRAM-SHA-512=[name=…,password=…]``."""
    return f"{mechanism}=[name={username},password={password}]"


class Kafka(Service):
    name = "kafka"
    port_field = "kafka_port"
    other_port_fields = ("kafka_controller_port",)

    @property
    def scram_users_file(self) -> Path:
        """The principals whose SCRAM credentials the storage was formatted with (names only)."""
        return self.dir / "scram-users"

    def prepare(self) -> None:
        from jobs.config import KAFKA_PRINCIPALS
        from jobs.kafka_auth import jaas_config

        super().prepare()
        config = kafka_pipeline_config(self.cfg)
        logins = {who: kafka_login(config, who) for who in KAFKA_PRINCIPALS}
        mechanism = config.kafka.sasl_mechanism
        authentication = ""
        if self.cfg.authentication:
            authentication = self.render_text(
                "kafka-authentication.properties",
                sasl_mechanism=mechanism,
                sasl_mechanism_lower=mechanism.lower(),
                admin_user=logins["admin"].username,
                admin_jaas=jaas_config(logins["admin"]),
            )
        properties = self.render(
            "kafka-server.properties",
            "server.properties",
            data_dir=str(self.dir / "data"),
            client_protocol=config.kafka.security_protocol,
            authentication=authentication,
        )
        properties.chmod(0o600)  # it holds the admin password (the broker's own inter-broker login)
        scram_logins = list(logins.values()) if self.cfg.authentication else []
        users = sorted(login.username for login in scram_logins)
        if (self.dir / "data" / "meta.properties").exists():
            formatted_with = self.scram_users_file.read_text().split() if self.scram_users_file.exists() else []
            missing = sorted(set(users) - set(formatted_with))
            if missing:
                raise StackError(
                    f"kafka: its storage {self.dir / 'data'} was formatted without SCRAM credentials for "
                    f"{', '.join(missing)} (before authentication, or before that principal existed); "
                    f"recreate it: `python -m stack down` then remove {self.dir} (its topics are lost)"
                )
            return
        scram = [
            arg
            for login in scram_logins
            for arg in ("--add-scram", scram_argument(mechanism, login.username, login.password.get_secret_value()))
        ]
        command = [
            self.java(),
            "-cp",
            self.classpath("kafka"),
            *self._log_opts(),
            "kafka.tools.StorageTool",
            "format",
            "-t",
            kafka_random_uuid(),
            "-c",
            str(properties),
            *scram,
        ]
        try:
            self.run_preparation("storage format", command)
        except StackError as exc:  # its message shows the command line, passwords included
            raise StackError(redact(str(exc))) from None
        self.scram_users_file.write_text("\n".join(users) + "\n")

    def _log_opts(self) -> list[str]:
        return [f"-Dlog4j2.configurationFile={self.cfg.conf_dir / 'log4j2.properties'}"]

    def command(self) -> list[str]:
        return [
            self.java(),
            f"-Xmx{self.cfg.kafka_heap}",
            "-Xms256m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            self.marker,
            *self._log_opts(),
            "-cp",
            self.classpath("kafka"),
            "kafka.Kafka",
            str(self.dir / "server.properties"),
        ]

    def healthy(self) -> bool:
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        from jobs.kafka_auth import kafka_python_settings

        try:
            admin = KafkaAdminClient(
                **kafka_python_settings(kafka_pipeline_config(self.cfg), "admin"),
                request_timeout_ms=5000,
                api_version_auto_timeout_ms=5000,
                client_id="aqstream-stack-health",
            )
        except (KafkaError, OSError, ValueError):
            return False
        try:
            return bool(admin.describe_cluster().get("brokers"))
        except (KafkaError, OSError):
            return False
        finally:
            admin.close()

    def after_healthy(self) -> None:
        """The principals' ACLs (jobs/kafka_acls.py), before Kafka Connect (which needs its own) starts."""
        from kafka.errors import KafkaError

        from jobs.kafka_acls import apply_acls

        try:
            apply_acls(kafka_pipeline_config(self.cfg))
        except (KafkaError, RuntimeError) as exc:
            raise StackError(f"kafka: creating the ACLs failed: {exc}") from None


class Cassandra(Service):
    name = "cassandra"
    port_field = "cassandra_port"
    other_port_fields = ("cassandra_storage_port", "cassandra_jmx_port")

    def prepare(self) -> None:
        super().prepare()
        on = self.cfg.authentication
        self.render(
            "cassandra.yaml",
            "cassandra.yaml",
            data_dir=str(self.dir / "data"),
            cassandra_authenticator="PasswordAuthenticator" if on else "AllowAllAuthenticator",
            cassandra_authorizer="CassandraAuthorizer" if on else "AllowAllAuthorizer",
        )

    def command(self) -> list[str]:
        jamm = next((self.cfg.lib_dir / "cassandra").glob("jamm-*.jar"), None)
        if jamm is None:
            raise StackError(f"cassandra: no jamm-*.jar in {self.cfg.lib_dir / 'cassandra'}: run `make jars` first")
        return [
            self.java(),
            *CASSANDRA_JAVA17_FLAGS,
            f"-javaagent:{jamm}",
            f"-Xmx{self.cfg.cassandra_heap}",
            f"-Xms{self.cfg.cassandra_heap}",
            "-XX:+UseG1GC",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            self.marker,
            f"-Dcassandra.config=file://{self.dir / 'cassandra.yaml'}",
            f"-Dcassandra.storagedir={self.dir / 'data'}",
            f"-Dlogback.configurationFile={self.cfg.conf_dir / 'cassandra-logback.xml'}",
            f"-Dcassandra.jmx.local.port={self.cfg.cassandra_jmx_port}",
            "-Dcassandra-foreground=yes",
            # one node: nothing to gossip with, so do not wait for it
            "-Dcassandra.skip_wait_for_gossip_to_settle=0",
            "-Dcassandra.ring_delay_ms=100",
            "-Dcassandra.superuser_setup_delay_ms=0",
            "-cp",
            self.classpath("cassandra"),
            "org.apache.cassandra.service.CassandraDaemon",
        ]

    def pipeline_config(self):
        """conf/pipeline.toml pointed at this Cassandra, its roles' passwords from this stack's generated secrets
        (``<state_dir>/secrets``) unless AQSTREAM__CREDENTIALS__SECRETS_DIR names other ones."""
        from jobs.config import ConfigError, load_config

        environ = {
            "AQSTREAM__CREDENTIALS__SECRETS_DIR": str(self.cfg.state_dir / "secrets"),  # Stack.secrets_dir
            **os.environ,
            **self.cfg.pipeline_auth_env(),
            "AQSTREAM__CASSANDRA__HOST": self.cfg.host,
            "AQSTREAM__CASSANDRA__PORT": str(self.port),
        }
        try:
            return load_config(environ=environ)
        except ConfigError as exc:
            raise StackError(f"cassandra: cannot read the pipeline config for its roles: {exc}") from None

    def healthy(self) -> bool:
        """A round trip as the admin role. A login refused counts as an answer (the node read and checked the
        credentials): on the first start the admin role does not exist yet; :meth:`after_healthy` sets the
        roles up and says what is wrong if it cannot."""
        from cassandra.cluster import NoHostAvailable

        from jobs.cassandra_client import connect
        from jobs.cassandra_roles import login_refused

        try:
            cluster, session = connect(self.pipeline_config(), "admin", timeout_s=5.0)
        except NoHostAvailable as exc:
            return login_refused(exc)
        except Exception:  # the driver raises several unrelated types while the node starts
            return False
        try:
            return session.execute("SELECT release_version FROM system.local", timeout=5).one() is not None
        except Exception:
            return False
        finally:
            cluster.shutdown()

    def after_healthy(self) -> None:
        """The set-up of the roles (idempotent): the default superuser replaced by the admin role, waiting for
        the default role a fresh node makes a few seconds after it starts (jobs/cassandra_roles.py)."""
        from jobs.cassandra_roles import admin_session

        config = self.pipeline_config()
        try:
            cluster, _ = admin_session(config, wait_s=60.0)
        except Exception as exc:  # RoleSetupError, a secret that cannot be read, the driver's errors
            raise StackError(f"cassandra: setting up its roles failed: {exc}") from None
        cluster.shutdown()


def mongod_command(cfg: StackConfig, data_dir: Path, keyfile: Path) -> list[str]:
    """A real mongod: a one-member replica set on loopback that lets no client in without a login (``--auth``).
    The members of a replica set with access control authenticate to each other: ``--keyFile``, as in MongoDB's
    "Deploy a Self-Managed Replica Set With Keyfile Authentication" (a second member would need the same file)."""
    return [
        "mongod",
        "--replSet",
        cfg.mongo_replica_set,
        "--bind_ip",
        cfg.host,
        "--port",
        str(cfg.mongo_port),
        "--dbpath",
        str(data_dir),
        "--auth",
        "--keyFile",
        str(keyfile),
    ]


def mongo_authentication_problem(use_mongod: bool, authentication: bool, tls: bool = False) -> str | None:
    """Why the stack's MongoDB and the jobs' ``mongo.authentication`` and ``mongo.tls`` cannot work together, or
    None."""
    if use_mongod and tls:
        return (
            "mongodb: mongo.tls is true, but the stack serves TLS from its Java stand-in only, not from a real mongod: "
            "set mongo.tls = false (AQSTREAM__MONGO__TLS=false), or keep the stand-in (AQSTREAM_MONGO_IMPL=java)"
        )
    if use_mongod and not authentication:
        return (
            "mongodb: a real mongod runs with --auth, but mongo.authentication is false, so the jobs and Debezium "
            "would not log in: set mongo.authentication = true (conf/pipeline.toml [mongo], or "
            "AQSTREAM__MONGO__AUTHENTICATION=true), or keep the Java stand-in (AQSTREAM_MONGO_IMPL=java)"
        )
    if authentication and not use_mongod:
        return (
            "mongodb: mongo.authentication is true, but the stack runs the Java stand-in, which cannot authenticate: "
            "set mongo.authentication = false, or put mongod on PATH (AQSTREAM_MONGO_IMPL=mongod)"
        )
    return None


class MongoDB(Service):
    """A real ``mongod`` (one-member replica set, ``--auth``) when installed, else the Java stand-in (no login)."""

    name = "mongodb"
    port_field = "mongo_port"
    primary_timeout_s = 30.0  # a fresh one-member replica set elects itself in a few seconds

    @property
    def use_mongod(self) -> bool:
        if self.cfg.mongo_impl == "java":
            return False
        found = shutil.which("mongod") is not None
        if self.cfg.mongo_impl == "mongod" and not found:
            raise StackError("mongodb: mongo_impl=mongod but no mongod on PATH")
        return found

    @property
    def implementation(self) -> str:
        if self.use_mongod:
            return f"mongod (real MongoDB, replica set {self.cfg.mongo_replica_set}, --auth with a keyfile)"
        # it answers no authentication command: say so wherever the stack is listed (docs/security.md)
        tls = "TLS only" if self.tls else "no TLS"
        return (
            f"mongo-java-server (Java stand-in, see stack/mongo-server/README.md; {tls}; authentication NOT enforced)"
        )

    @property
    def tls(self) -> bool:
        """Whether the stand-in serves TLS: as the pipeline config the stack hands out says (``mongo.tls``)."""
        return not self.use_mongod and self.pipeline_config().mongo.tls

    def tls_material(self):
        from stack.mongo_tls import MongoTls

        return MongoTls.in_folder(self.pipeline_config().credentials.secrets_dir)

    @property
    def marker(self) -> str:
        # mongod takes no -D flags; its --dbpath is unique to this stack
        return str(self.dir / "data") if self.use_mongod else super().marker

    @property
    def keyfile(self) -> Path:
        return self.cfg.state_dir / "secrets" / "mongod.keyfile"

    def pipeline_config(self):
        """The pipeline config with this stack's secrets (the users' logins and the database they work in)."""
        return kafka_pipeline_config(self.cfg, service="mongodb")

    def prepare(self) -> None:
        super().prepare()
        (self.dir / "data").mkdir(exist_ok=True)
        mongo = self.pipeline_config().mongo
        problem = mongo_authentication_problem(self.use_mongod, mongo.authentication, mongo.tls)
        if problem:
            raise StackError(problem)
        if self.tls:
            from stack.mongo_tls import ensure_mongo_tls

            try:
                ensure_mongo_tls(self.pipeline_config().credentials.secrets_dir, self.keytool(), self.cfg.host)
            except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
                raise StackError(f"mongodb: making its TLS key store failed: {exc}") from None
        if self.use_mongod:
            from stack.secret_files import ensure_keyfile

            ensure_keyfile(self.keyfile)

    def command(self) -> list[str]:
        if self.use_mongod:
            return mongod_command(self.cfg, self.dir / "data", self.keyfile)
        return [
            self.java(),
            f"-Xmx{self.cfg.mongo_heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            self.marker,
            "-cp",
            self.classpath("mongo"),
            "aqstream.mongo.AqMongoServer",
            "--bind",
            self.cfg.host,
            "--port",
            str(self.port),
            "--data-dir",
            str(self.dir / "data"),
            *self._tls_arguments(),
        ]

    def _tls_arguments(self) -> list[str]:
        if not self.tls:
            return []
        tls = self.tls_material()
        return ["--tls-keystore", str(tls.keystore), "--tls-keystore-password-file", str(tls.keystore_password_file)]

    def _client(self, login=None):
        from pymongo import MongoClient

        options = {}
        if self.tls:
            options.update(tls=True, tlsCAFile=str(self.tls_material().cert))
        if login is not None:
            options.update(username=login.username, password=login.password.get_secret_value(), authSource=AUTH_SOURCE)
        return MongoClient(
            self.cfg.host,
            self.port,
            directConnection=True,
            serverSelectionTimeoutMS=3000,
            connectTimeoutMS=3000,
            **options,
        )

    def healthy(self) -> bool:
        from pymongo.errors import PyMongoError

        client = self._client()
        try:
            # ping needs no login, also under --auth
            return client.admin.command("ping").get("ok") == 1
        except PyMongoError:
            return False
        finally:
            client.close()

    def after_healthy(self) -> None:
        """A real mongod: the replica set initiated and the users made (jobs/mongo_users.py). A fresh mongod has no
        user: through the localhost exception (a client on loopback may do this while no user exists) the replica
        set is initiated and the admin created; then, logged in as the admin, the Debezium role and the two users
        are created or brought to their roles and current passwords."""
        if not self.use_mongod:
            return
        from pymongo.errors import PyMongoError

        from jobs.config import ConfigError
        from jobs.mongo_users import ensure_users

        config = self.pipeline_config()
        admin = self.admin_login()
        try:
            if not self._logs_in(admin):
                self._create_admin(admin)
            with self._client(admin) as client:
                self._initiate(client)
                self._wait_primary(client)
                ensure_users(client.admin, config)
        except ConfigError as exc:
            raise StackError(f"mongodb: {exc}") from None
        except PyMongoError as exc:
            raise StackError(redact(f"mongodb: setting up the users failed: {exc}")) from None

    def admin_login(self):
        """The set-up's own user, ``[credentials] mongo_user_admin``: its password a secret the stack generates."""
        from jobs.config import ConfigError

        try:
            return self.pipeline_config().credentials.login("mongo", "admin")
        except ConfigError as exc:
            raise StackError(f"mongodb: {exc}") from None

    def _logs_in(self, login) -> bool:
        from pymongo.errors import OperationFailure

        with self._client(login) as client:
            try:
                client.admin.command("ping")  # pymongo logs in before the first command
                return True
            except OperationFailure as exc:
                if exc.code == 18:  # AuthenticationFailed: no such user yet, or another password
                    return False
                raise

    def _create_admin(self, admin) -> None:
        from pymongo.errors import OperationFailure

        from jobs.mongo_users import create_admin_command

        with self._client() as client:
            try:
                self._initiate(client)
                self._wait_primary(client)
                client.admin.command(create_admin_command(admin))
            except OperationFailure as exc:
                if exc.code == 13:  # Unauthorized: users exist, the localhost exception is closed
                    raise StackError(
                        f"mongodb: cannot log in as {admin.username} and the mongod already has users: the "
                        "admin's secret (credentials.mongo_password_admin) is not the one the user was made with"
                    ) from None
                raise

    def _initiate(self, client) -> None:
        """Initiate the one-member replica set unless it is (``hello``, which needs no login, names a set)."""
        if "setName" in client.admin.command("hello"):
            return
        member = f"{self.cfg.host}:{self.port}"
        client.admin.command(
            "replSetInitiate",
            {"_id": self.cfg.mongo_replica_set, "members": [{"_id": 0, "host": member}]},
        )

    def _wait_primary(self, client) -> None:
        """Users can be created on the primary only: wait until the member has elected itself."""
        deadline = time.monotonic() + self.primary_timeout_s
        while not client.admin.command("hello").get("isWritablePrimary"):
            if time.monotonic() > deadline:
                raise StackError(
                    f"mongodb: not primary {self.primary_timeout_s:.0f}s after the replica set was initiated"
                )
            time.sleep(0.5)


class KafkaConnect(Service):
    name = "connect"
    port_field = "connect_port"
    other_port_fields = ("connect_metrics_port",)
    needs = "kafka"  # Kafka's ACLs (made once it answers) must exist before the worker's first request

    def client_security(self) -> str:
        """The connect principal's SASL settings, for the worker and with the ``producer.``, ``consumer.``
        and ``admin.`` prefixes (the clients the worker makes for the connectors do not inherit them)."""
        from jobs.kafka_auth import java_client_properties

        config = kafka_pipeline_config(self.cfg)
        properties = java_client_properties(config.kafka, kafka_login(config, "connect"))
        return "\n".join(
            f"{prefix}{name}={value}"
            for prefix in ("", "producer.", "consumer.", "admin.")
            for name, value in properties.items()
        )

    def prepare(self) -> None:
        super().prepare()
        path = self.render(
            "connect-distributed.properties", "connect-distributed.properties", client_security=self.client_security()
        )
        path.chmod(0o600)  # it holds the connect principal's password

    def command(self) -> list[str]:
        return [
            self.java(),
            f"-Xmx{self.cfg.connect_heap}",
            "-Xms256m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            self.marker,
            f"-Dlog4j2.configurationFile={self.cfg.conf_dir / 'log4j2.properties'}",
            self._metrics_agent(),
            # Debezium's MongoDB source and sink reach the stand-in over TLS: its certificate as the default trust
            *jvm_trust_options(kafka_pipeline_config(self.cfg, service="connect")),
            "-cp",
            self.classpath("connect"),
            "org.apache.kafka.connect.cli.ConnectDistributed",
            str(self.dir / "connect-distributed.properties"),
        ]

    def _metrics_agent(self) -> str:
        """Prometheus' JMX exporter as a Java agent: the connector's state and Debezium's metrics at
        ``/metrics`` on ``connect_metrics_port`` (the rules in conf/stack/connect-jmx-exporter.yml)."""
        agent = next((self.cfg.lib_dir / "monitoring").glob("jmx_prometheus_javaagent-*.jar"), None)
        if agent is None:
            where = self.cfg.lib_dir / "monitoring"
            raise StackError(f"connect: no jmx_prometheus_javaagent-*.jar in {where}: run `make jars` first")
        rules = self.cfg.conf_dir / "connect-jmx-exporter.yml"
        return f"-javaagent:{agent}={self.cfg.host}:{self.cfg.connect_metrics_port}:{rules}"

    def healthy(self) -> bool:
        import requests

        try:
            return requests.get(f"{self.cfg.connect_url}/connector-plugins", timeout=5).status_code == 200
        except requests.RequestException:
            return False


class Prometheus(Service):
    """Debian's Prometheus (stack/tools/prometheus.sh unpacks it into .tools), scraping the jobs, the
    collectors and Kafka Connect with conf/prometheus/prometheus.yml and evaluating its alert rules."""

    name = "prometheus"
    port_field = "prometheus_port"
    retention = "7d"  # a local stack's history; the TSDB lives in <state_dir>/prometheus/data

    @property
    def binary(self) -> Path:
        return self.cfg.tools_dir / "bin" / "prometheus"

    @property
    def marker(self) -> str:
        # not a JVM: its TSDB path is unique to this stack
        return f"--storage.tsdb.path={self.dir / 'data'}"

    @property
    def implementation(self) -> str:
        return "prometheus (Debian's package, unpacked into .tools)"

    def scrape_values(self) -> dict[str, str]:
        """What conf/prometheus/prometheus.yml's placeholders take: the stack's ports and the
        pipeline's monitoring ports (conf/pipeline.toml, its AQSTREAM__MONITORING__* overrides)."""
        from jobs.config import ConfigError, load_config

        try:
            monitoring = load_config().monitoring
        except ConfigError as exc:
            raise StackError(f"prometheus: cannot read the jobs' monitoring ports: {exc}") from None
        values = {name: str(value) for name, value in monitoring.model_dump().items()}
        values["collectors_metrics_port"] = str(monitoring.metrics_port_collectors)
        values["rules_file"] = str(PROMETHEUS_CONF_DIR / "rules.yml")
        return values

    def scrape_config(self) -> str:
        """conf/prometheus/prometheus.yml filled in (the file Prometheus is started with)."""
        template = PROMETHEUS_CONF_DIR / "prometheus.yml"
        try:
            return template.read_text().format_map({**self.cfg.template_values(), **self.scrape_values()})
        except (OSError, KeyError, ValueError) as exc:
            raise StackError(f"prometheus: could not fill {template}: {exc!r}") from None

    def prepare(self) -> None:
        super().prepare()
        if not self.binary.exists():
            raise StackError(f"prometheus: {self.binary} is missing: run `make prometheus-tool` first")
        target = self.dir / "prometheus.yml"
        try:
            target.write_text(self.scrape_config())
        except OSError as exc:
            raise StackError(f"prometheus: could not write {target}: {exc}") from None

    def command(self) -> list[str]:
        return [
            str(self.binary),
            f"--config.file={self.dir / 'prometheus.yml'}",
            self.marker,
            f"--storage.tsdb.retention.time={self.retention}",
            f"--web.listen-address={self.cfg.host}:{self.port}",
            f"--web.local-assets={self.cfg.tools_dir / 'prometheus' / 'usr' / 'share' / 'prometheus' / 'web'}",
            "--web.enable-lifecycle",  # POST /-/reload re-reads the rules after an edit
        ]

    def healthy(self) -> bool:
        import requests

        try:
            return requests.get(f"{self.cfg.prometheus_url}/-/ready", timeout=5).status_code == 200
        except requests.RequestException:
            return False


def alive_worker(master_state: dict, host: str, port: int) -> dict | None:
    """The ALIVE worker at ``host:port`` in the master's /json/ answer (a restarted worker leaves its
    old entry behind as DEAD), or None."""
    for worker in master_state.get("workers", []):
        if worker.get("host") == host and worker.get("port") == port and worker.get("state") == "ALIVE":
            return worker
    return None


def scala_version(spark_core_jar: str) -> str:
    """The Scala version of a Spark build from its core jar's name: spark-core_2.12-3.5.7.jar -> 2.12."""
    match = re.fullmatch(r"spark-core_(\d+\.\d+)-.+\.jar", spark_core_jar)
    if match is None:
        raise StackError(f"spark: cannot read the Scala version from {spark_core_jar!r}")
    return match.group(1)


class _SparkDaemon(Service):
    """A Spark standalone daemon from the pyspark wheel's jars, on loopback.

    Launched as a plain JVM like the other services, not through ``sbin/spark-daemon.sh``: that script
    forks into the background, keeps its own pid file and log under SPARK_PID_DIR/SPARK_LOG_DIR and
    rotates logs, which would duplicate (and fight) the stack's pid-file, marker and log handling; and
    the wheel ships no ``start-master.sh``/``start-worker.sh`` that would call it anyway."""

    main_class = ""

    @property
    def spark_home(self) -> Path:
        if self.cfg.spark_home is not None:
            return self.cfg.spark_home
        spec = importlib.util.find_spec("pyspark")
        if spec is None or not spec.submodule_search_locations:
            raise StackError(f"{self.name}: pyspark is not installed here; set spark_home (AQSTREAM_SPARK_HOME)")
        return Path(spec.submodule_search_locations[0])

    def spark_core_jar(self) -> Path:
        jars = self.spark_home / "jars"
        found = next(jars.glob("spark-core_*.jar"), None)
        if found is None:
            raise StackError(f"{self.name}: no Spark jars in {jars}; set spark_home (AQSTREAM_SPARK_HOME)")
        return found

    def environment(self) -> dict[str, str]:
        # SPARK_LOCAL_IP: the web UI binds here too (else every interface). SPARK_HOME: where the worker
        # finds the jars for the executors it launches. SPARK_SCALA_VERSION: the worker's executor command
        # builder asks for it and, unset, looks for a source build's target/ folders, which the wheel has
        # not ("Cannot find any build directories"); spark-class would have set it from load-spark-env.sh.
        return {
            "SPARK_HOME": str(self.spark_home),
            "SPARK_LOCAL_IP": self.cfg.host,
            "SPARK_SCALA_VERSION": scala_version(self.spark_core_jar().name),
        }

    def daemon_args(self) -> list[str]:
        raise NotImplementedError

    def command(self) -> list[str]:
        jars = self.spark_core_jar().parent
        return [
            self.java(),
            f"-Xmx{self.cfg.spark_daemon_heap}",
            "-Djava.awt.headless=true",
            self.marker,
            "-cp",
            f"{jars}/*",
            self.main_class,
            *self.daemon_args(),
        ]

    def master_state(self) -> dict | None:
        """The master's /json/ answer, None when it does not answer."""
        import requests

        try:
            response = requests.get(f"{self.cfg.spark_master_ui_url}/json/", timeout=5)
            return response.json() if response.status_code == 200 else None
        except (requests.RequestException, ValueError):
            return None


class SparkMaster(_SparkDaemon):
    name = "spark-master"
    port_field = "spark_master_port"
    other_port_fields = ("spark_master_ui_port",)
    main_class = "org.apache.spark.deploy.master.Master"

    @property
    def implementation(self) -> str:
        return "spark standalone master (pyspark's jars)"

    def daemon_args(self) -> list[str]:
        return [
            "--host",
            self.cfg.host,
            "--port",
            str(self.cfg.spark_master_port),
            "--webui-port",
            str(self.cfg.spark_master_ui_port),
        ]

    def healthy(self) -> bool:
        state = self.master_state()
        return state is not None and state.get("status") == "ALIVE"


class SparkWorker(_SparkDaemon):
    name = "spark-worker"
    port_field = "spark_worker_port"
    other_port_fields = ("spark_worker_ui_port",)
    main_class = "org.apache.spark.deploy.worker.Worker"
    needs = "spark-master"

    @property
    def implementation(self) -> str:
        return f"spark standalone worker, {self.cfg.spark_worker_cores} cores, {self.cfg.spark_worker_memory}"

    @property
    def work_dir(self) -> Path:
        """Each application's jars, py-files and executor logs (stdout, stderr) land here."""
        return self.dir / "work"

    def prepare(self) -> None:
        super().prepare()
        self.work_dir.mkdir(exist_ok=True)

    def daemon_args(self) -> list[str]:
        return [
            "--host",
            self.cfg.host,
            "--port",
            str(self.cfg.spark_worker_port),
            "--webui-port",
            str(self.cfg.spark_worker_ui_port),
            "--cores",
            str(self.cfg.spark_worker_cores),
            "--memory",
            self.cfg.spark_worker_memory,
            "--work-dir",
            str(self.work_dir),
            self.cfg.spark_master_url,
        ]

    def healthy(self) -> bool:
        """Registered with the master: listed there ALIVE with all its cores."""
        worker = alive_worker(self.master_state() or {}, self.cfg.host, self.cfg.spark_worker_port)
        return worker is not None and worker.get("cores") == self.cfg.spark_worker_cores
