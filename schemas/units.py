"""Canonical units and the ppb/ppm <-> µg/m³ conversion, written down once.

Every concentration in the canonical reading is in µg/m³ (including CO, so all
pollutants share one unit). Sources that report gases as mixing ratios (ppb,
ppm) are converted here, and the AQI code converts back to the EPA's units here.

    µg/m³ = ppb × MW / Vm          ppb = µg/m³ × Vm / MW          ppm = ppb / 1000

with Vm the molar volume of an ideal gas at 25 °C and 1 atm (24.45 L/mol, the
value the US EPA and the EEA use for these conversions) and MW the molecular
weight in g/mol.
"""

from __future__ import annotations

import math

# 25 °C, 1 atm: R·T/P = 8.314462618 × 298.15 / 101325 × 1000 = 24.4654 L/mol;
# the agencies round it to 24.45, and so do we, so our AQI matches theirs.
MOLAR_VOLUME_L_PER_MOL = 24.45

# g/mol, from the IUPAC standard atomic weights (C 12.011, N 14.007, O 15.999, S 32.06).
MOLECULAR_WEIGHT_G_PER_MOL: dict[str, float] = {
    "no2": 46.0055,
    "so2": 64.066,
    "co": 28.010,
    "o3": 47.997,
}

CANONICAL_UNIT = "µg/m³"
POLLUTANTS: tuple[str, ...] = ("pm25", "pm10", "no2", "so2", "co", "o3")

# Unit spellings seen in the recorded responses (Open-Meteo uses the Greek mu
# U+03BC, OpenAQ the micro sign U+00B5), folded to one of three keys.
_UNIT_ALIASES = {
    "µg/m³": "ugm3",
    "μg/m³": "ugm3",
    "ug/m3": "ugm3",
    "µg/m3": "ugm3",
    "μg/m3": "ugm3",
    "ppb": "ppb",
    "ppm": "ppm",
}


class UnitError(ValueError):
    """A unit we cannot convert to the canonical one."""


def normalise_unit(unit: str) -> str:
    key = _UNIT_ALIASES.get(unit.strip().lower().replace(" ", ""))
    if key is None:
        raise UnitError(f"unknown concentration unit {unit!r}")
    return key


def ppb_to_ugm3(pollutant: str, ppb: float) -> float:
    return ppb * MOLECULAR_WEIGHT_G_PER_MOL[pollutant] / MOLAR_VOLUME_L_PER_MOL


def ugm3_to_ppb(pollutant: str, ugm3: float) -> float:
    return ugm3 * MOLAR_VOLUME_L_PER_MOL / MOLECULAR_WEIGHT_G_PER_MOL[pollutant]


def ugm3_to_ppm(pollutant: str, ugm3: float) -> float:
    return ugm3_to_ppb(pollutant, ugm3) / 1000.0


def to_canonical(pollutant: str, value: float | None, unit: str) -> float | None:
    """Convert ``value`` in ``unit`` to µg/m³. None and NaN stay None (never 0)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    key = normalise_unit(unit)
    if key == "ugm3":
        return float(value)
    if pollutant not in MOLECULAR_WEIGHT_G_PER_MOL:
        raise UnitError(f"{pollutant} reported in {unit!r}: no molecular weight to convert a mixing ratio")
    ppb = float(value) * (1000.0 if key == "ppm" else 1.0)
    return ppb_to_ugm3(pollutant, ppb)


def unit_slug(unit: str | None) -> str:
    """A unit as an id-safe suffix for ``extra`` keys: ``μg/m³`` → ``ugm3``, ``grains/m³`` → ``grains_m3``."""
    if not unit or not unit.strip():
        return ""
    try:
        return normalise_unit(unit)
    except UnitError:
        pass
    text = unit.strip().lower().replace("µ", "u").replace("μ", "u").replace("³", "3").replace("²", "2")
    text = text.replace("%", "pct").replace("°", "deg")
    return "_".join(part for part in "".join(c if c.isalnum() else " " for c in text).split())
