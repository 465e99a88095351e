"""After the demo's flow (both jobs, Debezium, the collectors, the report), no secret the stack generated
is in anything the suite wrote: the demo's output, `.runs` (job logs, Spark event logs, checkpoints,
screenshots) and the stack's state folder (every service's log and data). The only files allowed to hold
one are the secrets themselves and the two configs a service reads its own login from, private to
their owner (docs/security.md)."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

from tests.support.pipeline import REPO_ROOT

pytestmark = pytest.mark.e2e

# the rendered service configs that must hold a login: the broker's own (admin), Connect's (connect)
LOGIN_CONFIGS = {"server.properties", "connect-distributed.properties"}


def files_holding(values: list[str], folders: list[Path]) -> list[Path]:
    """Every file under ``folders`` that contains one of ``values`` (GNU grep, fixed strings, binary files too)."""
    existing = [str(f) for f in folders if f.exists()]
    done = subprocess.run(
        ["grep", "-rlaF", *[arg for v in values for arg in ("-e", v)], *existing],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr  # 1: nothing found
    return [Path(line) for line in done.stdout.splitlines()]


def test_no_generated_secret_is_in_the_output_logs_or_data_of_a_run(stack, demo):
    secrets_dir = stack.secrets_dir
    # the files beside the secrets (tls/: the MongoDB stand-in's key store and certificates) hold none
    values = [path.read_text().strip() for path in secrets_dir.iterdir() if path.is_file()]
    assert len(values) >= 8, f"the stack generated its secrets in {secrets_dir}"
    for value in values:
        assert value not in demo.stdout and value not in demo.stderr, "a secret in the demo's output"
    found = files_holding(values, [REPO_ROOT / ".runs", stack.cfg.state_dir])
    unexpected = [
        f
        for f in found
        if f.parent != secrets_dir and not (f.name in LOGIN_CONFIGS and stat.S_IMODE(f.stat().st_mode) == 0o600)
    ]
    assert unexpected == [], f"files holding a generated secret: {unexpected}"
    # the check can see one: the secrets folder itself is found
    assert any(f.parent == secrets_dir for f in found)
