"""The local stack of real services, without Docker.

Usage:
    python -m stack up [SERVICE ...]      start (or keep) kafka, mongodb, cassandra, connect, prometheus until healthy
    python -m stack up --spark-cluster    ... and a Spark standalone master and worker (spark-master, spark-worker)
    python -m stack down [SERVICE ...]    stop them, the Spark cluster too (SIGTERM, then SIGKILL after a timeout)
    python -m stack status                each service: implementation, pid, port, health, memory
    python -m stack secrets               generate the stack's secrets (once; `up` does it too) and fill .env
    python -m stack connector register [--file F] [--set key=value ...]   create or update the Debezium connector
    python -m stack connector status [--name N]                            connector and task state
    python -m stack connector delete [--name N]

Ports, heaps and the state folder come from AQSTREAM_* environment variables (stack/config.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from jobs.redact import install_excepthook, redact, redact_mapping
from stack import connector
from stack.config import REPO_ROOT, StackConfigError
from stack.core import DEFAULT_SERVICES, SERVICE_ORDER, SPARK_CLUSTER, Stack, StackError
from stack.java import JavaNotFound
from stack.secret_files import remember_generated, write_dotenv

DOTENV_EXAMPLE = REPO_ROOT / ".env.example"
DOTENV = REPO_ROOT / ".env"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stack", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for cmd in ("up", "down"):
        p = sub.add_parser(cmd)
        p.add_argument("services", nargs="*", choices=[[], *SERVICE_ORDER], metavar="SERVICE")
        if cmd == "up":
            p.add_argument(
                "--spark-cluster", action="store_true", help="also start spark-master and spark-worker (on demand)"
            )
    sub.add_parser("status")
    sub.add_parser("secrets")
    conn = sub.add_parser("connector").add_subparsers(dest="action", required=True)
    reg = conn.add_parser("register")
    reg.add_argument("--file", type=Path, default=connector.DEFAULT_CONNECTOR_FILE)
    reg.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    for action in ("status", "delete"):
        conn.add_parser(action).add_argument("--name", default=None)
    args = parser.parse_args(argv)

    install_excepthook()
    try:
        stack = Stack()
        # whatever this command prints is redacted of the secrets generated so far
        remember_generated(stack.secrets_dir)
        if args.command == "secrets":
            files = stack.ensure_secrets()
            filled = write_dotenv(DOTENV_EXAMPLE, DOTENV, files)
            print(f"secrets in {stack.secrets_dir}: {', '.join(files)}")
            print(f"{DOTENV}: {', '.join(filled) if filled else 'every secret variable already set'}")
        elif args.command == "up":
            started = stack.up(up_services(args.services, args.spark_cluster))
            if started:
                print(f"stack up: {', '.join(f'{k} {v:.1f}s' for k, v in started.items())}")
            _print_status(stack)
        elif args.command == "down":
            stack.down(args.services or None)
        elif args.command == "connector":
            return _connector(stack, args)
        else:
            rows = _print_status(stack, list(SERVICE_ORDER))
            # an on-demand service that is not running is fine; one that runs must answer
            return 0 if all(r.healthy for r in rows if r.name in DEFAULT_SERVICES or r.pid) else 1
    except (StackError, StackConfigError, JavaNotFound, connector.ConnectorError) as exc:
        print(redact(f"stack: {exc}"), file=sys.stderr)
        return 1
    return 0


def up_services(named: list[str], spark_cluster: bool) -> list[str] | None:
    """What `up` starts: the named services, or the default set; --spark-cluster adds the Spark cluster."""
    if not spark_cluster:
        return named or None
    return [*(named or DEFAULT_SERVICES), *SPARK_CLUSTER]


def _connector(stack: Stack, args: argparse.Namespace) -> int:
    url = stack.connect_url
    if args.action == "register":
        overrides = dict(item.split("=", 1) for item in args.set)
        definition = connector.stack_definition(stack.cfg, args.file, overrides)
        print(f"{definition['name']}: {connector.register(url, definition)}")
        state = connector.wait_running(url, definition["name"])
        print(json.dumps(redact_mapping(state), indent=2))
        return 0
    name = args.name or connector.load_connector()["name"]
    if args.action == "status":
        state = connector.status(url, name)
        print(json.dumps(redact_mapping(state), indent=2) if state else f"{name}: not registered")
        return 0 if state else 1
    print(f"{name}: {'deleted' if connector.delete(url, name) else 'not registered'}")
    return 0


def _print_status(stack: Stack, names: list[str] | None = None):
    rows = stack.status(names)
    print(f"{'service':<12} {'pid':>7} {'port':>6} {'health':<8} {'RSS MiB':>8}  implementation")
    for r in rows:
        down = "down" if r.name in DEFAULT_SERVICES else "off"  # off: on demand, not started
        health = "ok" if r.healthy else (down if r.pid is None else "starting")
        line = f"{r.name:<12} {r.pid or '-':>7} {r.port:>6} {health:<8} {r.rss_bytes / 2**20:>8.0f}  {r.implementation}"
        print(redact(line))
    total = sum(r.rss_bytes for r in rows)
    print(f"{'total':<12} {'':>7} {'':>6} {'':<8} {total / 2**20:>8.0f}")
    return rows


if __name__ == "__main__":
    sys.exit(main())
