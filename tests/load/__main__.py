"""The dashboard's load test: ``python -m tests.load [--url URL] [--clients 50] [--seconds 30] [--out FILE]``.

50 concurrent clients for 30 s on the stations and trend endpoints (tests/load/harness.py), loopback only.
Without ``--url`` it serves ``python -m dashboard`` itself, on a free port, over the configured Cassandra
(``make up`` and the demo's data: ``make loadtest``). Prints the p95 latency and the errors, writes the figures
as JSON (default .runs/loadtest/loadtest.json); exit 1 when any request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path

from jobs.config import REPO_ROOT, load_config_or_report
from tests.load.harness import dashboard_requests, loopback_only, run_load

DEFAULT_OUT = REPO_ROOT / ".runs" / "loadtest" / "loadtest.json"


def load_test(url: str, clients: int, seconds: float, trend_hours: int, out: Path) -> dict:
    """Run the load against ``url``, write and return its figures."""
    result = asyncio.run(run_load(url, dashboard_requests(url, trend_hours), clients, seconds))
    result = {"url": url, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **result}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def report(result: dict) -> str:
    lines = [
        f"{result['clients']} clients for {result['seconds']:g} s: {result['requests']} requests "
        f"({result['requests_per_s']}/s), p95 {result['p95_ms']} ms, errors {result['errors']}"
    ]
    for name, figures in result["endpoints"].items():
        lines.append(
            f"  {name}: {figures['requests']} requests, p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms, "
            f"max {figures['max_ms']} ms, errors {figures['errors']} {figures['error_kinds'] or ''}".rstrip()
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.load", description=__doc__)
    parser.add_argument("--url", help="a running dashboard (loopback); default: serve one for the run")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    config = load_config_or_report()  # AQSTREAM__* variables reach the served dashboard too
    if config is None:
        return 2
    if args.url:
        try:
            loopback_only(args.url)
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
    from tests.support.dashboard import served_dashboard

    served = (
        contextlib.nullcontext(args.url)
        if args.url
        else served_dashboard({}, REPO_ROOT / ".runs" / "loadtest" / "dashboard.log")
    )
    with served as url:
        result = load_test(url.rstrip("/"), args.clients, args.seconds, config.dashboard.trend_hours, args.out)
    print(report(result))
    print(f"written to {args.out}")
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
