"""X-ray physics helpers against xraylib and PyMca's own tables."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xraylib

from xrfdask.physics import (
    edge_energy,
    element_symbol,
    fwhm,
    group_lines,
    iupac_lines,
    pymca_shells,
    radiative_group_lines,
)

MO_KA = ((17.479, 1.0),)


def test_element_symbol_is_pymca_canonical():
    assert element_symbol("FE") == "Fe" and element_symbol(" pb ") == "Pb"
    assert element_symbol("Xx") is None and element_symbol(26) is None
    assert element_symbol("Fee") is None


def test_pymca_shells_are_pymca_rays():
    from PyMca5.PyMcaPhysics.xrf import Elements

    assert pymca_shells("Pb") == tuple(r[: -len(" xrays")] for r in Elements.Element["Pb"]["rays"])
    assert "K" in pymca_shells("Fe") and "M" not in pymca_shells("Fe")


def test_iupac_lines_are_xraylib_macros_in_name_order():
    lines = iupac_lines()
    names = [f"{a}{b}_LINE" for a, b, _ in lines]
    assert names == sorted(names)
    assert ("K", "L3", xraylib.KL3_LINE) in lines and ("L3", "M5", xraylib.L3M5_LINE) in lines


def test_fwhm_is_pymca_resolution_for_scalars_and_arrays():
    # FWHM² = noise² + 2.3548² fano ε E, ε = 3.85 eV: Mn Kα at 0.1 keV noise is about 0.156 keV.
    expected = math.sqrt(0.1**2 + 2.3548**2 * 0.114 * 0.00385 * 5.9)
    assert fwhm(5.9, 0.1, 0.114) == pytest.approx(expected, rel=1e-15)
    assert isinstance(fwhm(5.9, 0.1, 0.114), float)
    got = fwhm(np.array([0.0, 5.9, -1.0]), 0.1, 0.114)
    np.testing.assert_allclose(got, [0.1, expected, 0.1], rtol=1e-15)


def test_group_lines_under_excitation_and_radiative_fallback():
    zr = xraylib.SymbolToAtomicNumber("Zr")
    assert edge_energy(zr, "K") == pytest.approx(17.998, abs=1e-3)
    assert group_lines(zr, "K", MO_KA) == ()  # 17.479 keV is below the Zr K edge
    radiative = radiative_group_lines(zr, "K")
    strongest = max(radiative, key=lambda el: el[1])
    assert strongest[1] == 1.0
    assert strongest[0] == pytest.approx(xraylib.LineEnergy(zr, xraylib.KL3_LINE))
    fe = xraylib.SymbolToAtomicNumber("Fe")
    ka = group_lines(fe, "Ka", MO_KA)
    kb = group_lines(fe, "Kb", MO_KA)
    assert all(6.3 < e < 6.5 for e, _ in ka) and all(7.0 < e < 7.2 for e, _ in kb)
    assert max(r for _, r in group_lines(fe, "K", MO_KA)) == 1.0
    pb = xraylib.SymbolToAtomicNumber("Pb")
    assert edge_energy(pb, "L") == pytest.approx(xraylib.EdgeEnergy(pb, xraylib.L3_SHELL))
    assert edge_energy(pb, "M") == pytest.approx(xraylib.EdgeEnergy(pb, xraylib.M5_SHELL))
