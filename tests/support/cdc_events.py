"""Debezium MongoDB change events for canonical readings, built on the recorded real envelopes.

Unit and integration tests drive the CDC job with events made like this: a recorded real envelope from
``../shared/data/debezium/`` (Debezium 2.7 schemaless, Debezium 2.1 with the schema wrapper) with
its ``after`` replaced by one of our reading documents, encoded as the connector encodes it
(strict Extended JSON v1 in ``after``: ``{"$date": millis}``, ``{"$numberLong": "…"}``; relaxed v2
in ``updatedFields``: ``{"$date": "…Z"}``) and the key ``{"id": "\\"<event_id>\\""}``. Everything
else in the envelope (``source`` block, the Connect ``schema``) is the recorded one, verbatim.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from schemas.reading import reading_to_mongo_document

SCHEMALESS_FILE = "paimon_dbz2.7.0_mongo_insert_c_schemaless.key_value.ndjson"
WITH_SCHEMA_FILE = "risingwave_dbz2.1.4_mongo_snapshot_r_with_schema.ndjson"
INT64_FIELDS = ("sent_at",)  # LongType: the Mongo Spark connector stores it as a BSON Int64
# the key's Connect schema when the converter has schemas on (Debezium's MongoDB key: a struct with `id`)
KEY_SCHEMA = {
    "type": "struct",
    "fields": [{"type": "string", "optional": False, "field": "id"}],
    "optional": False,
    "name": "aqcdc.airquality.readings_raw.Key",
}


def lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()]


def recorded_events(data_dir: Path) -> list[tuple[str, bool, str, str | None]]:
    """(file name, with_schema, value line, key line) of every recorded event, verbatim."""
    events = []
    for path in sorted((data_dir / "debezium").glob("*.ndjson")):
        found = lines(path)
        if ".key_value." in path.name:  # odd lines keys, even lines values
            events += [(path.name, False, value, key) for key, value in zip(found[::2], found[1::2], strict=True)]
        else:
            events += [(path.name, '"schema"' in line[:20], line, None) for line in found]
    return events


def _millis(ts: datetime) -> int:
    return int(ts.replace(tzinfo=ts.tzinfo or UTC).timestamp() * 1000)


def extended_json(document: dict[str, Any], mode: str = "strict") -> str:
    """The document as the connector writes it: ``strict`` (v1, ``after``) or ``relaxed`` (v2, ``updatedFields``)."""

    def encode(name: str | None, value: Any) -> Any:
        if isinstance(value, datetime):
            if mode == "strict":
                return {"$date": _millis(value)}
            return {"$date": value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")}
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, int) and name in INT64_FIELDS and mode == "strict":
            return {"$numberLong": str(value)}
        if isinstance(value, dict):
            return {k: encode(k, v) for k, v in value.items()}
        if isinstance(value, list):
            return [encode(None, v) for v in value]
        return value

    return json.dumps({k: encode(k, v) for k, v in document.items()}, ensure_ascii=False)


def mongo_document(reading_message: dict[str, Any]) -> dict[str, Any]:
    """What raw_to_mongo stores for a reading (``_id = event_id``, BSON dates)."""
    return reading_to_mongo_document(reading_message)


class EnvelopeFactory:
    """Change events in the recorded envelopes' shape; ``with_schema`` picks the wrapper form."""

    def __init__(self, data_dir: Path, with_schema: bool):
        self.with_schema = with_schema
        if with_schema:
            self.template = json.loads(lines(data_dir / "debezium" / WITH_SCHEMA_FILE)[0])
        else:
            self.template = json.loads(lines(data_dir / "debezium" / SCHEMALESS_FILE)[1])
        self.ts_ms = 1_767_225_600_000

    def _payload(self) -> dict[str, Any]:
        payload = json.loads(json.dumps(self.template["payload"] if self.with_schema else self.template))
        payload["source"].update(db="airquality", collection="readings_raw")
        payload.update(before=None, after=None, updateDescription=None)
        if "patch" in payload:
            payload.update(patch=None, filter=None)
        self.ts_ms += 1
        payload["ts_ms"] = self.ts_ms
        return payload

    def _wrap(self, payload: dict[str, Any] | None, schema: Any) -> bytes | None:
        if payload is None:
            return None
        body = {"schema": schema, "payload": payload} if self.with_schema else payload
        return json.dumps(body).encode()

    def key(self, event_id: str) -> bytes:
        return self._wrap({"id": json.dumps(event_id)}, KEY_SCHEMA)  # type: ignore[return-value]

    def change(self, op: str, reading_message: dict[str, Any]) -> tuple[bytes, bytes]:
        """An ``r``/``c``/``u`` event whose ``after`` is the full document (change_streams_update_full)."""
        payload = self._payload()
        payload["op"] = op
        payload["source"]["snapshot"] = "true" if op == "r" else "false"
        payload["after"] = extended_json(mongo_document(reading_message))
        return self.key(reading_message["event_id"]), self._wrap(payload, self.template.get("schema"))

    def patch(self, event_id: str, updated: dict[str, Any]) -> tuple[bytes, bytes]:
        """A ``u`` without ``after``: only ``updateDescription.updatedFields`` (relaxed v2)."""
        payload = self._payload()
        payload["op"] = "u"
        payload["updateDescription"] = {
            "removedFields": None,
            "updatedFields": extended_json(updated, mode="relaxed"),
            "truncatedArrays": None,
        }
        return self.key(event_id), self._wrap(payload, self.template.get("schema"))

    def delete(self, event_id: str) -> list[tuple[bytes, bytes | None]]:
        """A ``d`` (before and after null) and the tombstone Debezium sends after it."""
        payload = self._payload()
        payload["op"] = "d"
        return [(self.key(event_id), self._wrap(payload, self.template.get("schema"))), (self.key(event_id), None)]


