"""Asking the stack's real Prometheus through its HTTP API (https://prometheus.io/docs/prometheus/2.42/querying/api/)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests

Sample = tuple[dict[str, str], float]


def query(url: str, promql: str, at: float | None = None) -> list[Sample]:
    """An instant query: each series' labels and value."""
    params: dict[str, Any] = {"query": promql}
    if at is not None:
        params["time"] = at
    body = _get(url, "/api/v1/query", params)
    return [(r["metric"], float(r["value"][1])) for r in body["data"]["result"]]


def query_range(url: str, promql: str, start: float, end: float, step_s: float) -> list[tuple[dict, list[float]]]:
    """A range query: each series' labels and its values at every step."""
    body = _get(url, "/api/v1/query_range", {"query": promql, "start": start, "end": end, "step": step_s})
    return [(r["metric"], [float(v) for _, v in r["values"]]) for r in body["data"]["result"]]


def value(url: str, promql: str) -> float | None:
    """The single value of a query that yields one series (None when it yields none)."""
    samples = query(url, promql)
    assert len(samples) <= 1, f"{promql} gave {len(samples)} series: {samples}"
    return samples[0][1] if samples else None


def wait_until(
    url: str, promql: str, accept: Callable[[float | None], bool], timeout_s: float, what: str
) -> float | None:
    """Poll ``promql`` until ``accept(value)``; fail with the last value and the query when it does not come."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = value(url, promql)
        if accept(last):
            return last
        time.sleep(2.0)
    raise AssertionError(f"{what}: Prometheus gave {last} for `{promql}` after {timeout_s:.0f} s")


def firing_alerts(url: str, name: str) -> list[dict[str, str]]:
    """The labels of each firing alert called ``name`` (Prometheus' own ALERTS series)."""
    return [labels for labels, _ in query(url, f'ALERTS{{alertname="{name}", alertstate="firing"}}')]


def _get(url: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
    response = requests.get(f"{url}{path}", params=params, timeout=10)
    body = response.json()
    assert response.status_code == 200 and body.get("status") == "success", f"{path} {params}: {body}"
    return body
