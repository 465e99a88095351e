"""docker-compose.yml, checked by Docker Compose itself (`config`), without a Docker engine.

Compose reads the committed .env.example (the pins) plus a value for each secret variable, written by the
test (the real .env is git-ignored and generated: `python -m stack secrets`).

The compose binary comes from ``stack/tools/compose.sh install`` (built from its Go module into
.tools/bin), or ``$AQSTREAM_COMPOSE``, or an installed ``docker compose``. Without one the tests fail,
in every mode: ``make test-unit`` installs the tool before the tests.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
DOCKERFILES = (REPO_ROOT / "Dockerfile.spark", REPO_ROOT / "Dockerfile.connect")
PROFILES = ("live",)  # every optional service is checked too

CREDENTIAL_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|CREDENTIAL|PRIVATE_KEY|ACCESS_KEY", re.I)
URI_WITH_USERINFO = re.compile(r"[a-z][a-z0-9+.-]*://[^/@\s:]+:[^/@\s]+@", re.I)
GOOD_CONDITIONS = {"service_healthy", "service_completed_successfully"}


def compose_command() -> list[str] | None:
    """The compose CLI to run: $AQSTREAM_COMPOSE, the one stack/tools/compose.sh built, or docker's."""
    if os.environ.get("AQSTREAM_COMPOSE"):
        return shlex.split(os.environ["AQSTREAM_COMPOSE"])
    built = REPO_ROOT / ".tools" / "bin" / "docker-compose"
    if built.is_file() and os.access(built, os.X_OK):
        return [str(built)]
    for candidate in (["docker", "compose"], ["docker-compose"]):
        if not shutil.which(candidate[0]):
            continue
        probe = subprocess.run([*candidate, "version", "--short"], capture_output=True, text=True)
        # Compose v1 (the Python docker-compose 1.x) does not read this file's schema the same way
        if probe.returncode == 0 and not probe.stdout.strip().startswith("1."):
            return candidate
    return None


@pytest.fixture(scope="module")
def compose() -> list[str]:
    command = compose_command()
    if command is None:
        pytest.fail(
            "no Docker Compose v2+: run `stack/tools/compose.sh install` (or set AQSTREAM_COMPOSE)", pytrace=False
        )
    return command


@pytest.fixture(scope="module")
def env_file(tmp_path_factory) -> Path:
    """.env.example with a stand-in value for each secret variable: what `python -m stack secrets` writes."""
    lines = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        key, sep, value = line.partition("=")
        lines.append(f"{key}=test-{key.lower()}" if sep and not value.strip() and not key.startswith("#") else line)
    path = tmp_path_factory.mktemp("compose") / ".env"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_compose(
    compose: list[str], env_file: Path | None, *args: str, environ: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Compose on our file with only ``env_file`` for variables: nothing from the caller's shell leaks in."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    if "DOCKER_CONFIG" in os.environ:  # where the docker CLI finds its compose plugin
        env["DOCKER_CONFIG"] = os.environ["DOCKER_CONFIG"]
    profiles = [arg for p in PROFILES for arg in ("--profile", p)]
    env.update(environ or {})
    # --env-file: the test's file, or /dev/null for none (so a developer's own .env never counts)
    files = ["--env-file", str(env_file or os.devnull)]
    command = [*compose, "--project-directory", str(REPO_ROOT), *files, "-f", str(COMPOSE_FILE), *profiles, *args]
    return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)


@cache
def dotenv() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env.example: not KEY=VALUE: {line!r}"
            values[key.strip()] = value.strip()
    return values


