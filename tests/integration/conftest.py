"""The local stack for integration tests: started once per test run, shared, stopped if we started it.

A stack that is already up and healthy (``make up``) is reused and left running. When ``CI`` is
set, a service that cannot be started fails the tests; it never skips them.
"""

from __future__ import annotations

import os

import pytest

from stack.config import StackConfigError
from stack.core import Stack, StackError
from stack.java import JavaNotFound


def pytest_collection_modifyitems(config, items):
    """Tests that restart the whole stack run last, so they do not pull it from under the others."""
    items.sort(key=lambda item: item.get_closest_marker("restarts_stack") is not None)


@pytest.fixture(scope="session")
def stack():
    local_stack = Stack()
    try:
        not_healthy = [s.name for s in local_stack.status() if not s.healthy]
        if not_healthy:
            local_stack.up(not_healthy, log=lambda msg: print(f"[stack] {msg}"))
    except (StackError, StackConfigError, JavaNotFound) as exc:
        message = f"the local stack could not start: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    try:
        yield local_stack
    finally:
        if not_healthy:
            local_stack.down(log=lambda msg: print(f"[stack] {msg}"))
