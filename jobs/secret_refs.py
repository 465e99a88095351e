"""Where a secret comes from: a reference in the config (``env:NAME`` or ``file:PATH``), never the secret.

The config holds references, so printing or logging it shows where each secret lives, not what it is.
:meth:`SecretRef.read` reads the secret when a component needs it, returns it as a pydantic ``SecretStr``
(its repr and str are ``**********``) and has :mod:`jobs.redact` mask it in everything printed from then on.
A secret that cannot be read fails with the config field's name and the variable or path.

Not named ``secrets.py``: spark-submit runs a job as a script, with ``jobs/`` first on ``sys.path``, where that
name would shadow the standard library's ``secrets`` (numpy imports ``randbits`` from it; pandas then fails).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import SecretStr

from jobs.redact import remember

SOURCES = ("env", "file")


class SecretError(ValueError):
    """A secret reference that is malformed or cannot be read; the message names the field."""


@dataclass(frozen=True)
class SecretRef:
    """``env:NAME`` (an environment variable) or ``file:PATH`` (a file's content, trailing newline dropped;
    a relative PATH is relative to the credentials' ``secrets_dir``)."""

    field: str  # the config's dotted name, for errors: credentials.kafka_password_collector
    source: Literal["env", "file"]
    location: str  # the variable's name, or the file's path

    @classmethod
    def parse(cls, field: str, text: str, base_dir: Path) -> SecretRef:
        source, sep, location = text.partition(":")
        location = location.strip()
        if not sep or source not in SOURCES or not location:
            # the message must not repeat the text: a literal secret put here by mistake stays unprinted
            raise SecretError(
                f"{field}: expected 'env:VARIABLE' or 'file:PATH' (a reference to the secret, never the secret)"
            )
        if source == "file":
            location = str((base_dir / location).resolve())
        return cls(field, source, location)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return f"{self.source}:{self.location}"

    def read(self, environ: Mapping[str, str] | None = None) -> SecretStr:
        if self.source == "env":
            environ = os.environ if environ is None else environ
            value = environ.get(self.location, "").strip()
            if not value:
                raise SecretError(f"{self.field}: environment variable {self.location} is not set (or empty)")
        else:
            try:
                value = Path(self.location).read_text().strip()
            except OSError as exc:
                reason = exc.strerror or type(exc).__name__
                raise SecretError(f"{self.field}: cannot read secret file {self.location}: {reason}") from None
            if not value:
                raise SecretError(f"{self.field}: secret file {self.location} is empty")
        remember(value)
        return SecretStr(value)
