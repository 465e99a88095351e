"""One HTTP session with timeouts, bounded retries and clear failures.

Retried (exponential backoff with full jitter, capped): timeouts, connection errors, 5xx, 429 and
a 200 whose JSON body is truncated. A 429's ``Retry-After`` (seconds or HTTP date) is honoured,
and when the rate-limit headers say the quota is spent (``x-ratelimit-remaining: 0``) the client
waits ``x-ratelimit-reset`` seconds before the next call. Any other 4xx fails at once: retrying
cannot fix a bad key or a bad parameter, so the error says what to change. Header values (the
API key) never appear in a message; URLs are redacted (jobs/redact.py: secret query parameters, known values).
Given a :class:`~collectors.metrics.CollectorMetrics`, the client counts every attempt, every failed
one by kind (the status code, ``timeout``, ``connection``, ``invalid_json``), every retry, and the
seconds it waited by cause.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import random
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import requests
from pydantic import BaseModel, ConfigDict, Field

from collectors.metrics import CollectorMetrics
from jobs.redact import redact, redact_url

log = logging.getLogger("collectors.http")


class HttpSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    connect_timeout_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=5, ge=0)
    backoff_base_s: float = Field(default=1.0, ge=0)  # tests set it to milliseconds
    backoff_max_s: float = Field(default=60.0, ge=0)
    max_wait_s: float = Field(default=300.0, ge=0)  # cap on a server-requested wait (Retry-After, reset)
    user_agent: str = "aqstream-collectors/0.1"


class HttpError(RuntimeError):
    """A request that failed for good; the message says why and, for a 4xx, what to change."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class _Retryable(Exception):
    def __init__(self, reason: str, kind: str, wait_s: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.kind = kind  # the metrics' label: the status code, timeout, connection, invalid_json
        self.wait_s = wait_s


def parse_retry_after(value: str | None, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - now()).total_seconds())


class HttpClient:
    """``get_json`` with the retry policy above. ``hints`` maps a status to the advice in its error."""

    def __init__(
        self,
        settings: HttpSettings,
        *,
        headers: Mapping[str, str] | None = None,
        hints: Mapping[int, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        metrics: CollectorMetrics | None = None,
    ):
        self.settings = settings
        self.session = requests.Session()
        self.session.headers["User-Agent"] = settings.user_agent
        self.session.headers.update(headers or {})
        self.hints = dict(hints or {})
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.requests_made = 0
        self.metrics = metrics
        self._quota_wait_s = 0.0

    def close(self) -> None:
        self.session.close()

    def backoff_s(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max, base·2^attempt)] (attempt counts from 0)."""
        ceiling = min(self.settings.backoff_max_s, self.settings.backoff_base_s * (2**attempt))
        return self.rng.uniform(0, ceiling)

    def get_json(self, url: str, params: Mapping[str, Any] | None = None) -> Any:
        where = redact_url(requests.Request("GET", url, params=params).prepare().url or url)
        last_reason = ""
        for attempt in range(self.settings.max_retries + 1):
            if self._quota_wait_s:
                wait, self._quota_wait_s = self._quota_wait_s, 0.0
                log.info("rate-limit quota spent: waiting %.1fs", wait)
                self._count_wait("quota", wait)
                self.sleep(wait)
            try:
                return self._once(url, params, where)
            except HttpError as refused:
                if self.metrics is not None:
                    self.metrics.http_failed(str(refused.status), retried=False)
                raise
            except _Retryable as retry:
                last_reason = retry.reason
                retried = attempt < self.settings.max_retries
                if self.metrics is not None:
                    self.metrics.http_failed(retry.kind, retried=retried)
                if not retried:
                    break
                wait = retry.wait_s if retry.wait_s is not None else self.backoff_s(attempt)
                self._count_wait("backoff" if retry.wait_s is None else "retry_after", wait)
                log.warning(
                    "GET %s: %s; retry %d/%d in %.2fs",
                    where,
                    retry.reason,
                    attempt + 1,
                    self.settings.max_retries,
                    wait,
                )
                self.sleep(wait)
        raise HttpError(f"GET {where} failed after {self.settings.max_retries + 1} attempts: {last_reason}")

    def _count_wait(self, cause: str, seconds: float) -> None:
        if self.metrics is not None:
            self.metrics.http_waited(cause, seconds)

    def _once(self, url: str, params: Mapping[str, Any] | None, where: str) -> Any:
        self.requests_made += 1
        if self.metrics is not None:
            self.metrics.http_request()
        try:
            response = self.session.get(
                url, params=params, timeout=(self.settings.connect_timeout_s, self.settings.read_timeout_s)
            )
        except requests.Timeout as exc:
            raise _Retryable(f"timed out ({type(exc).__name__})", "timeout") from None
        except requests.ConnectionError as exc:
            raise _Retryable(f"connection failed ({type(exc).__name__})", "connection") from None
        self._note_quota(response)
        status = response.status_code
        if status == 429:
            wait = parse_retry_after(response.headers.get("Retry-After"))
            raise _Retryable(
                "HTTP 429 Too Many Requests", "429", None if wait is None else min(wait, self.settings.max_wait_s)
            )
        if status >= 500:
            raise _Retryable(f"HTTP {status}", str(status))
        if status >= 400:
            hint = self.hints.get(status) or _DEFAULT_HINTS.get(status, "check the request parameters")
            detail = redact(_short_detail(response))  # a server may echo what it was sent
            raise HttpError(f"GET {where} was refused with HTTP {status}{detail}: {hint}", status=status)
        try:
            return response.json()
        except ValueError:
            raise _Retryable(
                f"HTTP {status} with a body that is not complete JSON ({len(response.content)} bytes)", "invalid_json"
            ) from None

    def _note_quota(self, response: requests.Response) -> None:
        remaining = response.headers.get("x-ratelimit-remaining")
        reset = response.headers.get("x-ratelimit-reset")
        if remaining is not None and remaining.strip() == "0" and reset:
            with contextlib.suppress(ValueError):  # an unreadable reset header: no wait
                self._quota_wait_s = min(max(0.0, float(reset)), self.settings.max_wait_s)


_DEFAULT_HINTS = {
    400: "a request parameter is invalid; check the command-line options",
    401: "the API key is missing or invalid",
    403: "the API key is not allowed to read this resource",
    404: "the resource does not exist; check the ids",
    422: "a request parameter is invalid; check the command-line options",
}


def _short_detail(response: requests.Response) -> str:
    """The server's own error text (first 200 chars), which often names the bad parameter."""
    try:
        body = response.json()
        text = body.get("detail") or body.get("message") or body.get("reason") if isinstance(body, dict) else None
    except ValueError:
        text = response.text
    text = str(text or "").strip().replace("\n", " ")
    return f" ({text[:200]})" if text else ""
