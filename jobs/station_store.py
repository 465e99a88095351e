"""The CDC job's station registry at its edge: the new or changed rows written (``jobs.transforms.stations``
decides which, against the registry's one partition)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from jobs.cdc_store import CdcStore
from jobs.transforms.stations import registry_rows


def update_registry(
    store: CdcStore,
    readings: list[Mapping[str, Any]],
    updated_at: datetime,
    registry: Mapping[str, Mapping[str, Any]],
) -> int:
    """Upsert the registry rows of the stations of ``readings`` that are new or changed against ``registry`` (the
    stored one, which the recompute has read for the stations' zones); returns how many."""
    if not readings:  # every reading of the batch's days deleted: nothing to say about any station
        return 0
    rows = registry_rows(readings, registry, updated_at)
    if rows:  # the store retries itself
        store.upsert_stations(rows)
    return len(rows)
