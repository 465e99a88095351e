"""Trying an action again: a store that failed for a moment, a Spark context that could not start.

The writes it serves are idempotent by key, so a retry cannot double a row; after the last attempt the
exception propagates (inside ``foreachBatch`` that fails the streaming query loudly, and a restart resumes
from the last committed batch of the checkpoint)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger("aqstream.sinks")
T = TypeVar("T")


def with_retries(
    what: str,
    action: Callable[[], T],
    attempts: int = 4,
    first_delay_s: float = 2.0,
    retry_if: Callable[[Exception], bool] = lambda exc: True,
) -> T:
    """Run ``action``; on a failure ``retry_if`` accepts, wait ``first_delay_s`` (2 s: then 4, 8 s, doubling)
    and try again; after ``attempts`` re-raise. A failure ``retry_if`` refuses is raised at once."""
    delay = first_delay_s
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except Exception as exc:  # the connectors raise Py4J-wrapped JVM exceptions of many types
            if not retry_if(exc):
                raise
            if attempt == attempts:
                log.error("%s failed %d times, giving up: %s", what, attempts, _first_line(exc))
                raise
            log.warning(
                "%s failed (attempt %d/%d), retrying in %.1fs: %s", what, attempt, attempts, delay, _first_line(exc)
            )
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
