"""Air Quality Indices: the US EPA AQI (2024 revision) and the European Air Quality Index (EAQI).

Every function exists twice: a pure Python function over one value, and a Spark column expression
built from ``F.when`` chains (no Python UDF), so the jobs compute the same numbers the tests check.
Both versions share the tables below and do the same IEEE-754 operations in the same order:

1. convert the canonical µg/m³ to the EPA's unit with :mod:`schemas.units` (the same function is
   applied to a float or to a Spark ``Column``, so the conversion is written once);
2. truncate to the EPA's precision as an integer count of that precision step:
   ``floor(c * 10**d + EPS)``; ``EPS`` (a millionth of a step) absorbs the representation error of
   the unit round trip (0.080 ppm → µg/m³ → 0.07999999999 ppm would otherwise truncate to 0.079)
   and moves no real measurement across a breakpoint;
3. interpolate in integers (breakpoints scaled by ``10**d``), and round half up exactly:
   ``floor((2·(I_lo·Δc + ΔI·(c - c_lo)) + Δc) / (2·Δc))`` — no floating-point interpolation, so
   O3 0.080 ppm gives 132.5 → 133, never 132.4999….

Concentrations that are null, NaN or negative have no index (None / null), never 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from schemas.units import POLLUTANTS, ugm3_to_ppb, ugm3_to_ppm

EPS = 1e-6  # in units of the truncation step (0.1 µg/m³ for PM2.5, 0.001 ppm for O3, ...)

# ---------------------------------------------------------------------------------------------
# US EPA AQI
#
# Source: U.S. EPA, "Technical Assistance Document for the Reporting of Daily Air Quality – the
# Air Quality Index (AQI)", EPA-454/B-24-002, May 2024 (TAD), Table 6 "Breakpoints for the AQI"
# (p. 14) and section IV "Calculating the AQI"; https://nepis.epa.gov/Exe/ZyPURL.cgi?Dockey=P101AP0Q.txt.
# PM2.5 rows: the 2024 PM NAAQS final rule, 89 FR 16202 (6 March 2024), which revised the AQI
# (annual standard 9.0 µg/m³ = AQI 50; regulations.justia.com/regulations/fedreg/2024/03/06/2024-02637.html).
# Rows for PM10, CO, 1-h O3 and NO2 (ppm there, ppb here) were checked against the agency text of
# 40 CFR 58 Appendix G, Table 2 as corrected in 74 FR 30469 (2009); the 8-h O3
# (2015 revision), 1-h SO2/NO2 (2010) rows against the same table as reproduced in a peer-reviewed
# paper (PMC9133359, Table 2). Truncation rules (O3 to 0.001 ppm, PM2.5 to 0.1 µg/m³, PM10 to
# 1 µg/m³, then "the resulting AQI is rounded to the nearest whole number") from AirNow's "The AQI
# Equation (2024 - Valid Beginning May 6th, 2024)", forum.airnowtech.org/t/453; CO to 0.1 ppm,
# SO2 and NO2 to 1 ppb as the TAD's table precision. The 2024 revision merged the two Hazardous
# rows (301-400, 401-500) into one 301-500 row; its end points below (PM2.5 325.4, PM10 604,
# O3 1-h 0.604, CO 50.4, SO2 1004, NO2 2049) are the former 500 breakpoints. That merge and the
# 325.4 top could only be confirmed from secondary quotations of the EPA's 2024 AQI fact sheet,
# not from the text of the TAD itself: re-check against the PDF's Table 6 when it is at hand.
# Above the top of a table the index is capped at 500 ("Beyond the AQI" in the TAD).
# ---------------------------------------------------------------------------------------------

US_CATEGORIES: tuple[tuple[int, str], ...] = (
    (50, "Good"),
    (100, "Moderate"),
    (150, "Unhealthy for Sensitive Groups"),
    (200, "Unhealthy"),
    (300, "Very Unhealthy"),
    (500, "Hazardous"),
)


@dataclass(frozen=True)
class UsTable:
    """One column of the TAD's Table 6: (c_lo, c_hi, I_lo, I_hi) rows in ``unit``, ``decimals`` places."""

    pollutant: str
    averaging: str
    unit: str  # "ugm3", "ppm" or "ppb"
    decimals: int
    rows: tuple[tuple[float, float, int, int], ...]
    capped: bool  # True: above the top row the index is 500; False: the table does not define it

    @property
    def int_rows(self) -> tuple[tuple[int, int, int, int], ...]:
        scale = 10**self.decimals
        return tuple((round(lo * scale), round(hi * scale), ilo, ihi) for lo, hi, ilo, ihi in self.rows)


