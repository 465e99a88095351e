"""Register, inspect and delete the Debezium MongoDB connector through the Kafka Connect REST API."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import requests

from jobs.redact import redact
from stack.config import REPO_ROOT, StackConfig

DEFAULT_CONNECTOR_FILE = REPO_ROOT / "conf" / "debezium" / "mongodb-readings.json"


class ConnectorError(RuntimeError):
    pass


def load_connector(
    path: Path = DEFAULT_CONNECTOR_FILE,
    overrides: dict[str, str] | None = None,
    login: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The committed connector definition, with Debezium's MongoDB ``login`` (:func:`mongo_login`) and then
    ``overrides`` applied to its config."""
    definition = json.loads(path.read_text())
    config = {**definition["config"], **(login or {}), **(overrides or {})}
    return {"name": config.pop("name", definition["name"]), "config": config}


def stack_definition(
    stack_cfg: StackConfig, path: Path = DEFAULT_CONNECTOR_FILE, overrides: dict[str, str] | None = None
) -> dict[str, Any]:
    """The definition as this stack registers it: Debezium's login (:func:`mongo_login`), and ``tls=true`` in
    its connection string where the stack's MongoDB speaks TLS (Kafka Connect's JVM trusts its certificate)."""
    from jobs.mongo_auth import with_tls
    from stack.core import Stack

    definition = load_connector(path, overrides, mongo_login(stack_cfg))
    config = definition["config"]
    config["mongodb.connection.string"] = with_tls(config["mongodb.connection.string"], Stack(stack_cfg).mongo_tls)
    return definition


def mongo_login(stack_cfg: StackConfig) -> dict[str, str]:
    """Debezium's MongoDB user and password for the connector's config, from the pipeline config and this stack's
    secrets: nothing unless ``mongo.authentication`` is on (jobs/mongo_auth.py)."""
    from jobs.config import ConfigError
    from jobs.mongo_auth import debezium_connector_login
    from stack.services import kafka_pipeline_config

    try:
        return debezium_connector_login(kafka_pipeline_config(stack_cfg, service="connector"))
    except ConfigError as exc:
        raise ConnectorError(f"connector: {exc}") from None


def register(connect_url: str, definition: dict[str, Any], timeout_s: float = 30.0) -> str:
    """Create or update (PUT is idempotent); returns 'created' or 'updated'."""
    name = definition["name"]
    response = requests.put(f"{connect_url}/connectors/{name}/config", json=definition["config"], timeout=timeout_s)
    if response.status_code not in (200, 201):
        raise ConnectorError(redact(f"registering {name} failed: HTTP {response.status_code} {response.text[:2000]}"))
    return "created" if response.status_code == 201 else "updated"


def status(connect_url: str, name: str) -> dict[str, Any] | None:
    response = requests.get(f"{connect_url}/connectors/{name}/status", timeout=10)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.json()


def wait_running(connect_url: str, name: str, timeout_s: float = 120.0) -> dict[str, Any]:
    """Wait until the connector and its task are RUNNING; a FAILED task raises with its trace."""
    deadline = time.monotonic() + timeout_s
    last: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        last = status(connect_url, name)
        if last:
            tasks = last.get("tasks", [])
            failed = [t for t in tasks if t.get("state") == "FAILED"]
            if failed or last["connector"].get("state") == "FAILED":
                trace = (failed[0] if failed else last["connector"]).get("trace", "")
                raise ConnectorError(redact(f"connector {name} FAILED: {trace[:3000]}"))
            if last["connector"].get("state") == "RUNNING" and tasks and all(t["state"] == "RUNNING" for t in tasks):
                return last
        time.sleep(1.0)
    raise ConnectorError(redact(f"connector {name} not RUNNING after {timeout_s:.0f}s: {last}"))


def delete(connect_url: str, name: str) -> bool:
    response = requests.delete(f"{connect_url}/connectors/{name}", timeout=30)
    if response.status_code == 404:
        return False
    if response.status_code not in (200, 204):
        raise ConnectorError(redact(f"deleting {name} failed: HTTP {response.status_code} {response.text[:500]}"))
    return True
