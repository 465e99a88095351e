"""Pure AQI functions against oracle values worked out by hand from the published tables.

Every expected number below was computed by hand (the arithmetic is in the comments where it is
not a breakpoint itself), not by another implementation. Concentrations in the EPA tests are in
the EPA's units (µg/m³ PM, ppm O3/CO, ppb SO2/NO2) through ``us_aqi_native``; the canonical-unit
path is tested separately.
"""

from __future__ import annotations

import math

import pytest

from jobs.transforms import aqi as A
from schemas.units import ppb_to_ugm3

pytestmark = pytest.mark.unit

NONE = None

# (pollutant, averaging, concentration in the EPA's unit, expected sub-index)
EPA_BOUNDARIES = [
    # PM2.5 24-h, 2024 rows: every end point of every row
    ("pm25", "24h", 0.0, 0),
    ("pm25", "24h", 9.0, 50),
    ("pm25", "24h", 9.1, 51),
    ("pm25", "24h", 35.4, 100),
    ("pm25", "24h", 35.5, 101),
    ("pm25", "24h", 55.4, 150),
    ("pm25", "24h", 55.5, 151),
    ("pm25", "24h", 125.4, 200),
    ("pm25", "24h", 125.5, 201),
    ("pm25", "24h", 225.4, 300),
    ("pm25", "24h", 225.5, 301),
    ("pm25", "24h", 325.4, 500),
    # PM10 24-h
    ("pm10", "24h", 0, 0),
    ("pm10", "24h", 54, 50),
    ("pm10", "24h", 55, 51),
    ("pm10", "24h", 154, 100),
    ("pm10", "24h", 155, 101),
    ("pm10", "24h", 254, 150),
    ("pm10", "24h", 255, 151),
    ("pm10", "24h", 354, 200),
    ("pm10", "24h", 355, 201),
    ("pm10", "24h", 424, 300),
    ("pm10", "24h", 425, 301),
    ("pm10", "24h", 604, 500),
    # O3 8-h (ppm)
    ("o3", "8h", 0.000, 0),
    ("o3", "8h", 0.054, 50),
    ("o3", "8h", 0.055, 51),
    ("o3", "8h", 0.070, 100),
    ("o3", "8h", 0.071, 101),
    ("o3", "8h", 0.085, 150),
    ("o3", "8h", 0.086, 151),
    ("o3", "8h", 0.105, 200),
    ("o3", "8h", 0.106, 201),
    ("o3", "8h", 0.200, 300),
    # O3 1-h (ppm)
    ("o3", "1h", 0.125, 101),
    ("o3", "1h", 0.164, 150),
    ("o3", "1h", 0.165, 151),
    ("o3", "1h", 0.204, 200),
    ("o3", "1h", 0.205, 201),
    ("o3", "1h", 0.404, 300),
    ("o3", "1h", 0.405, 301),
    ("o3", "1h", 0.604, 500),
    # CO 8-h (ppm)
    ("co", "8h", 0.0, 0),
    ("co", "8h", 4.4, 50),
    ("co", "8h", 4.5, 51),
    ("co", "8h", 9.4, 100),
    ("co", "8h", 9.5, 101),
    ("co", "8h", 12.4, 150),
    ("co", "8h", 12.5, 151),
    ("co", "8h", 15.4, 200),
    ("co", "8h", 15.5, 201),
    ("co", "8h", 30.4, 300),
    ("co", "8h", 30.5, 301),
    ("co", "8h", 50.4, 500),
    # SO2 1-h and 24-h (ppb)
    ("so2", "1h", 0, 0),
    ("so2", "1h", 35, 50),
    ("so2", "1h", 36, 51),
    ("so2", "1h", 75, 100),
    ("so2", "1h", 76, 101),
    ("so2", "1h", 185, 150),
    ("so2", "1h", 186, 151),
    ("so2", "1h", 304, 200),
    ("so2", "24h", 305, 201),
    ("so2", "24h", 604, 300),
    ("so2", "24h", 605, 301),
    ("so2", "24h", 1004, 500),
    # NO2 1-h (ppb)
    ("no2", "1h", 0, 0),
    ("no2", "1h", 53, 50),
    ("no2", "1h", 54, 51),
    ("no2", "1h", 100, 100),
    ("no2", "1h", 101, 101),
    ("no2", "1h", 360, 150),
    ("no2", "1h", 361, 151),
    ("no2", "1h", 649, 200),
    ("no2", "1h", 650, 201),
    ("no2", "1h", 1249, 300),
    ("no2", "1h", 1250, 301),
    ("no2", "1h", 2049, 500),
]