US_TABLES: dict[str, UsTable] = {
    t.pollutant + "/" + t.averaging: t
    for t in (
        # PM2.5, 24-hour, µg/m³, truncated to 0.1 (89 FR 16202; TAD 2024 Table 6)
        UsTable(
            "pm25",
            "24h",
            "ugm3",
            1,
            (
                (0.0, 9.0, 0, 50),
                (9.1, 35.4, 51, 100),
                (35.5, 55.4, 101, 150),
                (55.5, 125.4, 151, 200),
                (125.5, 225.4, 201, 300),
                (225.5, 325.4, 301, 500),
            ),
            True,
        ),
        # PM10, 24-hour, µg/m³, truncated to 1 (unchanged since 1999; 40 CFR 58 App. G Table 2)
        UsTable(
            "pm10",
            "24h",
            "ugm3",
            0,
            (
                (0, 54, 0, 50),
                (55, 154, 51, 100),
                (155, 254, 101, 150),
                (255, 354, 151, 200),
                (355, 424, 201, 300),
                (425, 604, 301, 500),
            ),
            True,
        ),
        # O3, 8-hour, ppm, truncated to 0.001 (2015 revision). No rows above 0.200 ppm: the TAD
        # says 8-hour values do not define AQI above 300; use the 1-hour table there.
        UsTable(
            "o3",
            "8h",
            "ppm",
            3,
            (
                (0.000, 0.054, 0, 50),
                (0.055, 0.070, 51, 100),
                (0.071, 0.085, 101, 150),
                (0.086, 0.105, 151, 200),
                (0.106, 0.200, 201, 300),
            ),
            False,
        ),
        # O3, 1-hour, ppm, truncated to 0.001. Blank below 0.125 ppm (AQI 101): there the 8-hour
        # value alone defines the index (TAD "blank places in the table").
        UsTable(
            "o3",
            "1h",
            "ppm",
            3,
            (
                (0.125, 0.164, 101, 150),
                (0.165, 0.204, 151, 200),
                (0.205, 0.404, 201, 300),
                (0.405, 0.604, 301, 500),
            ),
            True,
        ),
        # CO, 8-hour, ppm, truncated to 0.1
        UsTable(
            "co",
            "8h",
            "ppm",
            1,
            (
                (0.0, 4.4, 0, 50),
                (4.5, 9.4, 51, 100),
                (9.5, 12.4, 101, 150),
                (12.5, 15.4, 151, 200),
                (15.5, 30.4, 201, 300),
                (30.5, 50.4, 301, 500),
            ),
            True,
        ),
        # SO2, 1-hour, ppb, truncated to 1. 1-hour values define AQI up to 200 only (TAD
        # "Calculating AQI values for SO2"); 201 and above come from the 24-hour average.
        UsTable(
            "so2",
            "1h",
            "ppb",
            0,
            ((0, 35, 0, 50), (36, 75, 51, 100), (76, 185, 101, 150), (186, 304, 151, 200)),
            False,
        ),
        UsTable("so2", "24h", "ppb", 0, ((305, 604, 201, 300), (605, 1004, 301, 500)), True),
        # NO2, 1-hour, ppb, truncated to 1
        UsTable(
            "no2",
            "1h",
            "ppb",
            0,
            (
                (0, 53, 0, 50),
                (54, 100, 51, 100),
                (101, 360, 101, 150),
                (361, 649, 151, 200),
                (650, 1249, 201, 300),
                (1250, 2049, 301, 500),
            ),
            True,
        ),
    )
}

