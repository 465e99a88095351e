"""The day's maximum 8-hour ozone mean (MDA8), on which the EPA defines the daily ozone AQI.

40 CFR Part 50, Appendix U (the 2015 ozone standard), sections 3(a) and 3(b):

- an 8-hour average for each hour, of that hour's and the next seven hourly values, stored at its start
  hour; valid when at least 6 of the 8 hourly values (75 %) are present;
- the day's maximum is the highest of the 17 consecutive 8-hour periods starting from 07:00 to 23:00 local
  time, valid when at least 13 of them (75 %) are valid, or, with fewer, when it exceeds the standard's
  level (0.070 ppm).

Here the hourly values are the station's 1 h window means (UTC hours), and a period's eight hours are the
eight UTC hours from the one its local start falls in: the local hours themselves wherever the offset is a
whole number of hours. Local time is the station's wall clock (Appendix U's data are in local standard
time: in summer a period here starts an hour earlier by the standard clock). Appendix U's substitution of
missing hours is not done: a period short of six values is invalid. Pure functions, no Spark.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from jobs.transforms.local_time import local_instant
from schemas.units import ugm3_to_ppm

PERIOD_HOURS = 8
MIN_PERIOD_HOURS = 6
FIRST_START_HOUR, LAST_START_HOUR = 7, 23
MIN_VALID_PERIODS = 13
STANDARD_PPM = 0.070
HOUR = timedelta(hours=1)


@lru_cache(maxsize=8192)  # asked for each change of a batch, whose changes share a few days
def period_starts(day: date, zone: ZoneInfo) -> tuple[datetime, ...]:
    """The 17 periods' first UTC hours (naive) of the local ``day`` in ``zone``: the UTC hour holding each local
    start from 07:00 to 23:00."""
    starts = []
    for hour in range(FIRST_START_HOUR, LAST_START_HOUR + 1):
        starts.append(local_instant(day, hour, zone).replace(minute=0, second=0, microsecond=0))
    return tuple(starts)


def eight_hour_mean(values: list[float | None]) -> float | None:
    """The mean of eight hourly values, or None when fewer than six are present."""
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if len(present) >= MIN_PERIOD_HOURS else None


def daily_max_8h(day: date, zone: ZoneInfo, hourly: Callable[[datetime], float | None]) -> float | None:
    """The MDA8 (µg/m³) of the local ``day``, ``hourly(hour)`` giving the O3 mean of the UTC hour starting at
    ``hour`` (None without one); None when the day's maximum is not valid."""
    means = [
        m
        for start in period_starts(day, zone)
        if (m := eight_hour_mean([hourly(start + k * HOUR) for k in range(PERIOD_HOURS)])) is not None
    ]
    if not means:
        return None
    highest = max(means)
    if len(means) >= MIN_VALID_PERIODS or ugm3_to_ppm("o3", highest) > STANDARD_PPM:
        return highest
    return None


def reach_end(day: date, zone: ZoneInfo) -> datetime:
    """The end of the last hour the local ``day``'s periods read (its 23:00 period's eighth, the next morning)."""
    return period_starts(day, zone)[-1] + PERIOD_HOURS * HOUR
