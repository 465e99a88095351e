"""The configured folders (checkpoints, Delta tables, event logs): a local path or a URI.

A folder is given as a plain path (relative: against the repo root) or as a ``file://``, ``s3a://`` or
``hdfs://`` URI, kept as text (a ``Path`` would fold ``s3a://bucket`` into ``s3a:/bucket``). Spark takes
either form as a string; what only a local folder has (mkdir, exists) goes through :func:`local_path`.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

# the Hadoop file systems the jobs' Spark has (file and hdfs built in, s3a with hadoop-aws on the class path)
SCHEMES = ("file", "hdfs", "s3a")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def resolve(value: str, root: Path) -> str:
    """A configured folder, validated: a URI of a supported scheme as given, an absolute local path as
    given, a relative one against ``root``."""
    value = value.strip()
    if not value:
        raise ValueError("is empty: expected a folder path or a file://, s3a:// or hdfs:// URI")
    scheme = _SCHEME.match(value)
    if scheme:
        if scheme.group(1).lower() not in SCHEMES:
            raise ValueError(f"{value!r}: scheme {scheme.group(1)!r} not supported (use one of {', '.join(SCHEMES)})")
        if scheme.group(1).lower() == "file" and urlsplit(value).netloc not in ("", "localhost"):
            raise ValueError(f"{value!r}: a file URI names an absolute local path, file:///folder")
        return value
    path = Path(value)
    return value if path.is_absolute() else str(root / path)


def local_path(path: str | Path) -> Path | None:
    """The local folder a configured path names (``file://`` URIs included), None for a remote one."""
    text = str(path)
    scheme = _SCHEME.match(text)
    if scheme is None:
        return Path(text)
    if scheme.group(1).lower() == "file":
        return Path(unquote(urlsplit(text).path))
    return None


def is_local(path: str | Path) -> bool:
    return local_path(path) is not None


def child(folder: str, name: str) -> str:
    """``folder/name`` for a local path or a URI alike."""
    return f"{folder.rstrip('/')}/{name}"


def path_uri(path: str | Path) -> str:
    """A configured folder as a URI (Spark's event log and history server want one): a local one as
    ``file:``, a URI as is."""
    return str(path) if _SCHEME.match(str(path)) else Path(path).as_uri()


def ensure_local_dir(path: str | Path) -> None:
    """Create a local folder Spark needs to exist (an event log dir: the context fails to start
    without it); remote file systems have no folders to create."""
    local = local_path(path)
    if local is not None:
        local.mkdir(parents=True, exist_ok=True)