# Per reading (one hourly value, or a window mean): which table(s) each pollutant's value is
# looked up in. O3: the larger of the 8-hour and 1-hour indices, as the TAD allows ("the maximum
# of the two"); SO2: the 1-hour table, and the 24-hour rows above 304 ppb.
READING_TABLES: dict[str, tuple[str, ...]] = {
    "pm25": ("pm25/24h",),
    "pm10": ("pm10/24h",),
    "o3": ("o3/8h", "o3/1h"),
    "co": ("co/8h",),
    "so2": ("so2/1h", "so2/24h"),
    "no2": ("no2/1h",),
}

# Ties between pollutants go to the first in this order (the canonical reading's order).
DOMINANCE_ORDER: tuple[str, ...] = POLLUTANTS


def _table(pollutant: str, averaging: str) -> UsTable:
    try:
        return US_TABLES[f"{pollutant}/{averaging}"]
    except KeyError:
        known = ", ".join(sorted(US_TABLES))
        raise ValueError(f"no EPA breakpoint table for {pollutant} {averaging} (known: {known})") from None


def _usable(value: float | None) -> bool:
    return value is not None and not math.isnan(value) and value >= 0


def _to_epa_unit(table: UsTable, conc_ugm3: Any) -> Any:
    """µg/m³ → the table's unit; works on a float and on a Spark Column alike."""
    if table.unit == "ppm":
        return ugm3_to_ppm(table.pollutant, conc_ugm3)
    if table.unit == "ppb":
        return ugm3_to_ppb(table.pollutant, conc_ugm3)
    return conc_ugm3


def _interpolate(scaled: int, row: tuple[int, int, int, int]) -> int:
    lo, hi, ilo, ihi = row
    den = hi - lo
    return (2 * (ilo * den + (ihi - ilo) * (scaled - lo)) + den) // (2 * den)


def _lookup(table: UsTable, conc_native: float) -> int | None:
    scaled = math.floor(conc_native * float(10**table.decimals) + EPS)
    rows = table.int_rows
    if scaled < rows[0][0]:
        return None
    for row in rows:
        if scaled <= row[1]:
            return _interpolate(scaled, row)
    return 500 if table.capped else None


def us_aqi_native(pollutant: str, conc: float | None, averaging: str) -> int | None:
    """The EPA sub-index of a concentration in the EPA's unit (µg/m³ PM, ppm O3/CO, ppb SO2/NO2)."""
    table = _table(pollutant, averaging)
    return _lookup(table, conc) if _usable(conc) else None


def us_aqi(pollutant: str, conc_ugm3: float | None, averaging: str) -> int | None:
    """The EPA sub-index of a canonical (µg/m³) concentration averaged over ``averaging``.

    ``averaging`` names the table: pm25/pm10 "24h", o3 "8h" or "1h", co "8h", so2 "1h" or "24h",
    no2 "1h". None when the value is missing or the table has no row for it (8-h O3 above
    0.200 ppm, 1-h O3 below 0.125 ppm, 1-h SO2 above 304 ppb, 24-h SO2 below 305 ppb).
    """
    table = _table(pollutant, averaging)
    if not _usable(conc_ugm3):
        return None
    return _lookup(table, _to_epa_unit(table, conc_ugm3))


def us_sub_index(pollutant: str, conc_ugm3: float | None) -> int | None:
    """The sub-index of one reading or window mean, with the per-reading policy of READING_TABLES."""
    indices = [us_aqi(pollutant, conc_ugm3, key.split("/")[1]) for key in READING_TABLES[pollutant]]
    present = [i for i in indices if i is not None]
    if not present:
        return None
    return max(present) if pollutant == "o3" else present[0]


def us_category(aqi: int | None) -> str | None:
    if aqi is None:
        return None
    for top, name in US_CATEGORIES:
        if aqi <= top:
            return name
    return US_CATEGORIES[-1][1]


def us_aqi_overall(concs_ugm3: Mapping[str, float | None]) -> tuple[int | None, str | None, str | None]:
    """(AQI, category, dominant pollutant) of one reading: the largest sub-index of those present."""
    best: tuple[int, str] | None = None
    for pollutant in DOMINANCE_ORDER:
        if pollutant not in concs_ugm3:
            continue
        index = us_sub_index(pollutant, concs_ugm3[pollutant])
        if index is not None and (best is None or index > best[0]):
            best = (index, pollutant)
    if best is None:
        return None, None, None
    return best[0], us_category(best[0]), best[1]


