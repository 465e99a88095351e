"""The ppb/ppm ↔ µg/m³ table against values computed independently of schemas.units."""

from __future__ import annotations

import pytest

from schemas import units

pytestmark = pytest.mark.unit

# Conversion factors (µg/m³ per ppb at 25 °C, 1 atm) as published by the agencies, e.g. the UK
# DEFRA/AQEG and WHO tables: NO2 1.88, SO2 2.62, O3 1.96, CO 1.145 (per ppb; 1.145 mg/m³ per ppm).
PUBLISHED_FACTORS = {"no2": 1.88, "so2": 2.62, "o3": 1.96, "co": 1.145}

# Molecular weights summed from IUPAC standard atomic weights, independently of the module.
ATOMIC = {"C": 12.011, "N": 14.007, "O": 15.999, "S": 32.06}
FORMULAE = {"no2": {"N": 1, "O": 2}, "so2": {"S": 1, "O": 2}, "o3": {"O": 3}, "co": {"C": 1, "O": 1}}


def test_molar_volume_is_the_ideal_gas_at_25c_1atm():
    r, t, p = 8.314462618, 298.15, 101325.0
    ideal = r * t / p * 1000.0
    assert abs(units.MOLAR_VOLUME_L_PER_MOL - ideal) / ideal < 1e-3


@pytest.mark.parametrize("gas", sorted(FORMULAE))
def test_molecular_weights_match_the_formula(gas):
    expected = sum(ATOMIC[element] * n for element, n in FORMULAE[gas].items())
    assert units.MOLECULAR_WEIGHT_G_PER_MOL[gas] == pytest.approx(expected, abs=0.01)


@pytest.mark.parametrize("gas", sorted(PUBLISHED_FACTORS))
def test_one_ppb_matches_the_published_factor(gas):
    assert units.ppb_to_ugm3(gas, 1.0) == pytest.approx(PUBLISHED_FACTORS[gas], rel=5e-3)


def test_ppm_of_co_from_the_kaggle_set():
    # 1.72 ppm CO = 1720 ppb × 28.010 g/mol / 24.45 L/mol = 48177.2 / 24.45 = 1970.438 µg/m³ (worked by hand)
    assert units.to_canonical("co", 1.72, "ppm") == pytest.approx(1970.438, abs=0.001)


def test_openaq_del_norte_ozone_ppm():
    # 0.059 ppm O3 = 59 ppb × 47.997 / 24.45 = 115.82 µg/m³
    assert units.to_canonical("o3", 0.059, "ppm") == pytest.approx(115.82, abs=0.01)


@pytest.mark.parametrize("spelling", ["µg/m³", "μg/m³", "ug/m3"])
def test_both_micro_signs_are_the_canonical_unit(spelling):
    assert units.to_canonical("pm25", 12.5, spelling) == 12.5


def test_round_trip():
    for gas in FORMULAE:
        assert units.ugm3_to_ppb(gas, units.ppb_to_ugm3(gas, 37.0)) == pytest.approx(37.0)


def test_missing_stays_missing_never_zero():
    assert units.to_canonical("no2", None, "ppb") is None
    assert units.to_canonical("no2", float("nan"), "ppb") is None


def test_a_mixing_ratio_of_particles_is_refused():
    with pytest.raises(units.UnitError):
        units.to_canonical("pm25", 3.0, "ppb")
    with pytest.raises(units.UnitError):
        units.normalise_unit("furlongs")


@pytest.mark.parametrize(
    ("unit", "slug"),
    [("μg/m³", "ugm3"), ("ppm", "ppm"), ("grains/m³", "grains_m3"), ("particles/cm³", "particles_cm3"), ("", "")],
)
def test_unit_slug(unit, slug):
    assert units.unit_slug(unit) == slug
