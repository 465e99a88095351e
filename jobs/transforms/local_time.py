"""Local wall-clock times of a station's zone as the naive UTC instants the jobs compute with.

Times are naive UTC ``datetime`` values throughout the transforms (the jobs read and write them as epoch
microseconds); a zone is a tzdata ``ZoneInfo``."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo


def local_instant(day: date, hour: int, zone: ZoneInfo) -> datetime:
    """The instant (naive UTC) the wall clock in ``zone`` reads ``hour``:00 on ``day``; where that time is
    skipped (a daylight-saving jump), the instant of the jump."""
    return datetime.combine(day, time(hour), tzinfo=zone).astimezone(UTC).replace(tzinfo=None)


def local_day(ts: datetime, zone: ZoneInfo) -> date:
    """The calendar day in ``zone`` of the naive UTC instant ``ts``."""
    return ts.replace(tzinfo=UTC).astimezone(zone).date()