# ---------------------------------------------------------------------------------------------
# European Air Quality Index (EEA), revised bands
#
# Source: ETC HE Report 2024/17, "EEA's revision of the European air quality index bands",
# Table 5.2 "Final agreed updated EEA European air quality index" (European Topic Centre on
# Human Health and the Environment, 2024), as used by the EEA's index at airindex.eea.europa.eu.
# The bands below were checked against two independent public quotations of that Table 5.2 (both
# citing it, both identical), and the superseded 2017 bands (PM2.5 0-10-20-25-50-800 ...) against
# the EEA's own former index page (discomap.eea.europa.eu/map/AQI/Viewer). In the revision every
# pollutant is classified from its hourly concentration (the 2017 index used 24-hour running means
# for PM). Bands are continuous, upper bound inclusive (the report prints 0-5, 6-15, ...: 5 is
# Good); the top band is open: a value above the printed top of Extremely poor (e.g. PM2.5
# 800 µg/m³) is still Extremely poor.
# CO is not part of the EAQI.
# ---------------------------------------------------------------------------------------------

EAQI_BANDS: tuple[str, ...] = ("Good", "Fair", "Moderate", "Poor", "Very poor", "Extremely poor")

# Upper bounds (µg/m³, hourly) of bands 1..5; band 6 is everything above.
EAQI_UPPER: dict[str, tuple[float, ...]] = {
    "pm25": (5, 15, 50, 90, 140),
    "pm10": (15, 45, 120, 195, 270),
    "no2": (10, 25, 60, 100, 150),
    "o3": (60, 100, 120, 160, 180),
    "so2": (20, 40, 125, 190, 275),
}


def eaqi(pollutant: str, conc_ugm3: float | None) -> int | None:
    """The EAQI level (1 Good … 6 Extremely poor) of one hourly concentration; None if missing."""
    if pollutant not in EAQI_UPPER:
        raise ValueError(f"{pollutant} is not an EAQI pollutant ({', '.join(EAQI_UPPER)})")
    if not _usable(conc_ugm3):
        return None
    for level, upper in enumerate(EAQI_UPPER[pollutant], start=1):
        if conc_ugm3 <= upper:
            return level
    return len(EAQI_BANDS)


def eaqi_band(level: int | None) -> str | None:
    return None if level is None else EAQI_BANDS[level - 1]


def eaqi_overall(concs_ugm3: Mapping[str, float | None]) -> tuple[int | None, str | None, str | None]:
    """(level, band name, dominant pollutant): the worst level over the pollutants present."""
    best: tuple[int, str] | None = None
    for pollutant in DOMINANCE_ORDER:
        if pollutant not in EAQI_UPPER or pollutant not in concs_ugm3:
            continue
        level = eaqi(pollutant, concs_ugm3[pollutant])
        if level is not None and (best is None or level > best[0]):
            best = (level, pollutant)
    if best is None:
        return None, None, None
    return best[0], eaqi_band(best[0]), best[1]


# ---------------------------------------------------------------------------------------------
# PM NowCast
#
# Source: U.S. EPA, "PM NowCast" fact sheet (https://nepis.epa.gov/Exe/ZyPURL.cgi?Dockey=P100X0J6.txt):
# the past 12 hourly values; weight factor w = 1 - (max - min) / max, floored at 0.5;
# NowCast = Σ w^(i) c_i / Σ w^(i), i = hours ago (0 for the current hour); and TAD 2024 section IV
# "How the NowCast is calculated". The rule that at least 2 of the 3 most recent hours must be
# valid is AirNow's (forum.airnowtech.org/t/the-nowcast-for-ozone-and-pm/172), checked against sources
# citing it (e.g. the AirMonitor R package docs). Missing hours are left out of both sums.
# ---------------------------------------------------------------------------------------------

NOWCAST_HOURS = 12
NOWCAST_MIN_WEIGHT = 0.5


