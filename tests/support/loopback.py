"""A real HTTP server on a free loopback port, in a thread, for unit tests of HTTP clients."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextlib.contextmanager
def loopback_server(handler: Callable[..., BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` on 127.0.0.1 (a free port) until the block ends; yields the base URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


class LoopbackServerObject:
    """Base for a test server that keeps state for its handler: subclasses set ``self.handler`` (a
    handler class that reads their state); ``with`` serves it on loopback and sets ``self.url``."""

    handler: Callable[..., BaseHTTPRequestHandler]
    url = ""

    def __enter__(self):
        self._serving = loopback_server(self.handler)
        self.url = self._serving.__enter__()
        return self

    def __exit__(self, *exc):
        return self._serving.__exit__(*exc)
