"""docker-compose.yml, checked by Docker Compose itself (`config`), without a Docker engine.

Compose reads the committed .env.example (the pins) plus a value for each secret variable, written by the
test (the real .env is git-ignored and generated: `python -m stack secrets`).

The compose binary comes from ``stack/tools/compose.sh install`` (built from its Go module into
.tools/bin), or ``$AQSTREAM_COMPOSE``, or an installed ``docker compose``. Without one the tests fail,
in every mode: ``make test-unit`` installs the tool before the tests.
"""

from __future__ import annotations

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
    assert len(names) >= 8, names  # 4 Kafka principals, 2 Cassandra roles, 2 MongoDB users
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
    assert "rs0" in config["services"]["mongodb"]["command"]