@pytest.fixture(scope="module")
def config(compose, env_file) -> dict[str, Any]:
    """The resolved model, as `docker compose config --format json` prints it."""
    result = run_compose(compose, env_file, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def raw_config(compose, env_file) -> dict[str, Any]:
    """The model with ${VARIABLES} left as written."""
    result = run_compose(compose, env_file, "config", "--no-interpolate", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def one_shot_services(config: dict[str, Any]) -> set[str]:
    """Services something waits on to *complete*: the setup steps."""
    return {
        name
        for service in config["services"].values()
        for name, dep in (service.get("depends_on") or {}).items()
        if dep.get("condition") == "service_completed_successfully"
    }


def test_compose_config_passes_without_warnings(compose, env_file):
    result = run_compose(compose, env_file, "config", "--quiet")
    assert result.returncode == 0, result.stderr
    # an unset variable or an obsolete key is only a warning to compose: not to us
    assert "WARN" not in result.stderr and "level=warning" not in result.stderr, result.stderr


def test_every_image_is_pinned_in_dotenv(config, raw_config):
    env = dotenv()
    for name, service in raw_config["services"].items():
        image = service.get("image")
        assert image, f"{name}: no image"
        match = re.fullmatch(r"(?P<repo>[a-z0-9./_-]+):\$\{(?P<var>[A-Z0-9_]+)\}", image)
        assert match, f"{name}: image {image!r} is not <name>:${{VARIABLE}} with the tag from .env"
        assert match["var"] in env, f"{name}: {match['var']} is not set in .env"
        resolved = config["services"][name]["image"]
        tag = resolved.rsplit(":", 1)[1]
        assert tag and tag != "latest", f"{name}: image {resolved!r}"
        assert tag == env[match["var"]]
        for arg, value in ((service.get("build") or {}).get("args") or {}).items():
            assert value == f"${{{arg}}}" and arg in env, f"{name}: build arg {arg}={value!r} is not from .env"


def test_dockerfiles_pin_their_bases_like_dotenv():
    env = dotenv()
    for dockerfile in DOCKERFILES:
        text = dockerfile.read_text()
        defaults = dict(re.findall(r"^ARG ([A-Z0-9_]+)=(\S+)$", text, re.M))
        for arg, value in defaults.items():
            assert env.get(arg) == value, f"{dockerfile.name}: ARG {arg}={value} but .env says {env.get(arg)}"
        for base in re.findall(r"^FROM (\S+)", text, re.M):
            assert re.fullmatch(r"[a-z0-9./_-]+:\$\{[A-Z0-9_]+\}", base), f"{dockerfile.name}: FROM {base}"
            assert base.split("${")[1].rstrip("}") in defaults, f"{dockerfile.name}: FROM {base} has no ARG default"
        assert "latest" not in text.lower()


def test_dotenv_versions_match_the_project_pins():
    env = dotenv()
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    props = ET.parse(REPO_ROOT / "jars" / "pom.xml").getroot().find("m:properties", ns)
    pom = {child.tag.split("}")[1]: child.text for child in props}
    assert env["KAFKA_VERSION"] == pom["kafka.version"]
    assert env["DEBEZIUM_VERSION"] == pom["debezium.version"]
    assert env["CASSANDRA_VERSION"] == pom["cassandra.version"]
    assert env["SPARK_IMAGE_TAG"] == f"{pom['spark.version']}-scala{pom['scala.binary']}-java17-python3-ubuntu"
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert env["AQSTREAM_VERSION"] == project["version"]
    assert f"pyspark=={pom['spark.version']}" in project["dependencies"]


def test_long_running_services_have_healthchecks_and_one_shots_do_not_restart(config):
    one_shots = one_shot_services(config)
    assert {"setup", "connector-init"} <= one_shots
    for name, service in config["services"].items():
        if name in one_shots:
            assert service.get("restart", "no") == "no", f"{name} is a one-shot step"
            continue
        check = service.get("healthcheck") or {}
        assert check.get("test") and check["test"][0] != "NONE" and not check.get("disable"), f"{name}: no healthcheck"


def test_every_dependency_waits_for_health_or_completion(config):
    for name, service in config["services"].items():
        for dep, spec in (service.get("depends_on") or {}).items():
            assert spec.get("condition") in GOOD_CONDITIONS, f"{name} -> {dep}: {spec.get('condition')}"
            if spec["condition"] == "service_healthy":
                assert config["services"][dep].get("healthcheck"), f"{name} waits on {dep}, which has no healthcheck"


def _strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def secret_variables() -> list[str]:
    """The credential variables .env.example names (each without a value)."""
    return [key for key in dotenv() if CREDENTIAL_NAME.search(key)]


def test_dotenv_example_names_secrets_without_values():
    names = secret_variables()
    assert len(names) >= 10, names  # 5 Kafka principals, 3 Cassandra roles, 2 MongoDB users
    for key, value in dotenv().items():
        if CREDENTIAL_NAME.search(key):
            assert value == "", f".env.example: {key} has a value"
        assert not URI_WITH_USERINFO.search(value), f".env.example: {key}"


def test_every_secret_comes_from_dotenv_with_no_default(raw_config):
    """Each credential in a container's environment is exactly ${VAR:?...} of a variable .env.example names,
    and each AQSTREAM__CREDENTIALS__ setting is a reference (env:VAR) to one of them, never a value."""
    seen = set()
    for name, service in raw_config["services"].items():
        assert not service.get("env_file"), f"{name}: env_file (keep configuration visible in the compose file)"
        for key, value in (service.get("environment") or {}).items():
            if key.startswith("AQSTREAM__CREDENTIALS__"):
                assert re.fullmatch(r"env:[A-Z0-9_]+", value), f"{name}: {key}={value!r} is not env:VARIABLE"
                assert value.removeprefix("env:") in service["environment"], f"{name}: {key} names an unset variable"
            elif CREDENTIAL_NAME.search(key):
                no_default = rf"\$\{{{key}:\?[^}}]+\}}"
                assert re.fullmatch(no_default, value), f"{name}: {key}={value!r} is not ${{{key}:?...}}"
                assert key in secret_variables(), f"{name}: {key} is not in .env.example"
                seen.add(key)
        for text in _strings(service):
            assert not URI_WITH_USERINFO.search(text), f"{name}: a URI with a user and password: {text!r}"
    assert seen == set(secret_variables()), "every secret .env.example names is used, and only those"
    # and in the file's own text: no ${SECRET:-default} or ${SECRET-default} anywhere
    for variable, operator in re.findall(r"\$\{([A-Za-z0-9_]+)(:?[-?+]?)", COMPOSE_FILE.read_text()):
        if CREDENTIAL_NAME.search(variable):
            assert operator == ":?", f"docker-compose.yml: ${{{variable}{operator}...}} (a secret must have no default)"
    for path in (COMPOSE_FILE, *DOCKERFILES):
        assert not URI_WITH_USERINFO.search(path.read_text()), path.name


def test_compose_refuses_to_run_without_the_secrets(compose, tmp_path):
    """.env.example as it is (no secret values): compose stops and names the variable to set."""
    bare = tmp_path / ".env"
    bare.write_text(ENV_EXAMPLE.read_text())
    result = run_compose(compose, bare, "config", "--quiet")
    assert result.returncode != 0
    assert re.search(r"set [A-Z_]+_PASSWORD in \.env", result.stderr), result.stderr


def test_host_ports_are_loopback_only(config):
    for name, service in config["services"].items():
        for port in service.get("ports") or []:
            assert port.get("host_ip") == "127.0.0.1", f"{name}: port {port} is published on every interface"


def test_collector_mounts_the_recorded_data_read_only(config):
    data_dir = (REPO_ROOT / dotenv()["AQSTREAM_DATA_DIR"]).resolve()
    for name in ("collector",):
        binds = [v for v in config["services"][name]["volumes"] if v["type"] == "bind"]
        assert [(Path(v["source"]).resolve(), v["target"], v.get("read_only")) for v in binds] == [
            (data_dir, "/data/shared", True)
        ]


def test_project_containers_config_is_valid_pipeline_config(config):
    """The AQSTREAM__ overrides of each container name real fields and point at compose services."""
    from jobs.config import load_config

    for name in ("setup", "raw-to-mongo", "cdc-to-cassandra", "collector"):
        environment = config["services"][name]["environment"]
        pipeline = load_config(environ=environment)
        assert pipeline.kafka.bootstrap_servers == "kafka:9092"
        assert pipeline.mongo.uri.startswith("mongodb://mongodb:27017/")
        assert pipeline.cassandra.host == "cassandra"
        assert str(pipeline.paths.checkpoint_root).startswith("/var/lib/aqstream/")
    for name in ("raw-to-mongo", "cdc-to-cassandra"):
        service = config["services"][name]
        assert service["environment"]["AQSTREAM_SPARK_MASTER"] == "spark://spark-master:7077"
        assert service["environment"]["SPARK_LOCAL_HOSTNAME"] == service["hostname"] == name


def test_connector_init_registers_the_committed_connector_against_the_mongodb_service(config):
    committed = json.loads((REPO_ROOT / "conf" / "debezium" / "mongodb-readings.json").read_text())["config"]
    command = config["services"]["connector-init"]["command"]
    overrides = dict(arg.split("=", 1) for arg in command[command.index("--set") + 1 :: 2])
    assert set(overrides) <= set(committed), "override only keys the committed connector has"
    assert overrides["mongodb.connection.string"] == "mongodb://mongodb:27017/?replicaSet=rs0"
    replica_set = re.search(r"_id: '(\w+)'", " ".join(config["services"]["mongodb"]["healthcheck"]["test"]))
    assert replica_set and replica_set[1] == "rs0"
    assert "--replSet rs0" in MONGO_START.read_text()


# --- Kafka: SASL/SCRAM and ACLs, as on the local stack's broker (docs/security.md) ---

# the services whose pipeline config is a Kafka client, and the principal each logs in as
KAFKA_CLIENTS = {
    "setup": "admin",
    "raw-to-mongo": "raw_to_mongo",
    "cdc-to-cassandra": "cdc_to_cassandra",
    "collector": "collector",
    "collector-openmeteo": "collector",
}
# the image's own variables, which its KafkaDockerWrapper does not make server settings
IMAGE_VARIABLES = {
    "KAFKA_VERSION", "KAFKA_HEAP_OPTS", "KAFKA_LOG4J_OPTS", "KAFKA_OPTS", "KAFKA_JMX_OPTS",
    "KAFKA_JVM_PERFORMANCE_OPTS", "KAFKA_GC_LOG_OPTS", "KAFKA_LOG4J_ROOT_LOGLEVEL", "KAFKA_LOG4J_LOGGERS",
    "KAFKA_TOOLS_LOG4J_LOGLEVEL", "KAFKA_JMX_HOSTNAME",
}  # fmt: skip
KAFKA_START = REPO_ROOT / "conf" / "compose" / "kafka-start.sh"
MONGO_START = REPO_ROOT / "conf" / "compose" / "mongo-start.sh"
CONNECT_START = REPO_ROOT / "conf" / "compose" / "connect-start.sh"


def env_file_values(env_file: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line and line[0] != "#")


def pipeline_defaults():
    """conf/pipeline.toml with no override: what the suite's clients do unless a container says otherwise."""
    from jobs.config import load_config

    return load_config(environ={})


def kafka_user(who: str) -> str:
    from jobs.config import CredentialsConfig

    return getattr(CredentialsConfig(), f"kafka_user_{who}")


def image_server_properties(environment: dict[str, str]) -> dict[str, str]:
    """server.properties as the apache/kafka image writes it from a container's environment (its
    KafkaDockerWrapper: KAFKA_SASL_ENABLED_MECHANISMS → sasl.enabled.mechanisms; '__' → '_', '___' → '-')."""
    return {
        key.removeprefix("KAFKA_").lower().replace("_", ".").replace("...", "-").replace("..", "_"): value
        for key, value in environment.items()
        if key.startswith("KAFKA_") and key not in IMAGE_VARIABLES
    }


def listeners(value: str) -> dict[str, tuple[str, int]]:
    """``NAME://host:port,…`` → {NAME: (host, port)}."""
    found = {}
    for item in value.split(","):
        name, address = item.split("://")
        host, port = address.rsplit(":", 1)
        found[name] = (host, int(port))
    return found


def read_properties(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_no_container_turns_kafka_authentication_off(config):
    pipeline = pipeline_defaults()
    assert pipeline.kafka.security_protocol == "SASL_PLAINTEXT"
    for name, service in config["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if key.endswith("SECURITY_PROTOCOL"):
                assert value == "SASL_PLAINTEXT", f"{name}: {key}={value}"
    from jobs.config import load_config

    for name in KAFKA_CLIENTS:
        kafka = load_config(environ=config["services"][name]["environment"]).kafka
        assert (kafka.security_protocol, kafka.sasl_mechanism) == ("SASL_PLAINTEXT", pipeline.kafka.sasl_mechanism)


def test_every_kafka_client_logs_in_as_its_own_principal(config, env_file):
    """Each client container resolves its principal's password from its own environment (the .env value),
    and holds no other principal's."""
    from jobs.config import load_config

    services = config["services"].items()
    clients = {name for name, s in services if "AQSTREAM__KAFKA__BOOTSTRAP_SERVERS" in s.get("environment", {})}
    assert clients == set(KAFKA_CLIENTS), "a new Kafka client service: say which principal it is"
    dotenv_values = env_file_values(env_file)
    for name, who in KAFKA_CLIENTS.items():
        environment = config["services"][name]["environment"]
        login = load_config(environ=environment).credentials.login("kafka", who, environ=environment)
        variable = f"KAFKA_{who.upper()}_PASSWORD"
        assert (login.username, login.password.get_secret_value()) == (kafka_user(who), dotenv_values[variable])
        kafka_secrets = {k for k in environment if k.startswith("KAFKA_") and CREDENTIAL_NAME.search(k)}
        assert kafka_secrets == {variable}, f"{name} holds {sorted(kafka_secrets)}"


def test_the_broker_takes_only_scram_logins_and_authorizes_by_acl(config):
    broker = config["services"]["kafka"]
    settings = image_server_properties(broker["environment"])
    mechanism = pipeline_defaults().kafka.sasl_mechanism
    protocols = dict(pair.split(":") for pair in settings["listener.security.protocol.map"].split(","))
    controller = settings["controller.listener.names"]
    bound = listeners(settings["listeners"])
    # every listener a client can reach authenticates; the controller's (whose ANONYMOUS is a super user)
    # is unreachable from outside the container
    for name in [*bound, *listeners(settings["advertised.listeners"])]:
        if name != controller:
            assert protocols[name] == "SASL_PLAINTEXT", f"listener {name}: {protocols[name]}"
    assert bound[controller][0] == "127.0.0.1"
    voters = [voter.split("@")[1] for voter in settings["controller.quorum.voters"].split(",")]
    assert all(voter.startswith("127.0.0.1:") for voter in voters), voters
    assert protocols[settings["inter.broker.listener.name"]] == "SASL_PLAINTEXT"
    assert settings["sasl.enabled.mechanisms"] == settings["sasl.mechanism.inter.broker.protocol"] == mechanism
    assert settings["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert settings["allow.everyone.if.no.acl.found"] == "false"
    assert set(settings["super.users"].split(";")) == {f"User:{kafka_user('admin')}", "User:ANONYMOUS"}
    # the start script's principals: every one of the suite's, each with its .env variable
    from jobs.config import KAFKA_PRINCIPALS

    scram_users = dict(entry.split("=") for entry in broker["environment"]["AQSTREAM_SCRAM_USERS"].split())
    assert scram_users == {kafka_user(who): f"KAFKA_{who.upper()}_PASSWORD" for who in KAFKA_PRINCIPALS}
    assert broker["environment"]["AQSTREAM_KAFKA_ADMIN"] == kafka_user("admin")
    assert broker["command"] == ["bash", "/opt/aqstream/compose/kafka-start.sh"]
    mounts = [(Path(v["source"]), v["target"], v.get("read_only")) for v in broker["volumes"] if v["type"] == "bind"]
    assert mounts == [(KAFKA_START.parent, "/opt/aqstream/compose", True)]
    # the healthcheck logs in as the admin, with the client properties the start script writes
    assert "--command-config /etc/kafka/secrets/admin-client.properties" in broker["healthcheck"]["test"][1]


@pytest.fixture
def fake_kafka_image(tmp_path) -> Path:
    """The apache/kafka image's paths the start script uses: a kafka-storage.sh that records its arguments and
    configuration and formats (writes meta.properties in log.dirs), and a run that records its environment."""
    home = tmp_path / "kafka"
    (home / "bin").mkdir(parents=True)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "data").mkdir()
    storage = home / "bin" / "kafka-storage.sh"
    storage.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$@" > {tmp_path}/format-args\n'
        'while [ $# -gt 0 ]; do [ "$1" = --config ] && cp "$2" ' + f"{tmp_path}/format.properties; shift; done\n"
        f"echo cluster.id=x > {tmp_path}/data/meta.properties\n"
    )
    run = home / "run"
    run.write_text(f"#!/bin/sh\nenv > {tmp_path}/run-env\n")
    for script in (storage, run):
        script.chmod(0o755)
    return tmp_path


def start_broker(config, root: Path) -> subprocess.CompletedProcess[str]:
    environment = {
        **config["services"]["kafka"]["environment"],
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "KAFKA_LOG_DIRS": str(root / "data"),
        "AQSTREAM_KAFKA_HOME": str(root / "kafka"),
        "AQSTREAM_KAFKA_SECRETS": str(root / "secrets"),
        "AQSTREAM_KAFKA_RUN": str(root / "kafka" / "run"),
    }
    return subprocess.run(["bash", str(KAFKA_START)], env=environment, capture_output=True, text=True, timeout=30)


def test_the_broker_start_formats_the_storage_with_every_principals_scram_credentials(
    config, env_file, fake_kafka_image
):
    from jobs.config import KAFKA_PRINCIPALS, Login
    from jobs.kafka_auth import jaas_config, java_client_properties

    root, passwords = fake_kafka_image, env_file_values(env_file)
    broker = config["services"]["kafka"]["environment"]
    mechanism = pipeline_defaults().kafka.sasl_mechanism
    started = start_broker(config, root)
    assert started.returncode == 0, started.stderr
    arguments = (root / "format-args").read_text().splitlines()
    assert arguments[:3] == ["format", "--cluster-id", broker["CLUSTER_ID"]]
    scram = {arguments[i + 1] for i, arg in enumerate(arguments) if arg == "--add-scram"}
    assert scram == {
        f"{mechanism}=[name={kafka_user(who)},password={passwords[f'KAFKA_{who.upper()}_PASSWORD']}]"
        for who in KAFKA_PRINCIPALS
    }
    # formatted with the very settings the image renders for the broker, on the data volume
    formatted = read_properties(root / "format.properties")
    rendered = image_server_properties({**broker, "KAFKA_LOG_DIRS": str(root / "data")})
    assert formatted == {key: rendered[key] for key in formatted}
    assert formatted["log.dirs"] == str(root / "data") and formatted["node.id"] == broker["KAFKA_NODE_ID"]

    # the broker's login and the healthcheck's: the admin's, as jobs/kafka_auth.py writes a SCRAM login
    admin = Login(username=kafka_user("admin"), password=passwords["KAFKA_ADMIN_PASSWORD"])
    jaas = root / "secrets" / "kafka_server_jaas.conf"
    assert jaas.read_text() == f"KafkaServer {{\n  {jaas_config(admin)}\n}};\n"
    client = root / "secrets" / "admin-client.properties"
    assert read_properties(client) == java_client_properties(pipeline_defaults().kafka, admin)
    assert all(path.stat().st_mode & 0o077 == 0 for path in (jaas, client))

    # the image's start gets the JAAS file and no password: it would make each KAFKA_ variable a setting
    handed_over = dict(line.split("=", 1) for line in (root / "run-env").read_text().splitlines() if "=" in line)
    assert f"-Djava.security.auth.login.config={jaas}" in handed_over["KAFKA_OPTS"].split()
    secrets = {value for key, value in passwords.items() if CREDENTIAL_NAME.search(key)}
    leaked = {key for key, value in handed_over.items() if value in secrets}
    assert not leaked, f"the image's start still has {sorted(leaked)}"

    # a restart: the storage is formatted, nothing is formatted again
    (root / "format-args").unlink()
    (root / "run-env").unlink()
    assert start_broker(config, root).returncode == 0
    assert not (root / "format-args").exists() and (root / "run-env").exists()


def test_the_broker_refuses_a_storage_formatted_without_scram_credentials(config, fake_kafka_image):
    root = fake_kafka_image
    (root / "data" / "meta.properties").write_text("cluster.id=x\n")  # e.g. the PLAINTEXT broker's volume
    started = start_broker(config, root)
    assert started.returncode != 0
    assert "kafka-data" in started.stderr and "docker volume rm" in started.stderr
    from jobs.config import KAFKA_PRINCIPALS

    assert all(kafka_user(who) in started.stderr for who in KAFKA_PRINCIPALS)
    assert not (root / "run-env").exists() and not (root / "format-args").exists()


def test_connect_logs_in_as_connect_for_itself_and_its_connectors(config, env_file, tmp_path):
    from jobs.config import Login
    from jobs.kafka_auth import java_client_properties

    connect = config["services"]["connect"]
    assert connect["depends_on"]["setup"]["condition"] == "service_completed_successfully", "its ACLs first"
    worker = tmp_path / "worker"
    worker.write_text(f'#!/bin/sh\nenv > {tmp_path}/worker-env\necho "$1" > {tmp_path}/worker-args\n')
    worker.chmod(0o755)
    properties = tmp_path / "connect.properties"
    environment = {
        **connect["environment"],
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AQSTREAM_CONNECT_PROPERTIES": str(properties),
        "AQSTREAM_CONNECT_COMMAND": str(worker),
    }
    started = subprocess.run(["bash", str(CONNECT_START)], env=environment, capture_output=True, text=True)
    assert started.returncode == 0, started.stderr
    assert (tmp_path / "worker-args").read_text().strip() == str(properties)
    written = read_properties(properties)
    login = Login(username=kafka_user("connect"), password=env_file_values(env_file)["KAFKA_CONNECT_PASSWORD"])
    security = java_client_properties(pipeline_defaults().kafka, login)
    assert len(security) == 3
    for prefix in ("", "producer.", "consumer.", "admin."):
        assert {key: written.get(prefix + key) for key in security} == security, f"{prefix or 'worker'} settings"
    assert (written["bootstrap.servers"], written["rest.advertised.host.name"]) == ("kafka:9092", "connect")
    assert properties.stat().st_mode & 0o077 == 0
    assert "KAFKA_CONNECT_PASSWORD" not in (tmp_path / "worker-env").read_text()
    # the compose worker has every setting of the local stack's (conf/stack/connect-distributed.properties)
    stack = REPO_ROOT / "conf" / "stack" / "connect-distributed.properties"
    stack_keys = {line.split("=", 1)[0] for line in stack.read_text().splitlines() if "=" in line and line[0] != "#"}
    assert stack_keys <= set(written)


# --- MongoDB: --auth with a keyfile, an admin, a user per component, like the stack's real mongod ---

# the services that reach MongoDB, and the users each logs in as
MONGO_CLIENTS = {"setup": "admin", "raw-to-mongo": "raw_to_mongo", "connector-init": "debezium"}


def start_mongod(config, root: Path, **overrides: str) -> subprocess.CompletedProcess[str]:
    """conf/compose/mongo-start.sh with the mongodb service's environment, handing over to a stand-in for the
    image's entrypoint that records its arguments, its environment and the keyfile's mode."""
    entrypoint = root / "entrypoint"
    entrypoint.write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$@" > {root}/args\nenv > {root}/env\n'
        f'stat -c %a "$(tail -1 {root}/args)" > {root}/keyfile-mode\n'
    )
    entrypoint.chmod(0o755)
    environment = {
        **config["services"]["mongodb"]["environment"],
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AQSTREAM_MONGO_KEYFILE": str(root / "keyfile"),
        "AQSTREAM_MONGO_ENTRYPOINT": str(entrypoint),
        **overrides,
    }
    return subprocess.run(["bash", str(MONGO_START)], env=environment, capture_output=True, text=True, timeout=30)


def test_the_mongod_starts_as_a_replica_set_with_a_kept_keyfile_and_the_admin_for_the_image(config, env_file, tmp_path):
    from jobs.config import CredentialsConfig

    mongodb = config["services"]["mongodb"]
    assert mongodb["command"] == ["bash", "/opt/aqstream/compose/mongo-start.sh"]
    mounts = [(Path(v["source"]).resolve(), v["target"], v.get("read_only")) for v in mongodb["volumes"]]
    assert (MONGO_START.parent, "/opt/aqstream/compose", True) in mounts
    started = start_mongod(config, tmp_path)
    assert started.returncode == 0, started.stderr
    keyfile = tmp_path / "keyfile"
    args = (tmp_path / "args").read_text().splitlines()
    assert args == ["mongod", "--replSet", "rs0", "--bind_ip_all", "--keyFile", str(keyfile)]
    # mongod: 6 to 1024 base64 characters, no group or world permission (it refuses the file otherwise)
    key = keyfile.read_text()
    assert len(key) == 1008 and len(base64.b64decode(key, validate=True)) == 756
    assert (tmp_path / "keyfile-mode").read_text().strip() == "400"
    # the image creates the admin ([credentials] mongo_user_admin) with the .env password, and adds --auth
    handed_over = dict(line.split("=", 1) for line in (tmp_path / "env").read_text().splitlines() if "=" in line)
    assert handed_over["MONGO_INITDB_ROOT_USERNAME"] == CredentialsConfig().mongo_user_admin
    assert handed_over["MONGO_INITDB_ROOT_PASSWORD"] == env_file_values(env_file)["MONGO_ADMIN_PASSWORD"]
    # a restart keeps the keyfile
    assert start_mongod(config, tmp_path).returncode == 0 and keyfile.read_text() == key


def test_the_mongod_will_not_start_without_its_admin(config, tmp_path):
    started = start_mongod(config, tmp_path, MONGO_ADMIN_PASSWORD="")
    assert started.returncode != 0 and "MONGO_ADMIN_PASSWORD is not set" in started.stderr
    assert not (tmp_path / "args").exists()


def test_the_healthcheck_logs_in_as_the_admin_with_no_password_on_its_command_line(config):
    mongodb = config["services"]["mongodb"]
    check = " ".join(mongodb["healthcheck"]["test"])
    assert "auth(process.env.MONGO_INITDB_ROOT_USERNAME, process.env.MONGO_ADMIN_PASSWORD)" in check
    assert mongodb["environment"]["MONGO_ADMIN_PASSWORD"] not in check


def test_every_mongo_client_logs_in_as_its_own_user_without_tls(config, env_file, monkeypatch):
    """Each container that reaches MongoDB has authentication on (and TLS off: the mongod serves none), resolves
    its own user's password from its environment (the .env value), and holds no other MongoDB password."""
    from jobs.config import load_config
    from stack.config import StackConfig
    from stack.connector import stack_definition

    services = config["services"]
    pointed = {name for name, s in services.items() if "AQSTREAM__MONGO__URI" in s.get("environment", {})}
    for name in pointed:  # every container's pipeline config, whether it reaches MongoDB or not
        mongo = load_config(environ=services[name]["environment"]).mongo
        assert (mongo.authentication, mongo.tls) == (True, False), name
    clients = {
        name
        for name, s in services.items()
        if any(k.startswith("AQSTREAM__CREDENTIALS__MONGO_") for k in s.get("environment", {}))
    }
    assert clients == set(MONGO_CLIENTS) <= pointed, "a new MongoDB client service: say which user it is"
    passwords = env_file_values(env_file)
    for name, who in MONGO_CLIENTS.items():
        environment = services[name]["environment"]
        pipeline = load_config(environ=environment)
        login = pipeline.credentials.login("mongo", who, environ=environment)
        variable = f"MONGO_{who.upper()}_PASSWORD"
        assert (login.username, login.password.get_secret_value()) == (
            getattr(pipeline.credentials, f"mongo_user_{who}"),
            passwords[variable],
        )
        held = {k for k in environment if k.startswith("MONGO_") and CREDENTIAL_NAME.search(k)}
        expected = {"MONGO_ADMIN_PASSWORD", "MONGO_RAW_TO_MONGO_PASSWORD", "MONGO_DEBEZIUM_PASSWORD"}
        assert held == (expected if name == "setup" else {variable}), f"{name} holds {sorted(held)}"
    # the connector as connector-init registers it: Debezium's login, and no TLS
    environment = services["connector-init"]["environment"]
    for key in [k for k in os.environ if k.startswith("AQSTREAM")]:
        monkeypatch.delenv(key)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    command = services["connector-init"]["command"]
    overrides = dict(arg.split("=", 1) for arg in command[command.index("--set") + 1 :: 2])
    registered = stack_definition(StackConfig.from_env(), overrides=overrides)["config"]
    assert registered["mongodb.connection.string"] == "mongodb://mongodb:27017/?replicaSet=rs0"
    assert (registered["mongodb.user"], registered["mongodb.password"]) == (
        load_config(environ=environment).credentials.mongo_user_debezium,
        passwords["MONGO_DEBEZIUM_PASSWORD"],
    )
