"""The day's maximum 8-hour ozone mean (MDA8) and the daily ozone AQI (40 CFR 50 Appendix U; issue 15)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from jobs.transforms import aggregates as A
from jobs.transforms import ozone
from jobs.transforms.aqi import us_aqi
from schemas.units import ugm3_to_ppm
from tests.support.cdc_events import beijing_readings, pandas_aggregates
from tests.support.pipeline import parse_ts

pytestmark = pytest.mark.unit

UTC = ZoneInfo("UTC")
DAY = date(2024, 6, 1)


def hourly_from(values: dict[int, float]):
    """``hourly(hour)`` for a UTC day: the value at ``hour``'s offset in hours from the day's midnight."""
    midnight = datetime(2024, 6, 1)
    return lambda hour: values.get(int((hour - midnight) / timedelta(hours=1)))


def test_the_17_periods_start_at_07_00_to_23_00_local_and_the_last_reads_the_next_morning():
    berlin = ZoneInfo("Europe/Berlin")  # UTC+2 in June
    starts = ozone.period_starts(DAY, berlin)
    assert starts[0] == datetime(2024, 6, 1, 5) and starts[-1] == datetime(2024, 6, 1, 21) and len(starts) == 17
    assert ozone.reach_end(DAY, berlin) == datetime(2024, 6, 2, 5)  # 07:00 local the next day
    # a half-hour zone: the UTC hour each local start falls in
    assert ozone.period_starts(DAY, ZoneInfo("Asia/Kolkata"))[0] == datetime(2024, 6, 1, 1)  # 07:00 IST = 01:30Z


def test_a_period_needs_six_of_its_eight_hours():
    assert ozone.eight_hour_mean([10.0] * 6 + [None, None]) == 10.0
    assert ozone.eight_hour_mean([10.0] * 5 + [None, None, None]) is None


def test_the_days_maximum_needs_13_valid_periods_unless_it_exceeds_the_standard():
    # hours 7..30 (the day's 07:00 to the next day's 06:00) at 50 µg/m³, hour 12 at 98: the best period is
    # 07:00-14:00 or any holding hour 12, mean (7 × 50 + 98) / 8 = 56
    full = {h: 50.0 for h in range(7, 31)} | {12: 98.0}
    assert ozone.daily_max_8h(DAY, UTC, hourly_from(full)) == pytest.approx(56.0)
    # only periods starting 07:00-18:00 keep six hours (12 valid: too few), and 56 µg/m³ is below 0.070 ppm
    short = {h: v for h, v in full.items() if h < 24}
    assert ozone.daily_max_8h(DAY, UTC, hourly_from(short)) is None
    # the same 12 periods above the standard: valid with fewer (Appendix U 3(b))
    high = {h: 200.0 for h in short}
    assert ugm3_to_ppm("o3", 200.0) > ozone.STANDARD_PPM
    assert ozone.daily_max_8h(DAY, UTC, hourly_from(high)) == pytest.approx(200.0)
    assert ozone.daily_max_8h(DAY, UTC, hourly_from({})) is None


def test_a_daily_row_carries_the_mda8_and_its_us_aqi_uses_it_for_ozone(data_dir):
    """Four real Beijing days: each 1 d row's o3_8h_max equals pandas' (tests/support/cdc_events), and where O3
    dominates the day, the US AQI is the 8-hour table's index of that maximum, not of the day's mean."""
    readings = beijing_readings(data_dir, "Dongsi", 24 * 4 + 8, start=24 * 90)  # early June 2013
    stored = [{**r, "ts": parse_ts(r["ts"])} for r in readings]
    zones = A.station_zones({"dongsi"}, stored, {})
    windows = A.touched_windows(((r["station_id"], r["ts"]) for r in stored), zones)
    rows = {
        (r["window_size"], r["window_start"]): r for r in A.window_rows(stored, windows, datetime(2026, 1, 1), zones)
    }
    oracle = pandas_aggregates(readings)
    daily = oracle[oracle["window_size"] == "1d"]
    assert len(daily) == 5
    for expected in daily.to_dict("records"):
        row = rows[("1d", expected["window_start"].to_pydatetime())]
        assert (row["o3_8h_max"] is None) == pd.isna(expected["o3_8h_max"])
        if row["o3_8h_max"] is not None:
            assert row["o3_8h_max"] == pytest.approx(expected["o3_8h_max"], rel=1e-9)
    complete = [r for k, r in rows.items() if k[0] == "1d" and r["o3_8h_max"] is not None]
    assert len(complete) >= 3  # the days whose next morning is read too
    ozone_days = [r for r in complete if r["aqi_us_dominant"] == "o3"]
    assert ozone_days, "June in Beijing: some day's AQI is its ozone's"
    for row in ozone_days:
        assert row["aqi_us"] == us_aqi("o3", row["o3_8h_max"], "8h")
        assert row["o3_8h_max"] > row["o3_mean"]  # the daily mean would understate it