def nowcast(hourly_values_newest_first: Sequence[float | None]) -> float | None:
    """The PM NowCast (µg/m³) from up to 12 hourly values, the current hour first; None if too few."""
    values = list(hourly_values_newest_first[:NOWCAST_HOURS])
    values += [None] * (NOWCAST_HOURS - len(values))
    valid = [v is not None and not math.isnan(v) for v in values]
    if sum(valid[:3]) < 2:
        return None
    present = [v for v, ok in zip(values, valid, strict=True) if ok]
    cmax, cmin = max(present), min(present)
    weight = 1.0 if cmax <= 0 else max(1.0 - (cmax - cmin) / cmax, NOWCAST_MIN_WEIGHT)
    num, den, power = 0.0, 0.0, 1.0
    for value, ok in zip(values, valid, strict=True):
        if ok:
            num += power * value
            den += power
        power *= weight
    return num / den


def nowcast_aqi(pm25_nowcast: float | None, pm10_nowcast: float | None) -> int | None:
    """The PM AQI of the hour: the larger of the PM2.5 and PM10 indices of their NowCasts, looked up
    in the 24-hour tables (the NowCast stands in for the 24-hour mean, as AirNow reports it)."""
    subs = [a for a in (us_aqi("pm25", pm25_nowcast, "24h"), us_aqi("pm10", pm10_nowcast, "24h")) if a is not None]
    return max(subs) if subs else None


# ---------------------------------------------------------------------------------------------
# Spark column expressions (the same arithmetic, F.when chains, no UDFs)
# ---------------------------------------------------------------------------------------------


def _usable_col(c: Column) -> Column:
    return c.isNotNull() & ~F.isnan(c) & (c >= F.lit(0.0))


def _lookup_col(table: UsTable, conc_ugm3: Column) -> Column:
    native = _to_epa_unit(table, conc_ugm3)
    scaled = F.floor(native * F.lit(float(10**table.decimals)) + F.lit(EPS))
    rows = table.int_rows
    expr = F.when(~_usable_col(conc_ugm3), F.lit(None)).when(scaled < F.lit(rows[0][0]), F.lit(None))
    for lo, hi, ilo, ihi in rows:
        den = hi - lo
        doubled = F.lit(2 * ilo * den + den) + F.lit(2 * (ihi - ilo)) * (scaled - F.lit(lo))
        value = F.floor(doubled / F.lit(2 * den))
        expr = expr.when(scaled <= F.lit(hi), value)
    return expr.otherwise(F.lit(500) if table.capped else F.lit(None)).cast("int")


def us_aqi_col(pollutant: str, conc_ugm3: Column | str, averaging: str) -> Column:
    """Column version of :func:`us_aqi`."""
    c = F.col(conc_ugm3) if isinstance(conc_ugm3, str) else conc_ugm3
    return _lookup_col(_table(pollutant, averaging), c.cast("double"))


def us_sub_index_col(pollutant: str, conc_ugm3: Column | str) -> Column:
    """Column version of :func:`us_sub_index`."""
    parts = [us_aqi_col(pollutant, conc_ugm3, key.split("/")[1]) for key in READING_TABLES[pollutant]]
    if len(parts) == 1:
        return parts[0]
    return F.greatest(*parts) if pollutant == "o3" else F.coalesce(*parts)


def _max_and_argmax(subs: dict[str, Column]) -> tuple[Column, Column]:
    top = F.greatest(*subs.values()) if len(subs) > 1 else next(iter(subs.values()))
    dominant = F.when(F.lit(False), F.lit(None).cast("string"))
    for pollutant, sub in subs.items():
        dominant = dominant.when(sub == top, F.lit(pollutant))
    return top, dominant


def us_category_col(aqi: Column) -> Column:
    expr = F.when(aqi.isNull(), F.lit(None).cast("string"))
    for top, name in US_CATEGORIES[:-1]:
        expr = expr.when(aqi <= F.lit(top), F.lit(name))
    return expr.otherwise(F.lit(US_CATEGORIES[-1][1]))


def eaqi_col(pollutant: str, conc_ugm3: Column | str) -> Column:
    """Column version of :func:`eaqi`."""
    c = (F.col(conc_ugm3) if isinstance(conc_ugm3, str) else conc_ugm3).cast("double")
    expr = F.when(~_usable_col(c), F.lit(None))
    for level, upper in enumerate(EAQI_UPPER[pollutant], start=1):
        expr = expr.when(c <= F.lit(float(upper)), F.lit(level))
    return expr.otherwise(F.lit(len(EAQI_BANDS))).cast("int")


