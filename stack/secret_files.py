"""The stack's generated secrets: made once at set-up, kept, never committed.

``python -m stack up`` (and ``python -m stack secrets``) calls :func:`ensure_secrets`: one random secret
per file in ``<state_dir>/secrets/`` (mode 0600, folder 0700; ``.state/`` is git-ignored), named like the
``file:`` defaults of ``[credentials]`` in conf/pipeline.toml. An existing file is never overwritten, so
every run of the stack, the jobs and the tests sees the same secrets. :func:`write_dotenv` puts them in
``.env`` (git-ignored) for docker compose, from the committed ``.env.example``.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path

from jobs.config import CredentialsConfig
from jobs.redact import remember

# 32 random bytes, URL-safe: no quote, space or $ to escape in a JAAS config, a CQL string or .env
SECRET_BYTES = 32


def default_secret_names() -> list[str]:
    """The files ``[credentials]``'s defaults read: kafka_collector, cassandra_admin, …"""
    return sorted(path.name for path in CredentialsConfig().generated_files().values())


def dotenv_name(secret_name: str) -> str:
    """The .env variable of a generated secret: kafka_collector → KAFKA_COLLECTOR_PASSWORD."""
    return f"{secret_name.upper()}_PASSWORD"


def create_once(path: Path, mode: int, content: Callable[[], str]) -> None:
    """Write ``content()`` and a newline to ``path``, created by this call with ``mode`` from the start (O_EXCL),
    or leave an existing file alone: a secret is never overwritten."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as out:
        out.write(content() + "\n")


def ensure_secrets(
    folder: Path,
    names: list[str] | None = None,
    token: Callable[[int], str] = secrets.token_urlsafe,
) -> dict[str, Path]:
    """Each named secret's file in ``folder``, generated if it does not exist yet (never overwritten)."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    files = {}
    for name in names or default_secret_names():
        path = folder / name
        create_once(path, 0o600, lambda: token(SECRET_BYTES))
        remember(path.read_text().strip())
        files[name] = path
    return files


# mongod's keyfile: 756 random bytes in standard base64, 1008 characters (mongod takes 6 to 1024 characters of the
# base64 set, and a file without group or world permissions); as MongoDB's tutorial makes it, `openssl rand -base64 756`
KEYFILE_BYTES = 756


def ensure_keyfile(path: Path, random_bytes: Callable[[int], bytes] = os.urandom) -> Path:
    """The keyfile a real mongod with ``--auth`` and a replica set is started with (``--keyFile``): generated once,
    mode 0400 (only its owner may read it), never overwritten."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    create_once(path, 0o400, lambda: base64.b64encode(random_bytes(KEYFILE_BYTES)).decode())
    remember(path.read_text().strip())
    return path


def remember_generated(folder: Path) -> None:
    """Have :func:`jobs.redact.redact` mask the secrets already generated in ``folder`` (creates nothing)."""
    for path in folder.glob("*") if folder.is_dir() else ():
        if path.is_file():
            remember(path.read_text().strip())


def read_dotenv(path: Path) -> dict[str, str]:
    values = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, sep, value = line.strip().partition("=")
            if sep and not key.startswith("#"):
                values[key.strip()] = value.strip()
    return values


def write_dotenv(example: Path, target: Path, files: Mapping[str, Path]) -> list[str]:
    """``target`` (.env) as ``example`` (.env.example) with each secret variable (empty in the example)
    filled in: the target's own value if it already sets one (yours, or one written before), else the
    generated secret's. The other variables (version pins, ports) are the example's. Returns the
    variables filled from generated secrets now. Written with mode 0600."""
    existing = read_dotenv(target)
    values = {dotenv_name(name): path.read_text().strip() for name, path in files.items()}
    lines, filled = [], []
    for line in example.read_text().splitlines():
        key, sep, value = line.partition("=")
        key = key.strip()
        if sep and not key.startswith("#") and not value.strip():
            if existing.get(key):
                line = f"{key}={existing[key]}"
            elif key in values:
                line = f"{key}={values[key]}"
                filled.append(key)
        lines.append(line)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("\n".join(lines) + "\n")
    target.chmod(0o600)
    return filled
