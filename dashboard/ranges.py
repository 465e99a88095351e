"""A request's time range, checked, and the readings partitions (one per UTC day) it spans. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta


class BadParameter(ValueError):
    """A query parameter the API refuses with a 422 that names it."""

    def __init__(self, parameter: str, message: str):
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


def as_utc(moment: datetime) -> datetime:
    """A request's datetime as the naive UTC the driver reads and writes (a naive one is taken as UTC)."""
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class TimeRange:
    """``start <= t < end``, naive UTC."""

    start: datetime
    end: datetime


def checked_range(start: datetime, end: datetime, max_days: int) -> TimeRange:
    """The range ``start..end``, or BadParameter naming ``end`` when it is not after ``start`` or spans more
    than ``max_days`` days."""
    start, end = as_utc(start), as_utc(end)
    if end <= start:
        raise BadParameter("end", f"must be after start ({start.isoformat()}Z), got {end.isoformat()}Z")
    if end - start > timedelta(days=max_days):
        raise BadParameter("end", f"the range {start.isoformat()}Z..{end.isoformat()}Z is longer than {max_days} days")
    return TimeRange(start, end)


def days_newest_first(time_range: TimeRange) -> list[date]:
    """The UTC days whose readings partitions hold a ``ts`` of the range, the newest first."""
    last = (time_range.end - timedelta(microseconds=1)).date()
    first = time_range.start.date()
    return [last - timedelta(days=k) for k in range((last - first).days + 1)]
