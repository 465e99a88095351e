"""Stations and the cities config (conf/cities.json)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from schemas.reading import check_slug


class Station(BaseModel):
    """Where a reading was taken; ``station_id`` is a slug (see schemas.reading)."""

    model_config = ConfigDict(frozen=True)

    station_id: str
    name: str | None = None
    city: str | None = None
    country: str | None = None
    lat: float | None = None
    lon: float | None = None

    def model_post_init(self, _context) -> None:
        check_slug(self.station_id, "station_id")


class City(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str
    country: str = Field(min_length=2, max_length=2)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)

    def station(self, source: str) -> Station:
        return Station(
            station_id=f"{source}-{self.id}",
            name=self.name,
            city=self.name,
            country=self.country,
            lat=self.lat,
            lon=self.lon,
        )


class CitiesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    comment: str | None = Field(default=None, alias="_comment")
    cities: list[City] = Field(min_length=1)

    def by_id(self, city_id: str) -> City:
        for city in self.cities:
            if city.id == city_id:
                return city
        raise KeyError(f"city {city_id!r} not in the config (known: {', '.join(c.id for c in self.cities)})")

    def nearest(self, lat: float, lon: float, within_deg: float) -> City | None:
        """The configured city whose point is within ``within_deg`` of a (grid-snapped) coordinate."""
        best = min(self.cities, key=lambda c: math.hypot(c.lat - lat, c.lon - lon))
        return best if math.hypot(best.lat - lat, best.lon - lon) <= within_deg else None


def load_cities(path: Path) -> CitiesConfig:
    data = json.loads(Path(path).read_text())
    return CitiesConfig.model_validate(data)


def grid_station(source: str, lat: float, lon: float) -> Station:
    """A station for a model grid point no configured city claims: ``openmeteo-grid-52.30n-6.90e``."""
    ns = "n" if lat >= 0 else "s"
    ew = "e" if lon >= 0 else "w"
    station_id = f"{source}-grid-{abs(lat):.2f}{ns}-{abs(lon):.2f}{ew}"
    return Station(station_id=station_id, name=f"grid {lat:.2f},{lon:.2f}", lat=lat, lon=lon)