# --- a real dataset and the independent aggregate oracle ---------------------------------------

BEIJING = "PRSA_Data_{}_20130301-20170228.csv"
POLLUTANT_COLUMNS = {"pm25": "PM2.5", "pm10": "PM10", "no2": "NO2", "so2": "SO2", "co": "CO", "o3": "O3"}


def beijing_readings(data_dir: Path, station: str, limit: int, start: int = 0) -> list[dict[str, Any]]:
    """``limit`` real hourly rows of one UCI Beijing station (from row ``start``) as canonical readings."""
    import csv
    from datetime import timedelta, timezone
    from itertools import islice

    from schemas.reading import build_reading, slugify

    path = data_dir / "bench" / BEIJING.format(station)
    beijing = timezone(timedelta(hours=8))
    with path.open(newline="") as fh:
        rows = list(islice(csv.DictReader(fh), start, start + limit))

    def num(text: str) -> float | None:
        return None if text == "NA" else float(text)

    return [
        build_reading(
            source="uci-beijing",
            station_id=slugify(station),
            station_name=station,
            city="Beijing",
            country="CN",
            timezone="Asia/Shanghai",  # conf/mappings/beijing.json: the stations' local days
            ts=datetime(int(r["year"]), int(r["month"]), int(r["day"]), int(r["hour"]), tzinfo=beijing),
            ingested_at=datetime(2026, 1, 1, tzinfo=UTC),
            values={p: num(r[c]) for p, c in POLLUTANT_COLUMNS.items()}
            | {"temperature": num(r["TEMP"]), "humidity": None},
            raw=r,
        )
        for r in rows
    ]


def local_day_bounds(frame):
    """(start, end) of each row's local calendar day in its ``timezone`` (null: UTC), as naive UTC: pandas'
    own midnight (``normalize``) and calendar-day step (``DateOffset``), not the job's arithmetic."""
    import pandas as pd

    zones = frame["timezone"].fillna("UTC") if "timezone" in frame else pd.Series("UTC", index=frame.index)
    starts, ends = [], []
    for zone, rows in frame.groupby(zones):
        midnight = rows["ts"].dt.tz_localize("UTC").dt.tz_convert(zone).dt.normalize()
        starts.append(midnight.dt.tz_convert("UTC").dt.tz_localize(None))
        ends.append((midnight + pd.DateOffset(days=1)).dt.tz_convert("UTC").dt.tz_localize(None))
    return pd.concat(starts).reindex(frame.index), pd.concat(ends).reindex(frame.index)


def pandas_aggregates(readings: list[dict[str, Any]]):
    """The 1 h and 1 d windows computed independently with pandas: count (non-null), mean, min, max;
    on 1 h windows the PM NowCast and its AQI (null on 1 d windows). 1 h windows are UTC hours, 1 d
    windows each reading's local calendar day in its ``timezone``."""
    import pandas as pd

    frame = pd.DataFrame(readings)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True).dt.tz_localize(None)
    parts = []
    for size in ("1h", "1d"):
        if size == "1h":
            start = frame["ts"].dt.floor("h")
            end = start + pd.Timedelta(1, "h")
        else:
            start, end = local_day_bounds(frame)
        grouped = frame.assign(window_start=start, window_end=end).groupby(["station_id", "window_start", "window_end"])
        stats = {}
        for p in POLLUTANT_COLUMNS:
            stats[f"{p}_count"] = grouped[p].count()
            stats[f"{p}_mean"] = grouped[p].mean()
            stats[f"{p}_min"] = grouped[p].min()
            stats[f"{p}_max"] = grouped[p].max()
        part = pd.DataFrame(stats).reset_index()
        part.insert(1, "window_size", size)
        if size == "1h":
            parts.append(_with_pure_nowcast(_with_pure_aqi(part)))
        else:  # 1 d rows: NowCast columns NaN; the US AQI's O3 on the day's maximum 8-hour mean
            daily = part.assign(o3_8h_max=pandas_o3_8h_max(parts[0], part, station_zone_names(frame)))
            parts.append(_with_pure_aqi(daily, o3="o3_8h_max"))
    return pd.concat(parts, ignore_index=True).sort_values(["station_id", "window_size", "window_start"])


