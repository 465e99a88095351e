"""A loopback server replays recorded OpenAQ responses and injects faults; the client copes or fails clearly."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

import pytest

from collectors import openaq
from collectors.httpclient import HttpClient, HttpError, HttpSettings, parse_retry_after
from jobs.redact import redact_url
from tests.support.loopback import LoopbackServerObject

pytestmark = pytest.mark.unit

SECRET = "sk-test-not-a-real-key-1234"


class FaultServer(LoopbackServerObject):
    """Serves scripted responses per path: each request pops the next step; the last one repeats."""

    def __init__(self):
        self.scripts: dict[str, list[dict]] = {}
        self.hits: dict[str, int] = defaultdict(int)
        self.headers_seen: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def do_GET(self):  # noqa: N802 - http.server's name
                path = urlsplit(self.path).path
                server.headers_seen.append(dict(self.headers))
                steps = server.scripts.get(path) or [{"status": 404, "body": b'{"detail":"no such path"}'}]
                step = steps[min(server.hits[path], len(steps) - 1)]
                server.hits[path] += 1
                if step.get("sleep"):
                    time.sleep(step["sleep"])
                body = step.get("body", b"")
                try:
                    self.send_response(step.get("status", 200))
                    for key, value in step.get("headers", {}).items():
                        self.send_header(key, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.handler = Handler


@pytest.fixture
def server():
    with FaultServer() as fault_server:
        yield fault_server


@pytest.fixture
def recorded(data_dir):
    def body(name: str) -> bytes:
        return (data_dir / "openaq" / name).read_bytes()

    return body


def _client(sleeps, **overrides):
    settings = HttpSettings(
        **{"read_timeout_s": 0.5, "connect_timeout_s": 0.5, "max_retries": 3, "backoff_base_s": 0.01, **overrides}
    )
    return HttpClient(
        settings, headers={"X-API-Key": SECRET}, hints=openaq.HINTS, sleep=lambda s: sleeps.append(s) or time.sleep(s)
    )


def test_429_honours_retry_after_then_succeeds(server, recorded):
    server.scripts["/v3/locations/1"] = [
        {"status": 429, "headers": {"Retry-After": "1"}, "body": b'{"detail":"slow down"}'},
        {"body": recorded("openaqr_v3_locations_1.json")},
    ]
    sleeps = []
    body = _client(sleeps).get_json(f"{server.url}/v3/locations/1")
    assert body["results"][0]["name"] == "testing site 1"
    assert sleeps == [1.0] and server.hits["/v3/locations/1"] == 2


def test_500s_back_off_exponentially_with_jitter(server, recorded):
    server.scripts["/v3/locations/1"] = [
        {"status": 500},
        {"status": 503},
        {"body": recorded("openaqr_v3_locations_1.json")},
    ]
    sleeps = []
    _client(sleeps, backoff_base_s=0.05).get_json(f"{server.url}/v3/locations/1")
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.05 and 0 <= sleeps[1] <= 0.10  # full jitter under base·2^attempt


def test_a_timeout_is_retried(server, recorded):
    server.scripts["/v3/locations/1"] = [
        {"sleep": 1.5, "body": recorded("openaqr_v3_locations_1.json")},
        {"body": recorded("openaqr_v3_locations_1.json")},
    ]
    sleeps = []
    started = time.monotonic()
    body = _client(sleeps, read_timeout_s=0.3).get_json(f"{server.url}/v3/locations/1")
    assert body["meta"]["found"] == 1 and len(sleeps) == 1
    assert time.monotonic() - started < 5


def test_truncated_json_is_retried_then_fails_clearly(server, recorded):
    whole = recorded("openaqr_v3_locations_1.json")
    server.scripts["/v3/locations/1"] = [{"body": whole[: len(whole) // 2]}, {"body": whole}]
    sleeps = []
    assert _client(sleeps).get_json(f"{server.url}/v3/locations/1")["results"][0]["id"] == 1
    server.scripts["/v3/locations/2"] = [{"body": whole[:100]}]
    with pytest.raises(HttpError, match=r"failed after 4 attempts: .*not complete JSON"):
        _client([]).get_json(f"{server.url}/v3/locations/2")
    assert server.hits["/v3/locations/2"] == 4


def test_401_fails_at_once_and_never_shows_the_key(server):
    server.scripts["/v3/locations"] = [{"status": 401, "body": b'{"detail":"Invalid credentials"}'}]
    sleeps = []
    with pytest.raises(HttpError) as failure:
        _client(sleeps).get_json(f"{server.url}/v3/locations", {"iso": "KE"})
    message = str(failure.value)
    assert server.hits["/v3/locations"] == 1 and sleeps == []
    assert "HTTP 401" in message and openaq.API_KEY_ENV in message
    assert SECRET not in message and failure.value.status == 401
    assert server.headers_seen[0]["X-API-Key"] == SECRET  # it was sent, just never shown


def test_422_names_what_to_change(server):
    server.scripts["/v3/locations"] = [{"status": 422, "body": b'{"detail":"bbox: invalid"}'}]
    with pytest.raises(HttpError, match=r"HTTP 422 \(bbox: invalid\): .*--bbox"):
        _client([]).get_json(f"{server.url}/v3/locations", {"bbox": "x"})


def test_retries_exhausted_on_5xx(server):
    server.scripts["/v3/locations/1"] = [{"status": 502}]
    with pytest.raises(HttpError, match=r"failed after 3 attempts: HTTP 502"):
        _client([], max_retries=2).get_json(f"{server.url}/v3/locations/1")


def test_spent_quota_waits_for_the_reset(server, recorded):
    server.scripts["/v3/locations/1"] = [
        {
            "headers": {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "0.2"},
            "body": recorded("openaqr_v3_locations_1.json"),
        }
    ]
    sleeps = []
    client = _client(sleeps)
    client.get_json(f"{server.url}/v3/locations/1")
    client.get_json(f"{server.url}/v3/locations/1")
    assert sleeps == [0.2]


def test_openaq_collector_over_the_fault_server(server, recorded, monkeypatch):
    """The whole OpenAQ fetch (locations, latest) through a 429 and a 500 gives the exact reading."""
    monkeypatch.setattr(openaq, "API_URL", f"{server.url}/v3")
    server.scripts["/v3/locations/1"] = [
        {"status": 429, "headers": {"Retry-After": "0"}},
        {"body": recorded("openaqr_v3_locations_1.json")},
    ]
    server.scripts["/v3/locations/1/latest"] = [
        {"status": 500},
        {"body": recorded("openaqr_v3_locations_1_latest.json")},
    ]
    [reading], dropped = openaq.fetch(_client([]), country=None, bbox=None, location_ids=[1])
    assert dropped == {}
    assert reading["event_id"] == "openaq:openaq-1:20250709T013000Z" and reading["pm25"] == 8.15


def test_pagination_follows_found(server, recorded, monkeypatch):
    page = json.loads(recorded("stevetran77_v3_locations_vietnam.json"))  # found 53, 53 results
    monkeypatch.setattr(openaq, "PAGE_LIMIT", 20)
    first, second, third = page["results"][:20], page["results"][20:40], page["results"][40:]
    server.scripts["/v3/locations"] = [
        {"body": json.dumps({"meta": {**page["meta"], "page": n}, "results": part}).encode()}
        for n, part in enumerate((first, second, third), start=1)
    ]
    locations = openaq.paginate(_client([]), f"{server.url}/v3/locations", {"iso": "VN"})
    assert [loc["id"] for loc in locations] == [loc["id"] for loc in page["results"]]
    assert server.hits["/v3/locations"] == 3


def test_retry_after_http_date():
    now = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Mon, 23 Nov 2026 12:00:30 GMT", now=lambda: now) == 30.0
    assert parse_retry_after("7") == 7.0 and parse_retry_after("soon") is None


def test_secret_query_parameters_are_redacted():
    assert redact_url("https://x/v3?iso=KE&api_key=abc") == "https://x/v3?iso=KE&api_key=***"
