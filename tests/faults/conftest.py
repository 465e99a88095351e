"""The faults tier: which form runs (short by default, AQSTREAM_FAULTS=long for `make faults`), and its table.

The table (scenario, repetitions, readings in, landed per store, lost, doubled, quarantined, time to
recover) is printed at the end of the run and written to .runs/faults/<form>.json and .md, with the
machine it ran on.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.pipeline import REPO_ROOT

FORM = os.environ.get("AQSTREAM_FAULTS", "short")
if FORM not in ("short", "long"):
    raise pytest.UsageError(f"AQSTREAM_FAULTS={FORM!r}: expected short or long")

ROWS: list[dict] = []


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


# a timeout's SIGTERM runs the fixtures' teardown (the jobs' process groups are killed, connectors deleted)
signal.signal(signal.SIGTERM, _interrupt)
STARTED = time.monotonic()


@pytest.fixture(scope="session")
def fault_table():
    """Scenarios append their table row here (even a failing one, so its numbers are seen)."""
    return ROWS


def machine() -> str:
    meminfo = dict(ln.split(":", 1) for ln in Path("/proc/meminfo").read_text().splitlines() if ":" in ln)
    ram_gib = int(meminfo["MemTotal"].split()[0]) / 1024 / 1024
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), "?")
    return f"{os.cpu_count()} cores ({cpu}), {ram_gib:.0f} GiB RAM, {platform.system()} {platform.release()}"


def markdown(rows: list[dict]) -> str:
    if not rows:
        return ""
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def pytest_terminal_summary(terminalreporter):
    if not ROWS:
        return
    minutes = (time.monotonic() - STARTED) / 60
    header = (
        f"fault-injection suite ({FORM} form), {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {minutes:.1f} min; {machine()}"
    )
    table = markdown(ROWS)
    terminalreporter.write_sep("=", "fault-injection table")
    terminalreporter.write_line(header)
    terminalreporter.write_line(table)
    out = REPO_ROOT / ".runs" / "faults"
    out.mkdir(parents=True, exist_ok=True)
    meta = {"form": FORM, "date": f"{datetime.now(UTC):%Y-%m-%dT%H:%MZ}", "minutes": round(minutes, 1)}
    meta["machine"] = machine()
    (out / f"{FORM}.json").write_text(json.dumps({**meta, "rows": ROWS}, indent=2, default=str))
    (out / f"{FORM}.md").write_text(f"{header}\n\n{table}\n")
    terminalreporter.write_line(f"written to {out / FORM}.json and .md")