def station_zone_names(frame) -> dict[str, str]:
    """Each station's zone: its newest reading's ``timezone`` (UTC without one)."""
    zones = {}
    for row in frame.sort_values("ts").to_dict("records"):
        if isinstance(row.get("timezone"), str):
            zones[row["station_id"]] = row["timezone"]
    return {station: zones.get(station, "UTC") for station in frame["station_id"].unique()}


def pandas_o3_8h_max(hourly, daily, zones: dict[str, str]) -> list[float | None]:
    """The day's maximum 8-hour O3 mean of each row of ``daily`` by 40 CFR 50 Appendix U, from the 1 h rows'
    means: the 8-hour mean starting at each hour (pandas' rolling mean over a complete hourly index, six of
    eight hours needed), at the 17 local hours 07:00-23:00 of the day (pandas' own localisation), the highest
    when 13 are valid or when it is above 0.070 ppm."""
    import pandas as pd

    from schemas.units import ugm3_to_ppm

    eight_hour = {}
    for station, rows in hourly.groupby("station_id"):
        series = rows.set_index("window_start")["o3_mean"].astype(float)
        index = pd.date_range(series.index.min(), series.index.max() + pd.Timedelta(hours=8), freq="h")
        # the mean of [t, t + 7 h]: the trailing window of t + 7 h, moved back to t
        eight_hour[station] = series.reindex(index).rolling(8, min_periods=6).mean().shift(-7)
    values = []
    for row in daily.to_dict("records"):
        zone = zones[row["station_id"]]
        day = pd.Timestamp(row["window_start"]).tz_localize("UTC").tz_convert(zone).date()
        starts = [
            pd.Timestamp(day.year, day.month, day.day, hour).tz_localize(zone).tz_convert("UTC").tz_localize(None)
            for hour in range(7, 24)
        ]
        series = eight_hour[row["station_id"]]
        valid = [series[t.floor("h")] for t in starts if t.floor("h") in series.index]
        valid = [v for v in valid if not pd.isna(v)]
        highest = max(valid) if valid else None
        ok = highest is not None and (len(valid) >= 13 or ugm3_to_ppm("o3", highest) > 0.070)
        values.append(highest if ok else None)
    return values


def _with_pure_aqi(windows, o3: str = "o3_mean"):
    """The windows plus the six AQI columns of their pandas means (not their maxima), through the pure
    functions of the AQI module (the reference the Spark columns are parity-tested against); the US AQI's O3
    from the column ``o3`` (a day's: its maximum 8-hour mean)."""
    import pandas as pd

    from jobs.transforms.aqi import AQI_OUTPUT_COLUMNS, eaqi_overall, us_aqi_overall

    def number(value) -> float | None:
        return None if value is None or pd.isna(value) else float(value)

    values = []
    for row in windows.to_dict("records"):
        means = {p: number(row[f"{p}_mean"]) for p in POLLUTANT_COLUMNS}
        values.append((*us_aqi_overall({**means, "o3": number(row[o3])}), *eaqi_overall(means)))
    columns = {
        c: pd.Series([v[i] for v in values], index=windows.index, dtype=object)
        for i, c in enumerate(AQI_OUTPUT_COLUMNS)
    }
    return windows.assign(**columns)


def aqi_value(value: Any) -> Any:
    """An AQI cell as a comparable value: None for null (None, NaN, NA), a float for a number, else the string."""
    import pandas as pd

    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value if isinstance(value, str) else float(value)