EPA_INTERIOR = [
    # truncation before the lookup: 9.09 → 9.0 (Good), 9.1 stays (Moderate)
    ("pm25", "24h", 9.09, 50),
    ("pm25", "24h", 9.1, 51),
    ("pm25", "24h", 35.49, 100),  # 35.4, not rounded up to 35.5
    ("pm10", "24h", 54.9, 50),  # 54
    ("o3", "8h", 0.0549, 50),  # 0.054
    ("co", "8h", 4.49, 50),  # 4.4
    ("no2", "1h", 53.9, 50),  # 53
    # exactly halfway after interpolation, rounded half up:
    # O3 0.080: (150-101)/(0.085-0.071)·(0.080-0.071) + 101 = 49/14·9 + 101 = 132.5 → 133
    ("o3", "8h", 0.080, 133),
    # PM2.5 35.0: 49/26.3·25.9 + 51 = 99.25 → 99
    ("pm25", "24h", 35.0, 99),
    # PM2.5 12.0 (the old Good/Moderate breakpoint): 49/26.3·2.9 + 51 = 56.40 → 56
    ("pm25", "24h", 12.0, 56),
    # PM10 100: 49/99·45 + 51 = 73.27 → 73
    ("pm10", "24h", 100, 73),
    # CO 6.0: 49/4.9·1.5 + 51 = 66.0
    ("co", "8h", 6.0, 66),
    # NO2 200: 49/259·99 + 101 = 119.73 → 120
    ("no2", "1h", 200, 120),
    # above the table's top: capped at 500 ("Beyond the AQI")
    ("pm25", "24h", 325.5, 500),
    ("pm25", "24h", 1000.0, 500),
    ("pm10", "24h", 605, 500),
    ("o3", "1h", 0.700, 500),
    ("co", "8h", 60.0, 500),
    ("so2", "24h", 2000, 500),
    ("no2", "1h", 3000, 500),
    # where the table has no row: not an index
    ("o3", "8h", 0.201, NONE),  # 8-h values do not define AQI above 300
    ("o3", "1h", 0.124, NONE),  # blank below AQI 101
    ("so2", "1h", 305, NONE),  # 1-h SO2 defines AQI up to 200 only
    ("so2", "24h", 304, NONE),
    # missing and invalid
    ("pm25", "24h", None, NONE),
    ("pm25", "24h", math.nan, NONE),
    ("pm25", "24h", -1.0, NONE),
]


@pytest.mark.parametrize(("pollutant", "averaging", "conc", "expected"), EPA_BOUNDARIES + EPA_INTERIOR)
def test_us_aqi_native_matches_hand_oracle(pollutant, averaging, conc, expected):
    assert A.us_aqi_native(pollutant, conc, averaging) == expected


def to_ugm3(pollutant: str, averaging: str, conc: float) -> float:
    """A concentration in the EPA's unit as the canonical µg/m³ a reading would carry."""
    unit = A.US_TABLES[f"{pollutant}/{averaging}"].unit
    if unit == "ppm":
        return ppb_to_ugm3(pollutant, conc * 1000.0)
    if unit == "ppb":
        return ppb_to_ugm3(pollutant, conc)
    return conc


@pytest.mark.parametrize(("pollutant", "averaging", "conc", "expected"), EPA_BOUNDARIES)
def test_boundaries_survive_the_round_trip_through_ugm3(pollutant, averaging, conc, expected):
    # 0.080 ppm → 157.05 µg/m³ → 0.0799999… ppm must still truncate to 0.080
    assert A.us_aqi(pollutant, to_ugm3(pollutant, averaging, conc), averaging) == expected


def test_canonical_units_are_converted_once():
    assert A.us_aqi("o3", ppb_to_ugm3("o3", 80.0), "8h") == 133
    # CO 1000 µg/m³ = 1000 · 24.45 / 28.010 / 1000 = 0.8729 ppm → 0.8 → 50/4.4·0.8 = 9.09 → 9
    assert A.us_aqi("co", 1000.0, "8h") == 9
    # NO2 100 µg/m³ = 100 · 24.45 / 46.0055 = 53.146 ppb → 53 → 50
    assert A.us_aqi("no2", 100.0, "1h") == 50
    # SO2 100 µg/m³ = 100 · 24.45 / 64.066 = 38.16 ppb → 38 → 49/39·2 + 51 = 53.51 → 54
    assert A.us_aqi("so2", 100.0, "1h") == 54


def test_unknown_table_is_an_error():
    with pytest.raises(ValueError, match="no EPA breakpoint table"):
        A.us_aqi("pm25", 10.0, "1h")


