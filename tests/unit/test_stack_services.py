"""The stack's preparation steps: Kafka's cluster id, and how a failed preparation is reported."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

from stack.core import JAR_SETS
from stack.services import kafka_random_uuid

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_kafka_cluster_ids_are_url_safe_base64_of_16_bytes_and_never_begin_with_a_dash():
    # about one uuid4 in 64 encodes to a leading '-'; 20,000 draws would meet ~300 of them
    ids = [kafka_random_uuid() for _ in range(20_000)]
    assert not [i for i in ids if i.startswith("-")]
    for cluster_id in ids:
        assert len(cluster_id) == 22
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16
        assert set(cluster_id) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert any("-" in i for i in ids)  # the alphabet still has '-', only not first
    assert len(set(ids)) == len(ids)


def _fake_java_home(root: Path) -> Path:
    """A JAVA_HOME whose java says it is Java 17 and fails every other command like StorageTool did."""
    java = root / "java17" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-version" ]; then echo \'openjdk version "17.0.9"\' >&2; exit 0; fi\n'
        "echo 'argument --cluster-id/-t: expected one argument' >&2\n"
        "exit 1\n"
    )
    java.chmod(0o755)
    return java.parent.parent


def test_a_failed_preparation_names_the_service_and_shows_the_command_output(tmp_path):
    lib = tmp_path / "lib"
    for jar_set in JAR_SETS:
        (lib / jar_set).mkdir(parents=True)
        (lib / jar_set / "placeholder.jar").touch()
    env = {
        **os.environ,
        "AQSTREAM_JAVA_HOME": str(_fake_java_home(tmp_path)),
        "AQSTREAM_STATE_DIR": str(tmp_path / "state"),
        "AQSTREAM_LIB_DIR": str(lib),
        "PYTHONPATH": str(REPO_ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-m", "stack", "up", "kafka"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("stack: kafka: storage format failed (exit 1)")
    assert "argument --cluster-id/-t: expected one argument" in done.stderr
    assert not (tmp_path / "state" / "kafka" / "pid").exists()