def eaqi_band_col(level: Column) -> Column:
    expr = F.when(level.isNull(), F.lit(None).cast("string"))
    for i, name in enumerate(EAQI_BANDS, start=1):
        expr = expr.when(level == F.lit(i), F.lit(name))
    return expr


AQI_OUTPUT_COLUMNS: tuple[str, ...] = (
    "aqi_us",
    "aqi_us_category",
    "aqi_us_dominant",
    "eaqi",
    "eaqi_band",
    "eaqi_dominant",
)


def aqi_columns(columns: Mapping[str, str] | None = None) -> dict[str, Column]:
    """The six AQI output columns as expressions over the pollutant columns.

    ``columns`` maps a pollutant to the column holding it (default: the pollutant's own name), so
    aggregates can pass their window means (``{"pm25": "pm25_mean", ...}``). Pollutants absent
    from the mapping are left out of the index.
    """
    names = {p: p for p in POLLUTANTS} if columns is None else dict(columns)
    us_subs = {p: us_sub_index_col(p, names[p]) for p in DOMINANCE_ORDER if p in names}
    eu_subs = {p: eaqi_col(p, names[p]) for p in DOMINANCE_ORDER if p in names and p in EAQI_UPPER}
    out: dict[str, Column] = {}
    if us_subs:
        aqi, dominant = _max_and_argmax(us_subs)
        out["aqi_us"] = aqi.cast("int")
        out["aqi_us_category"] = us_category_col(aqi)
        out["aqi_us_dominant"] = dominant
    else:
        out.update(aqi_us=F.lit(None).cast("int"), aqi_us_category=F.lit(None).cast("string"))
        out["aqi_us_dominant"] = F.lit(None).cast("string")
    if eu_subs:
        level, dominant = _max_and_argmax(eu_subs)
        out["eaqi"] = level.cast("int")
        out["eaqi_band"] = eaqi_band_col(level)
        out["eaqi_dominant"] = dominant
    else:
        out.update(eaqi=F.lit(None).cast("int"), eaqi_band=F.lit(None).cast("string"))
        out["eaqi_dominant"] = F.lit(None).cast("string")
    return out


def with_aqi(df: DataFrame, columns: Mapping[str, str] | None = None) -> DataFrame:
    """``df`` plus ``aqi_us int, aqi_us_category string, aqi_us_dominant string, eaqi int,
    eaqi_band string, eaqi_dominant string`` computed from pm25, pm10, no2, so2, co, o3 (µg/m³)."""
    return df.withColumns(aqi_columns(columns))


def nowcast_col(values_newest_first: Column) -> Column:
    """Column version of :func:`nowcast` over an array<double> of up to 12 hourly values, newest first."""
    arr = F.slice(values_newest_first.cast("array<double>"), 1, NOWCAST_HOURS)

    def ok(x: Column) -> Column:
        return x.isNotNull() & ~F.isnan(x)

    recent_valid = F.size(F.filter(F.slice(arr, 1, 3), ok))
    present = F.filter(arr, ok)
    cmax, cmin = F.array_max(present), F.array_min(present)
    weight = F.when(cmax <= F.lit(0.0), F.lit(1.0)).otherwise(
        F.greatest(F.lit(1.0) - (cmax - cmin) / cmax, F.lit(NOWCAST_MIN_WEIGHT))
    )
    start = F.struct(F.lit(0.0).alias("num"), F.lit(0.0).alias("den"), F.lit(1.0).alias("pow"))

    def step(acc: Column, x: Column) -> Column:
        return F.struct(
            F.when(ok(x), acc["num"] + acc["pow"] * x).otherwise(acc["num"]).alias("num"),
            F.when(ok(x), acc["den"] + acc["pow"]).otherwise(acc["den"]).alias("den"),
            (acc["pow"] * weight).alias("pow"),
        )

    total = F.aggregate(arr, start, step)
    return F.when(recent_valid >= F.lit(2), total["num"] / total["den"]).cast("double")


