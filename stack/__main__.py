"""The local stack of real services, without Docker.

Usage:
    python -m stack up [SERVICE ...]      start (or keep) kafka, mongodb, cassandra, connect; wait until healthy
    python -m stack down [SERVICE ...]    stop them (SIGTERM, then SIGKILL after a timeout)
    python -m stack status                each service: implementation, pid, port, health, memory

Ports, heaps and the state folder come from AQSTREAM_* environment variables (stack/config.py).
"""

from __future__ import annotations

import argparse
import sys

from stack.config import StackConfigError
from stack.core import SERVICE_ORDER, Stack, StackError
from stack.java import JavaNotFound


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stack", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for cmd in ("up", "down"):
        p = sub.add_parser(cmd)
        p.add_argument("services", nargs="*", choices=[[], *SERVICE_ORDER], metavar="SERVICE")
    sub.add_parser("status")
    args = parser.parse_args(argv)

    try:
        stack = Stack()
        if args.command == "up":
            started = stack.up(args.services or None)
            if started:
                print(f"stack up: {', '.join(f'{k} {v:.1f}s' for k, v in started.items())}")
            _print_status(stack)
        elif args.command == "down":
            stack.down(args.services or None)
        else:
            rows = _print_status(stack)
            return 0 if all(r.healthy for r in rows) else 1
    except (StackError, StackConfigError, JavaNotFound) as exc:
        print(f"stack: {exc}", file=sys.stderr)
        return 1
    return 0


def _print_status(stack: Stack):
    rows = stack.status()
    print(f"{'service':<10} {'pid':>7} {'port':>6} {'health':<8} {'RSS MiB':>8}  implementation")
    for r in rows:
        health = "ok" if r.healthy else ("down" if r.pid is None else "starting")
        print(f"{r.name:<10} {r.pid or '-':>7} {r.port:>6} {health:<8} {r.rss_bytes / 2**20:>8.0f}  {r.implementation}")
    total = sum(r.rss_bytes for r in rows)
    print(f"{'total':<10} {'':>7} {'':>6} {'':<8} {total / 2**20:>8.0f}")
    return rows


if __name__ == "__main__":
    sys.exit(main())
