"""Turning a source's value into a canonical number without ever inventing one.

null stays null; text that is not a number, NaN/Infinity and the -9999-style sentinels become
null *with a flag* (``<field>:non_numeric`` / ``<field>:sentinel``) so the Spark job can
quarantine with a reason. Negative and absurd numbers are kept as reported; the range flags come
from ``schemas.reading.build_reading``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from schemas.units import UnitError, to_canonical

SENTINELS = frozenset({-9999.0, -999.0, -99999.0})
DEFAULT_NA = frozenset({"", "na", "n/a", "nan", "null", "none", "-"})


@dataclass
class CleanValues:
    """The named values, the extras and the flags of one reading, accumulated field by field."""

    values: dict[str, float | None] = field(default_factory=dict)
    extra: dict[str, float | None] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)

    def flag(self, name: str, reason: str) -> None:
        text = f"{name}:{reason}"
        if text not in self.flags:
            self.flags.append(text)


def to_number(value: Any, name: str, out: CleanValues, na_values: frozenset[str] = DEFAULT_NA) -> float | None:
    """A float, or None (flagged on ``out`` when the source sent something that is not a number)."""
    if value is None:
        return None
    if isinstance(value, bool):
        out.flag(name, "non_numeric")
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in na_values:
            return None
        try:
            number = float(text)
        except ValueError:
            out.flag(name, "non_numeric")
            return None
    elif isinstance(value, int | float):
        number = float(value)
    else:
        out.flag(name, "non_numeric")
        return None
    if math.isnan(number) or math.isinf(number):
        out.flag(name, "non_numeric")
        return None
    if number in SENTINELS:
        out.flag(name, "sentinel")
        return None
    return number


def to_canonical_number(pollutant: str, value: Any, unit: str, out: CleanValues) -> float | None:
    """``to_number`` then the unit conversion; an unconvertible unit is null + ``:unit_unknown``."""
    number = to_number(value, pollutant, out)
    if number is None:
        return None
    try:
        return to_canonical(pollutant, number, unit)
    except UnitError:
        out.flag(pollutant, "unit_unknown")
        return None