def test_reading_policy_o3_takes_the_larger_of_8h_and_1h():
    # 0.150 ppm: 8-h row 0.106-0.200 → 99/94·44 + 201 = 247.3 → 247; 1-h row 0.125-0.164 →
    # 49/39·25 + 101 = 132.4 → 132; the larger is 247
    assert A.us_sub_index("o3", ppb_to_ugm3("o3", 150.0)) == 247
    # 0.300 ppm: no 8-h row; 1-h row 0.205-0.404 → 99/199·95 + 201 = 248.3 → 248
    assert A.us_sub_index("o3", ppb_to_ugm3("o3", 300.0)) == 248


def test_reading_policy_so2_uses_24h_rows_above_304_ppb():
    assert A.us_sub_index("so2", ppb_to_ugm3("so2", 304.0)) == 200
    assert A.us_sub_index("so2", ppb_to_ugm3("so2", 305.0)) == 201


@pytest.mark.parametrize(
    ("aqi", "category"),
    [
        (0, "Good"),
        (50, "Good"),
        (51, "Moderate"),
        (100, "Moderate"),
        (101, "Unhealthy for Sensitive Groups"),
        (150, "Unhealthy for Sensitive Groups"),
        (151, "Unhealthy"),
        (200, "Unhealthy"),
        (201, "Very Unhealthy"),
        (300, "Very Unhealthy"),
        (301, "Hazardous"),
        (500, "Hazardous"),
        (None, None),
    ],
)
def test_us_category(aqi, category):
    assert A.us_category(aqi) == category


def test_overall_is_the_maximum_with_its_pollutant():
    reading = {"pm25": 35.0, "pm10": 100.0, "no2": 100.0, "so2": None, "co": 1000.0, "o3": math.nan}
    # pm25 99, pm10 73, no2 50, co 9: PM2.5 dominates
    assert A.us_aqi_overall(reading) == (99, "Moderate", "pm25")


def test_overall_ties_go_to_the_first_pollutant_in_canonical_order():
    assert A.us_aqi_overall({"pm10": 54.0, "pm25": 9.0}) == (50, "Good", "pm25")


def test_overall_with_every_pollutant_missing_is_null():
    assert A.us_aqi_overall({"pm25": None, "pm10": math.nan}) == (None, None, None)
    assert A.us_aqi_overall({}) == (None, None, None)


def test_missing_pollutants_do_not_count_as_zero():
    assert A.us_aqi_overall({"pm25": None, "o3": ppb_to_ugm3("o3", 80.0)}) == (
        133,
        "Unhealthy for Sensitive Groups",
        "o3",
    )


EAQI_CASES = [
    # (pollutant, µg/m³, level): both sides of every band edge, and above the table's top
    ("pm25", 0.0, 1),
    ("pm25", 5.0, 1),
    ("pm25", 5.1, 2),
    ("pm25", 15.0, 2),
    ("pm25", 15.1, 3),
    ("pm25", 50.0, 3),
    ("pm25", 50.1, 4),
    ("pm25", 90.0, 4),
    ("pm25", 90.1, 5),
    ("pm25", 140.0, 5),
    ("pm25", 140.1, 6),
    ("pm25", 800.0, 6),
    ("pm25", 900.0, 6),
    ("pm10", 15.0, 1),
    ("pm10", 15.5, 2),
    ("pm10", 45.0, 2),
    ("pm10", 46.0, 3),
    ("pm10", 120.0, 3),
    ("pm10", 121.0, 4),
    ("pm10", 195.0, 4),
    ("pm10", 196.0, 5),
    ("pm10", 270.0, 5),
    ("pm10", 271.0, 6),
    ("pm10", 1300.0, 6),
    ("no2", 10.0, 1),
    ("no2", 11.0, 2),
    ("no2", 25.0, 2),
    ("no2", 26.0, 3),
    ("no2", 60.0, 3),
    ("no2", 61.0, 4),
    ("no2", 100.0, 4),
    ("no2", 101.0, 5),
    ("no2", 150.0, 5),
    ("no2", 151.0, 6),
    ("o3", 60.0, 1),
    ("o3", 61.0, 2),
    ("o3", 100.0, 2),
    ("o3", 101.0, 3),
    ("o3", 120.0, 3),
    ("o3", 121.0, 4),
    ("o3", 160.0, 4),
    ("o3", 161.0, 5),
    ("o3", 180.0, 5),
    ("o3", 181.0, 6),
    ("so2", 20.0, 1),
    ("so2", 21.0, 2),
    ("so2", 40.0, 2),
    ("so2", 41.0, 3),
    ("so2", 125.0, 3),
    ("so2", 126.0, 4),
    ("so2", 190.0, 4),
    ("so2", 191.0, 5),
    ("so2", 275.0, 5),
    ("so2", 276.0, 6),
    ("pm25", None, None),
    ("pm25", math.nan, None),
    ("pm25", -0.5, None),
]


