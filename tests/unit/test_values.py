"""Bad source values never become zeros."""

from __future__ import annotations

import pytest

from collectors.values import CleanValues, to_canonical_number, to_number

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("value", "expected", "flags"),
    [
        (None, None, []),
        ("NA", None, []),
        ("12.5", 12.5, []),
        (7, 7.0, []),
        ("n.d.", None, ["pm25:non_numeric"]),
        (True, None, ["pm25:non_numeric"]),
        (float("nan"), None, ["pm25:non_numeric"]),
        (-9999.0, None, ["pm25:sentinel"]),
        (-3.0, -3.0, []),  # kept; the range flag is added by build_reading
    ],
)
def test_to_number(value, expected, flags):
    out = CleanValues()
    assert to_number(value, "pm25", out) == expected
    assert out.flags == flags


def test_unknown_unit_is_null_and_flagged():
    out = CleanValues()
    assert to_canonical_number("pm25", 3.0, "particles/cm³", out) is None
    assert out.flags == ["pm25:unit_unknown"]
