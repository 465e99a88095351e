"""Integration tier: the ``stack`` fixture lives in tests/conftest.py (shared with the e2e tier)."""

from __future__ import annotations


def pytest_collection_modifyitems(config, items):
    """Tests that restart the whole stack run last, so they do not pull it from under the others."""
    items.sort(key=lambda item: item.get_closest_marker("restarts_stack") is not None)