def aqi_mismatches(label: str, actual: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """The AQI columns where a stored row (``actual``) differs from the oracle's row (``expected``)."""
    from jobs.transforms.aqi import AQI_OUTPUT_COLUMNS

    return [
        f"{c} of {label}: {actual.get(c)!r}, expected {expected[c]!r}"
        for c in AQI_OUTPUT_COLUMNS
        if aqi_value(actual.get(c)) != aqi_value(expected[c])
    ]


def reading_aqi(reading: dict[str, Any]) -> dict[str, Any]:
    """The six AQI columns a reading's row must hold: the pure functions over its pollutants (µg/m³)."""
    from jobs.transforms.aqi import AQI_OUTPUT_COLUMNS, aqi_values

    values = aqi_values({p: reading.get(p) for p in POLLUTANT_COLUMNS})
    return dict(zip(AQI_OUTPUT_COLUMNS, values, strict=True))


def reading_aqi_mismatches(stored: dict[str, dict[str, Any]], readings: list[dict[str, Any]]) -> list[str]:
    """Where the AQI columns of the stored reading rows (by event_id) differ from the pure functions over
    the readings sent (empty: they are equal). A reading without a stored row is left to the id checks."""
    problems = []
    for reading in readings:
        row = stored.get(reading["event_id"])
        if row is not None:
            problems += aqi_mismatches(reading["event_id"], row, reading_aqi(reading))
    return problems


NOWCAST_NAMES = ("pm25_nowcast", "pm10_nowcast", "aqi_us_nowcast")


def _with_pure_nowcast(hourly):
    """The 1 h windows plus the PM NowCast of each hour from the pandas hourly means of the 12 hours
    ending there (an hour without a window is missing), through the pure functions of the AQI module."""
    import pandas as pd

    from jobs.transforms.aqi import NOWCAST_HOURS, nowcast, nowcast_aqi

    means = {(r["station_id"], r["window_start"]): r for r in hourly.to_dict("records")}

    def history(station: str, hour, pollutant: str) -> list[float | None]:
        rows = [means.get((station, hour - pd.Timedelta(hours=k))) for k in range(NOWCAST_HOURS)]
        return [None if row is None or pd.isna(row[f"{pollutant}_mean"]) else row[f"{pollutant}_mean"] for row in rows]

    keys = list(zip(hourly["station_id"], hourly["window_start"], strict=True))
    pm25 = [nowcast(history(s, h, "pm25")) for s, h in keys]
    pm10 = [nowcast(history(s, h, "pm10")) for s, h in keys]
    aqi = [nowcast_aqi(a, b) for a, b in zip(pm25, pm10, strict=True)]
    return hourly.assign(pm25_nowcast=pm25, pm10_nowcast=pm10, aqi_us_nowcast=aqi)


def assert_aggregates_equal(actual, expected) -> None:
    """Aggregate frames equal: counts, min, max exactly; means and NowCasts to 1e-9 relative."""
    import numpy as np
    import pandas as pd

    keys = ["station_id", "window_size", "window_start"]
    actual = actual.sort_values(keys).reset_index(drop=True)
    expected = expected.sort_values(keys).reset_index(drop=True)
    assert list(actual[keys].itertuples(index=False)) == list(expected[keys].itertuples(index=False))
    assert (pd.to_datetime(actual["window_end"]) == pd.to_datetime(expected["window_end"])).all()
    for p in POLLUTANT_COLUMNS:
        assert actual[f"{p}_count"].astype(int).tolist() == expected[f"{p}_count"].astype(int).tolist(), p
        for stat in ("min", "max"):
            a, e = actual[f"{p}_{stat}"].astype(float), expected[f"{p}_{stat}"].astype(float)
            assert ((a == e) | (a.isna() & e.isna())).all(), f"{p}_{stat}"
        a, e = actual[f"{p}_mean"].astype(float).to_numpy(), expected[f"{p}_mean"].astype(float).to_numpy()
        assert np.allclose(a, e, rtol=1e-9, atol=0, equal_nan=True), f"{p}_mean"
    for name in (*NOWCAST_NAMES, "o3_8h_max"):
        a, e = (pd.to_numeric(frame[name], errors="coerce").astype(float).to_numpy() for frame in (actual, expected))
        assert np.allclose(a, e, rtol=1e-9, atol=0, equal_nan=True), name
    from jobs.transforms.aqi import AQI_OUTPUT_COLUMNS

    for column in AQI_OUTPUT_COLUMNS:  # the AQI of the window means: exact (integers and names)
        a, e = ([aqi_value(v) for v in frame[column]] for frame in (actual, expected))
        diff = [(k, x, y) for k, x, y in zip(actual[keys].itertuples(index=False), a, e, strict=True) if x != y]
        assert not diff, f"{column} (window, stored, oracle): {diff[:5]}"


# --- the independent alerts oracle ---------------------------------------------------------------------

# the EPA's categories by the top of their AQI range (above the last: Hazardous), docs/aqi.md
US_CATEGORY_BINS = (50, 100, 150, 200, 300)
US_CATEGORY_NAMES = ("Good", "Moderate", "Unhealthy for Sensitive Groups", "Unhealthy", "Very Unhealthy", "Hazardous")
# the EEA's bands: upper bounds (µg/m³, inclusive) of levels 1-5 per pollutant, docs/aqi.md's table
EEA_BAND_UPPERS = {
    "pm25": (5, 15, 50, 90, 140),
    "pm10": (15, 45, 120, 195, 270),
    "no2": (10, 25, 60, 100, 150),
    "so2": (20, 40, 125, 190, 275),
    "o3": (60, 100, 120, 160, 180),
}
EEA_BAND_NAMES = ("Good", "Fair", "Moderate", "Poor", "Very poor", "Extremely poor")


def pandas_alerts(readings: list[dict[str, Any]]) -> dict[tuple, dict[str, Any]]:
    """The alerts of ``readings`` computed independently with pandas, by (station_id, aqi_index, hour):
    each hour whose category differs from the previous clock hour's, where both hours have one.

    'us': the category of the hourly NowCast AQI (the oracle's own, ``pandas_aggregates``) by the
    EPA's ranges, the pollutant whose NowCast has the larger index (PM2.5 on a tie); 'eea': the
    worst EEA band of the hourly means by the EEA's table, its level as the AQI, the first
    pollutant (pm25, pm10, no2, so2, o3) at that level as the pollutant."""
    import numpy as np
    import pandas as pd

    from jobs.transforms.aqi import us_aqi

    hourly = pandas_aggregates(readings)
    hourly = hourly[hourly["window_size"] == "1h"].reset_index(drop=True)
    nowcast_aqi = pd.to_numeric(hourly["aqi_us_nowcast"], errors="coerce")
    us_bins = [-np.inf, *US_CATEGORY_BINS, np.inf]
    us_category = pd.cut(nowcast_aqi, us_bins, labels=US_CATEGORY_NAMES, right=True).astype(object)
    pm25_index = [us_aqi("pm25", None if pd.isna(v) else v, "24h") for v in hourly["pm25_nowcast"]]
    pm10_index = [us_aqi("pm10", None if pd.isna(v) else v, "24h") for v in hourly["pm10_nowcast"]]
    us_pollutant = [
        "pm10" if a is None or (b is not None and b > a) else "pm25"
        for a, b in zip(pm25_index, pm10_index, strict=True)
    ]
    levels = pd.DataFrame(
        {
            p: pd.cut(hourly[f"{p}_mean"].where(hourly[f"{p}_mean"] >= 0), [-np.inf, *uppers, np.inf], labels=False) + 1
            for p, uppers in EEA_BAND_UPPERS.items()
        }
    )
    eea_level = levels.max(axis=1)
    eea_pollutant = levels.fillna(0).idxmax(axis=1)  # the first column at the maximum
    frames = {
        "us": pd.DataFrame({"category": us_category, "aqi": nowcast_aqi, "pollutant": us_pollutant}),
        "eea": pd.DataFrame(
            {
                "category": eea_level.map(lambda v: None if pd.isna(v) else EEA_BAND_NAMES[int(v) - 1]),
                "aqi": eea_level,
                "pollutant": eea_pollutant,
            }
        ),
    }
    alerts = {}
    for index, frame in frames.items():
        frame = frame.assign(station_id=hourly["station_id"], hour=hourly["window_start"])
        for station, rows in frame.groupby("station_id"):
            by_hour = rows.set_index("hour")
            previous = by_hour["category"].shift(1, freq="h").reindex(by_hour.index)  # the clock hour before
            crossed = by_hour["category"].notna() & previous.notna() & (by_hour["category"] != previous)
            for hour, row in by_hour[crossed].iterrows():
                alerts[(station, index, hour.to_pydatetime())] = {
                    "station_id": station,
                    "hour": hour.to_pydatetime(),
                    "aqi_index": index,
                    "previous_category": previous[hour],
                    "category": row["category"],
                    "aqi": int(row["aqi"]),
                    "pollutant": row["pollutant"],
                }
    return alerts


def oracle_alert_changes(before: dict[tuple, dict], after: dict[tuple, dict]) -> dict[str, set[tuple]]:
    """The keys a change from the alerts ``before`` to ``after`` must raise, correct and retract."""
    return {
        "raised": after.keys() - before.keys(),
        "corrected": {k for k in after.keys() & before.keys() if after[k] != before[k]},
        "retracted": before.keys() - after.keys(),
    }
