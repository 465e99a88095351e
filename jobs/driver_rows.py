"""Times between the driver's rows and Spark columns as epoch microseconds (``timestamp_micros`` /
``unix_micros``), so no local time zone touches them: the driver's rows hold naive UTC ``datetime``
values, the tables UTC timestamps.
"""

from __future__ import annotations

from datetime import datetime, timedelta

EPOCH = datetime(1970, 1, 1)


def micros(ts: datetime) -> int:
    return (ts - EPOCH) // timedelta(microseconds=1)


def from_micros(value: int | None) -> datetime | None:
    return None if value is None else EPOCH + timedelta(microseconds=value)