@pytest.mark.parametrize(("pollutant", "conc", "level"), EAQI_CASES)
def test_eaqi_levels(pollutant, conc, level):
    assert A.eaqi(pollutant, conc) == level


def test_eaqi_has_no_co():
    with pytest.raises(ValueError, match="not an EAQI pollutant"):
        A.eaqi("co", 1000.0)


def test_eaqi_overall_worst_band_and_names():
    assert A.eaqi_overall({"pm25": 5.0, "no2": 26.0, "co": 99999.0}) == (3, "Moderate", "no2")
    assert A.eaqi_overall({"pm25": 900.0}) == (6, "Extremely poor", "pm25")
    assert A.eaqi_overall({"pm25": None, "o3": None}) == (None, None, None)
    assert [A.eaqi_band(i) for i in range(1, 7)] == [
        "Good",
        "Fair",
        "Moderate",
        "Poor",
        "Very poor",
        "Extremely poor",
    ]


def test_nowcast_epa_training_example():
    # EPA's "Computing the NowCast" example, oldest to newest: 50 80 75 90 82 53 64 74 21 10 16 13.
    # range 90-10 = 80, 1 - 80/90 = 0.11 < 0.5 → w = 0.5; newest first, c_i·0.5^i:
    # 13 + 8 + 2.5 + 2.625 + 4.625 + 2 + 0.828125 + 0.640625 + 0.3515625 + 0.146484375
    #    + 0.078125 + 0.0244140625 = 34.8193359375;  Σ 0.5^i = 2 - 0.5^11 = 1.99951171875
    # → 17.4139…, the example's 17.4 µg/m³
    hourly = [50, 80, 75, 90, 82, 53, 64, 74, 21, 10, 16, 13][::-1]
    value = A.nowcast(hourly)
    assert value == pytest.approx(34.8193359375 / 1.99951171875, rel=1e-12)
    assert math.floor(value * 10) / 10 == 17.4
    # its AQI: 17.4 → 49/26.3·(17.4 - 9.1) + 51 = 66.46 → 66
    assert A.us_aqi_native("pm25", value, "24h") == 66


def test_nowcast_weight_above_the_floor_and_missing_hours():
    # 10, 9, 8: w = 1 - 2/10 = 0.8; (10 + 9·0.8 + 8·0.64) / (1 + 0.8 + 0.64) = 22.32 / 2.44
    assert A.nowcast([10.0, 9.0, 8.0]) == pytest.approx(22.32 / 2.44, rel=1e-12)
    # 20, missing, 10: w = 1 - 10/20 = 0.5; (20 + 10·0.25) / (1 + 0.25) = 18.0
    assert A.nowcast([20.0, None, 10.0]) == pytest.approx(18.0, rel=1e-12)
    # steady air: every hour weighs the same
    assert A.nowcast([12.0] * 12) == pytest.approx(12.0, rel=1e-12)
    # older hours beyond 12 are ignored
    assert A.nowcast([12.0] * 12 + [1000.0]) == pytest.approx(12.0, rel=1e-12)
    assert A.nowcast([0.0, 0.0, 0.0]) == 0.0


def test_nowcast_needs_two_of_the_three_most_recent_hours():
    assert A.nowcast([None, None, 12.0, 12.0, 12.0]) is None
    assert A.nowcast([None, 12.0, None, 12.0]) is None
    assert A.nowcast([12.0, None]) is None
    assert A.nowcast([None, 12.0, 14.0]) is not None
    assert A.nowcast([math.nan, 12.0, math.nan]) is None
    assert A.nowcast([]) is None


def test_nowcast_aqi_is_the_larger_pm_index_from_the_24h_tables():
    assert A.nowcast_aqi(9.0, 54.0) == 50  # both at the top of Good
    # 12.04 truncates to 12.0: (100 - 51) / (35.4 - 9.1) × (12.0 - 9.1) + 51 = 56.40 → 56; PM10 155 → 101
    assert A.nowcast_aqi(12.04, 155.0) == 101
    assert A.nowcast_aqi(12.04, None) == 56
    assert A.nowcast_aqi(None, 54.0) == 50
    assert A.nowcast_aqi(None, None) is None
