"""The Java stand-in's TLS material, made once by the JDK's keytool in ``<secrets_dir>/tls`` (docs/security.md).

- ``mongo-server.p12``: the server's RSA key and self-signed certificate (CN=localhost, the stack's host and
  ``localhost`` as subject alternative names, so a client checking the host name accepts it), in a PKCS12
  store whose password is the generated secret ``<secrets_dir>/mongo_tls_keystore`` (the stand-in reads it
  from that file, never from its command line);
- what clients trust, the certificate alone: ``mongo-cert.pem`` for pymongo (``mongo.tls_ca_file``) and
  ``mongo-truststore.jks`` for a JVM's default trust store (``mongo.tls_truststore``).

Self-signed rather than a CA and a leaf: one server, trusted directly, is all a local stack has. Nothing is
ever overwritten: a deleted store is made again with a new key, and the clients read the new files.
"""

from __future__ import annotations

import ipaddress
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from jobs.redact import remember
from stack.secret_files import SECRET_BYTES, create_once

KEYSTORE_PASSWORD_SECRET = "mongo_tls_keystore"
# the JKS trust store holds only the public certificate: its password guards its integrity, not a secret,
# and a JVM reads a JKS trust store without one
TRUSTSTORE_PASSWORD = "aqstream-truststore"
ALIAS = "aqstream-mongo"
VALIDITY_DAYS = 3650


@dataclass(frozen=True)
class MongoTls:
    keystore: Path
    keystore_password_file: Path
    cert: Path
    truststore: Path

    @classmethod
    def in_folder(cls, secrets_dir: Path) -> MongoTls:
        folder = secrets_dir / "tls"
        return cls(
            keystore=folder / "mongo-server.p12",
            keystore_password_file=secrets_dir / KEYSTORE_PASSWORD_SECRET,
            cert=folder / "mongo-cert.pem",
            truststore=folder / "mongo-truststore.jks",
        )


def subject_alternative_names(host: str) -> str:
    """keytool's ``SAN=`` value: ``localhost`` and the host the stack binds, as an IP or a DNS name."""
    names = ["dns:localhost"]
    try:
        names.append(f"ip:{ipaddress.ip_address(host)}")
    except ValueError:
        if host != "localhost":
            names.append(f"dns:{host}")
    return ",".join(names)


def keytool_commands(keytool: Path, tls: MongoTls, host: str) -> list[list[str]]:
    """The three keytool runs: the key pair, the certificate out as PEM, the certificate into a JKS store."""
    store = ["-keystore", str(tls.keystore), "-storetype", "PKCS12", "-storepass:file", str(tls.keystore_password_file)]
    return [
        [
            str(keytool),
            "-genkeypair",
            "-alias",
            ALIAS,
            "-keyalg",
            "RSA",
            "-keysize",
            "2048",
            "-validity",
            str(VALIDITY_DAYS),
            "-dname",
            "CN=localhost",
            "-ext",
            f"SAN={subject_alternative_names(host)}",
            *store,
        ],  # fmt: skip
        [str(keytool), "-exportcert", "-rfc", "-alias", ALIAS, *store, "-file", str(tls.cert)],
        [
            str(keytool),
            "-importcert",
            "-noprompt",
            "-alias",
            ALIAS,
            "-file",
            str(tls.cert),
            "-keystore",
            str(tls.truststore),
            "-storetype",
            "JKS",
            "-storepass",
            TRUSTSTORE_PASSWORD,
        ],  # fmt: skip
    ]


def ensure_mongo_tls(secrets_dir: Path, keytool: Path, host: str) -> MongoTls:
    """The stand-in's key store and its clients' trust files, made if the key store does not exist yet.
    Raises RuntimeError naming keytool's step and showing its own message."""
    tls = MongoTls.in_folder(secrets_dir)
    secrets_dir.mkdir(parents=True, exist_ok=True)
    create_once(tls.keystore_password_file, 0o600, lambda: secrets.token_urlsafe(SECRET_BYTES))
    remember(tls.keystore_password_file.read_text().strip())  # redacted wherever the suite prints
    if tls.keystore.exists() and tls.cert.exists() and tls.truststore.exists():
        return tls
    tls.keystore.parent.mkdir(mode=0o700, exist_ok=True)
    for path in (tls.keystore, tls.cert, tls.truststore):
        path.unlink(missing_ok=True)  # a partial set from an interrupted run: made again together
    for command in keytool_commands(keytool, tls, host):
        done = subprocess.run(command, capture_output=True, text=True, errors="replace", timeout=120)
        if done.returncode != 0:
            output = (done.stderr + done.stdout).strip()
            raise RuntimeError(f"keytool {command[1]} failed (exit {done.returncode}): {output}")
    tls.keystore.chmod(0o600)
    return tls
