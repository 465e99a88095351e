"""A bounded load on the dashboard's API from this machine: ``clients`` concurrent clients (asyncio + httpx),
each sending its next request as soon as the last one answered, for ``seconds``; latency per request, and
every answer other than a 200 (or no answer) counted as an error.

Only loopback addresses are accepted (:func:`loopback_only`): the load never leaves the machine.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx


def loopback_only(url: str) -> str:
    """``url`` when its host is a loopback address (127.0.0.0/8, ::1, localhost), else ValueError."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return url
    try:
        if ipaddress.ip_address(host).is_loopback:
            return url
    except ValueError:
        pass
    raise ValueError(f"{url}: the load test only targets loopback addresses (127.0.0.1, ::1, localhost)")


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank ``q`` percentile (0 < q <= 100): the smallest value with at least q % of them at or
    below it. None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass
class Outcome:
    """What one endpoint answered during the run."""

    latencies_s: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)  # "HTTP 500", "ReadTimeout", ...

    def summary(self) -> dict[str, Any]:
        ms = [s * 1000 for s in self.latencies_s]
        return {
            "requests": len(self.latencies_s),
            "errors": sum(self.errors.values()),
            "error_kinds": dict(self.errors),
            "p50_ms": _round(percentile(ms, 50)),
            "p95_ms": _round(percentile(ms, 95)),
            "p99_ms": _round(percentile(ms, 99)),
            "max_ms": _round(max(ms) if ms else None),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def summary(outcomes: Mapping[str, Outcome], clients: int, seconds: float, elapsed_s: float) -> dict[str, Any]:
    """The run's figures: per endpoint, and over every request."""
    everything = Outcome()
    for outcome in outcomes.values():
        everything.latencies_s += outcome.latencies_s
        for kind, n in outcome.errors.items():
            everything.errors[kind] = everything.errors.get(kind, 0) + n
    total = everything.summary()
    return {
        "clients": clients,
        "seconds": seconds,
        "elapsed_s": round(elapsed_s, 1),
        "requests_per_s": round(total["requests"] / elapsed_s, 1) if elapsed_s else None,
        **total,
        "endpoints": {name: outcome.summary() for name, outcome in outcomes.items()},
    }


def trend_path(station_id: str, latest_hour_iso: str, hours: int) -> str:
    """The 1 h aggregates request the page sends for a station's trend (its ``hours`` hours to the latest)."""
    end = _parse(latest_hour_iso) + timedelta(hours=1)
    start = end - timedelta(hours=hours)
    query = urlencode({"window": "1h", "start": _iso(start), "end": _iso(end)})
    return f"/api/stations/{station_id}/aggregates?{query}"


def _parse(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def run_load(
    base_url: str, requests: Mapping[str, Sequence[str]], clients: int, seconds: float, timeout_s: float = 30.0
) -> dict[str, Any]:
    """``clients`` clients for ``seconds``: client ``i`` cycles through the endpoints (``requests``: endpoint
    name → the paths to ask, in turn), starting at its own offset so every endpoint is asked all along."""
    loopback_only(base_url)
    names = list(requests)
    outcomes = {name: Outcome() for name in names}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout_s) as client:
        started = time.perf_counter()
        deadline = started + seconds

        async def one_client(i: int) -> None:
            n = i
            while time.perf_counter() < deadline:
                name = names[n % len(names)]
                paths = requests[name]
                path = paths[(n // len(names)) % len(paths)]
                n += 1
                sent = time.perf_counter()
                try:
                    response = await client.get(path)
                    error = None if response.status_code == 200 else f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    error = type(exc).__name__
                outcome = outcomes[name]
                outcome.latencies_s.append(time.perf_counter() - sent)
                if error is not None:
                    outcome.errors[error] = outcome.errors.get(error, 0) + 1

        await asyncio.gather(*(one_client(i) for i in range(clients)))
        elapsed = time.perf_counter() - started
    return summary(outcomes, clients, seconds, elapsed)


def dashboard_requests(base_url: str, trend_hours: int) -> dict[str, list[str]]:
    """What the page asks most: the stations, and each station's trend (stations with an hour only)."""
    stations = httpx.get(f"{loopback_only(base_url)}/api/stations", timeout=30).raise_for_status().json()["stations"]
    trends = [
        trend_path(s["station_id"], s["latest_hour"]["window_start"], trend_hours) for s in stations if s["latest_hour"]
    ]
    if not trends:
        raise ValueError(f"{base_url}/api/stations lists no station with hourly aggregates: nothing to trend")
    return {"stations": ["/api/stations"], "trend": trends}