def nowcast_aqi_col(pm25_nowcast: Column | str, pm10_nowcast: Column | str) -> Column:
    """Column version of :func:`nowcast_aqi` (``greatest`` skips nulls, as the max over present indices)."""
    return F.greatest(us_aqi_col("pm25", pm25_nowcast, "24h"), us_aqi_col("pm10", pm10_nowcast, "24h"))


def with_nowcast(
    df: DataFrame,
    value_col: str,
    out_col: str,
    *,
    ts_col: str = "ts",
    by: Sequence[str] = ("station_id",),
) -> DataFrame:
    """Add ``out_col``: the NowCast of ``value_col`` from the readings of the same station in the
    12 clock hours ending at each row's hour (a batch DataFrame: a readings table, Delta bronze, the
    CDC job's recomputed 1 h windows; window functions, so not on a streaming DataFrame). Assumes one
    row per station and hour."""
    hour = F.floor(F.unix_timestamp(F.col(ts_col)) / F.lit(3600))
    by_hour = Window.partitionBy(*by).orderBy(hour)
    value = F.col(value_col).cast("double")
    # slot k: the value of the row exactly k clock hours earlier (a one-hour range frame; null if
    # none). Cheaper than collecting the 12 hours into a list and searching it per slot, which took a
    # minute for 20,000 hourly windows (higher-order functions are interpreted per element).
    slots = F.array(*[F.first(value).over(by_hour.rangeBetween(-k, -k)) for k in range(NOWCAST_HOURS)])
    return df.withColumn(out_col, nowcast_col(slots))


# ---------------------------------------------------------------------------------------------
# The pure functions over DataFrame rows (vectorised Python on the executors)
#
# What the jobs run per micro-batch. The Column version above is one CASE tree per table and
# pollutant; Catalyst optimises and compiles it anew for every micro-batch, about 1.4 s for a batch
# of 50 readings on 2 cores, more than the whole batch may take. ``mapInPandas`` over these
# functions plans as one small node, and the parity tests hold both versions to the same numbers.
# ---------------------------------------------------------------------------------------------


def aqi_values(concs_ugm3: Mapping[str, float | None]) -> tuple[Any, ...]:
    """The six AQI output values (:data:`AQI_OUTPUT_COLUMNS` order) of one reading or window."""
    return (*us_aqi_overall(concs_ugm3), *eaqi_overall(concs_ugm3))


def daily_aqi_values(means_ugm3: Mapping[str, float | None], o3_8h_max: float | None) -> tuple[Any, ...]:
    """:func:`aqi_values` of a day: the US AQI with O3 on the day's maximum 8-hour mean (the EPA's daily ozone
    AQI; no O3 sub-index without a valid one), the EAQI on the day's means."""
    return (*us_aqi_overall({**means_ugm3, "o3": o3_8h_max}), *eaqi_overall(means_ugm3))


def _python_float(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def with_aqi_python(df: DataFrame, columns: Mapping[str, str] | None = None) -> DataFrame:
    """:func:`with_aqi` computed by :func:`aqi_values` in Python workers (``mapInPandas``)."""
    import pandas as pd
    from pyspark.sql.types import IntegerType, StringType, StructField, StructType

    names = {p: p for p in POLLUTANTS} if columns is None else dict(columns)
    kinds = {"aqi_us": IntegerType(), "eaqi": IntegerType()}
    out_fields = [StructField(c, kinds.get(c, StringType()), True) for c in AQI_OUTPUT_COLUMNS]
    schema = StructType([f for f in df.schema.fields if f.name not in AQI_OUTPUT_COLUMNS] + out_fields)

    def add(frames):
        for frame in frames:
            concs = frame[list(names.values())].astype("float64")
            values = [
                aqi_values({p: _python_float(row[c]) for p, c in names.items()}) for row in concs.to_dict("records")
            ]
            for i, column in enumerate(AQI_OUTPUT_COLUMNS):
                data = [v[i] for v in values]
                frame[column] = pd.array(data, dtype="Int32") if column in kinds else pd.Series(data, dtype=object)
            yield frame[[f.name for f in schema.fields]]

    return df.mapInPandas(add, schema)
