"""Child processes of the stack: start detached, track by pid file, stop gracefully."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path


def pid_alive(pid: int, marker: str) -> bool:
    """True if ``pid`` runs and its command line carries ``marker`` (guards against pid reuse)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.split(") ", 1)[-1].startswith("Z"):  # a zombie is gone for our purposes
        return False
    return marker.encode() in cmdline


def port_taken(host: str, port: int) -> bool:
    """True if something already accepts connections on ``host:port``."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def start_detached(cmd: list[str], cwd: Path, log_file: Path, env: dict[str, str]) -> int:
    """Start ``cmd`` in its own session (it outlives this Python process), output appended to ``log_file``."""
    cwd.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} starting: {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    return proc.pid


def wait_exec(pid: int, marker: str, timeout_s: float = 10.0) -> bool:
    """Wait until the forked child has exec'd the command carrying ``marker`` (or has died)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pid_alive(pid, marker):
            return True
        if not Path(f"/proc/{pid}").exists():
            return False
        time.sleep(0.05)
    return False


def stop_pid(pid: int, marker: str, timeout_s: float) -> str:
    """SIGTERM, wait up to ``timeout_s``, then SIGKILL. Returns how it ended."""
    if not pid_alive(pid, marker):
        return "not running"
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not pid_alive(pid, marker):
            _reap(pid)
            return "stopped"
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    for _ in range(50):
        if not pid_alive(pid, marker):
            break
        time.sleep(0.1)
    _reap(pid)
    return f"killed after {timeout_s:.0f}s"


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"
