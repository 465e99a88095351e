"""What a station's current AQI is, per index, and the colour of its category. Pure.

``us``: the US EPA AQI of the hour's PM NowCast (``aqi_us_nowcast`` of the latest 1 h aggregate row), the
figure AirNow reports and the one the ``us`` alerts follow; an hour without a NowCast (fewer than 2 of its
3 latest hours measured) falls back to the AQI of the hour's means (``aqi_us``), marked ``basis: "hour"``.
``eea``: the European Air Quality Index band of the hour's means (``eaqi``/``eaqi_band``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jobs.transforms.aqi import us_aqi, us_category

INDEXES = ("us", "eea")

# the EPA's AQI colours as its Technical Assistance Document gives them (RGB 0/228/0, 255/255/0, 255/126/0,
# 255/0/0, 143/63/151, 126/0/35)
US_COLOURS: dict[str, str] = {
    "Good": "#00e400",
    "Moderate": "#ffff00",
    "Unhealthy for Sensitive Groups": "#ff7e00",
    "Unhealthy": "#ff0000",
    "Very Unhealthy": "#8f3f97",
    "Hazardous": "#7e0023",
}
# the EEA's index colours as its European Air Quality Index viewer shows them (RGB 80/240/230, 80/204/170, 240/230/65,
# 255/80/80, 150/0/50, 125/33/129)
EEA_COLOURS: dict[str, str] = {
    "Good": "#50f0e6",
    "Fair": "#50ccaa",
    "Moderate": "#f0e641",
    "Poor": "#ff5050",
    "Very poor": "#960032",
    "Extremely poor": "#7d2181",
}
NO_CATEGORY_COLOUR = "#c8c8c8"


def colour(index: str, category: str | None) -> str:
    table = US_COLOURS if index == "us" else EEA_COLOURS
    return table.get(category or "", NO_CATEGORY_COLOUR)


def legend() -> dict[str, list[dict[str, str]]]:
    """Each index's categories in order, with their colours (the page's legend)."""
    return {
        "us": [{"category": name, "colour": hex_} for name, hex_ in US_COLOURS.items()],
        "eea": [{"category": name, "colour": hex_} for name, hex_ in EEA_COLOURS.items()],
    }


def current_aqi(hour: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Per index, the station's current value, category, colour, the pollutant behind it and its basis,
    from its latest 1 h aggregate row (None: the station has none yet)."""
    hour = hour or {}
    if hour.get("aqi_us_nowcast") is not None:
        value = hour["aqi_us_nowcast"]
        # the NowCast AQI is the larger of the PM2.5 and PM10 NowCasts' indices: name the one it is
        pm25 = us_aqi("pm25", hour.get("pm25_nowcast"), "24h")
        pollutant = "pm25" if pm25 == value else "pm10"
        us = {"value": value, "category": us_category(value), "pollutant": pollutant, "basis": "nowcast"}
    else:
        us = {
            "value": hour.get("aqi_us"),
            "category": hour.get("aqi_us_category"),
            "pollutant": hour.get("aqi_us_dominant"),
            "basis": "hour" if hour.get("aqi_us") is not None else None,
        }
    eea = {
        "value": hour.get("eaqi"),
        "category": hour.get("eaqi_band"),
        "pollutant": hour.get("eaqi_dominant"),
        "basis": "hour" if hour.get("eaqi") is not None else None,
    }
    return {name: {**figure, "colour": colour(name, figure["category"])} for name, figure in (("us", us), ("eea", eea))}
