"""Line families, α1 energies and attenuation: against PyMca's and xraylib's own tables."""

import numpy as np
import pytest
import xraylib
from PyMca5.PyMcaPhysics import Elements

from xrfdask import physics
from xrfdask.io.cnc import Cnc


@pytest.mark.parametrize(
    "line, element, family",
    [("Fe K", "Fe", "K"), ("Pb L", "Pb", "L"), ("Pb L3", "Pb", "L"), ("Pb M", "Pb", "M"),
     ("Ba M5", "Ba", "M"), ("Fe Ka", "Fe", "K"), ("Compt", None, None), ("Rayl001", None, None)],
)  # fmt: skip
def test_line_element_and_family(line, element, family):
    assert physics.line_element(line) == element
    assert physics.line_family(line) == family


def test_alpha1_energies_from_either_table():
    assert physics.alpha1_energy("Fe K") == Elements.getxrayenergy("Fe", "KL3")
    assert physics.alpha1_energy("Pb L3") == Elements.getxrayenergy("Pb", "L3M5")
    assert physics.alpha1_energy("Pb M") == Elements.getxrayenergy("Pb", "M5N7")
    assert physics.alpha1_energy("Fe K", "xraylib") == xraylib.LineEnergy(26, xraylib.KL3_LINE)
    with pytest.raises(ValueError, match="'Compt' is not an element's line group"):
        physics.alpha1_energy("Compt")


def test_mixture_attenuation_is_the_weighted_sum():
    cnc = Cnc("", "FeO", 5000.0, 0, 10, np.array([26, 8]), np.array([7e5, 3e5]), np.zeros(2))
    e = 8.04
    want = 0.7 * Elements.getmassattcoef("Fe", e)["total"][0]
    want += 0.3 * Elements.getmassattcoef("O", e)["total"][0]
    assert physics.composition_attenuation(cnc, e) == pytest.approx(want, rel=1e-12)
    got = physics.composition_attenuation(cnc, [e, 17.0], "xraylib")
    np.testing.assert_allclose(
        got, [0.7 * xraylib.CS_Total(26, x) + 0.3 * xraylib.CS_Total(8, x) for x in (e, 17.0)]
    )
    assert physics.mass_attenuation("Fe", 6.4) == pytest.approx(71.041, rel=1e-4)


def test_radiative_rates():
    ratio = physics.radiative_rate("Fe", "KL3") / physics.radiative_rate(26, "KM3")
    assert ratio == pytest.approx(xraylib.RadRate(26, xraylib.KL3_LINE) /
                                  xraylib.RadRate(26, xraylib.KM3_LINE))  # fmt: skip
    assert physics.radiative_rate("H", "KL3") == 0.0
