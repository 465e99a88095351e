"""Find a Java 17 runtime: Spark 3.5 and Cassandra 5.0 do not run on newer ones."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

REQUIRED_MAJOR = 17


class JavaNotFound(RuntimeError):
    pass


def java_major(java_home: Path) -> int | None:
    java = java_home / "bin" / "java"
    if not java.is_file():
        return None
    try:
        out = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)', out)
    return int(match.group(1)) if match else None


def find_java17(environ: dict[str, str] | None = None) -> Path:
    """JAVA_HOME of a Java 17: $AQSTREAM_JAVA_HOME, then $JAVA_HOME, then /usr/lib/jvm/*17*."""
    environ = dict(os.environ if environ is None else environ)
    candidates: list[Path] = []
    for var in ("AQSTREAM_JAVA_HOME", "JAVA_HOME"):
        if environ.get(var):
            candidates.append(Path(environ[var]))
    jvm = Path("/usr/lib/jvm")
    if jvm.is_dir():
        candidates += sorted(p for p in jvm.iterdir() if "17" in p.name and p.is_dir())
    seen = []
    for home in candidates:
        major = java_major(home)
        seen.append(f"{home} ({'no java' if major is None else f'Java {major}'})")
        if major == REQUIRED_MAJOR:
            return home.resolve()
    raise JavaNotFound(
        "no Java 17 found; Spark 3.5 and Cassandra 5.0 need exactly Java 17. Install openjdk-17-jdk-headless "
        "or point AQSTREAM_JAVA_HOME at one. Looked at: " + ("; ".join(seen) or "nothing")
    )


if __name__ == "__main__":  # `python3 -m stack.java` prints the JAVA_HOME the Makefile exports
    import sys

    try:
        print(find_java17())
    except JavaNotFound as exc:
        print(exc, file=sys.stderr)
        sys.exit(1)
