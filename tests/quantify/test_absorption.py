"""Self-absorption correction (spec 6.5) on small arrays, by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr
import xraylib

from xrfdask.io.cnc import Cnc
from xrfdask.physics import fwhm
from xrfdask.quantify import absorption


def _da(values, dims):
    return xr.DataArray(np.asarray(values, dtype=float), dims=dims)


def test_compat_windows_are_six_channels_at_the_cfg_calibration():
    calib = np.array([[0.05, 0.01, 0.1, 0.114]])
    lo, hi, side = absorption.window_bounds(np.array([6.4039]), calib, 2048, compat=True)
    i = math.floor((6.4039 - 0.05) / 0.01)  # last channel at or below E
    assert (lo[0, 0], hi[0, 0]) == (i - 3, i + 3) and side[0, 0] == 0


def test_default_windows_span_one_fwhm_with_side_bands():
    calib = np.array([[0.0, 0.0125, 0.1, 0.114]])
    e = 7.058
    lo, hi, side = absorption.window_bounds(np.array([e]), calib, 2048, compat=False)
    w = fwhm(e, 0.1, 0.114)
    assert lo[0, 0] == math.ceil((e - w) / 0.0125) and hi[0, 0] == math.floor((e + w) / 0.0125) + 1
    assert side[0, 0] == max(round(w / 2 / 0.0125), 2)


def test_window_sums_subtract_the_side_band_level():
    rng = np.random.default_rng(0)
    spectra = rng.uniform(0, 10, size=(3, 2, 1, 50))
    lo, hi, side = np.array([[10, 30]]), np.array([[15, 36]]), np.array([[2, 0]])
    sums = absorption.window_sums(_da(spectra, ("y", "x", "detector", "channel")), lo, hi, side)
    got = sums.values
    bands = spectra[..., 8:10].sum(-1) + spectra[..., 15:17].sum(-1)
    np.testing.assert_allclose(got[..., 0], spectra[..., 10:15].sum(-1) - bands * 5 / 4)
    np.testing.assert_allclose(got[..., 1], spectra[..., 30:36].sum(-1))


def test_ratio_cleaning_rules():
    r_th = xr.DataArray([7.0], dims="absorber", coords={"absorber": ["Fe"]})
    ia = [[[[700.0], [0.5], [100.0], [10.0], [600.0]]]]  # (y=1, x=1, detector=5, absorber)
    ib = [[[[100.0], [1.0], [0.5], [1000.0], [100.0]]]]
    sums = xr.concat([_da(ia, ("y", "x", "detector", "window")),
                      _da(ib, ("y", "x", "detector", "window"))], "window")  # fmt: skip
    sums = sums.transpose("y", "x", "detector", "window")
    r = absorption.ratios(sums, r_th).values[0, 0, :, 0]
    # 7 = R_th; Ia<1 -> 1 and Ib<=1 -> Ia/R_th -> R_th; Ib<=1 -> R_th; 0.01 <= 0.55 R_th -> R_th;
    # 6 kept (between 0.55 R_th and R_th)
    assert r.tolist() == [7.0, 7.0, 7.0, 7.0, 6.0]
    big = sums.copy()
    big[0, 0, 0, 0] = 800.0  # R_exp > R_th -> R_th
    assert absorption.ratios(big, r_th).values[0, 0, 0, 0] == 7.0


def test_rhot_per_absorber_max_and_correction_cutoff():
    r_th = xr.DataArray([7.0, 6.0], dims="absorber")
    r_exp = _da([[[[6.0, 6.0], [7.0, 5.5]]]], ("y", "x", "detector", "absorber"))
    mu_a = xr.DataArray([100.0, 50.0], dims="absorber")
    mu_b = xr.DataArray([80.0, 40.0], dims="absorber")
    rho = absorption.rhot(r_exp, r_th, mu_a, mu_b).values[0, 0]
    fe = (math.log(6.0) - math.log(7.0)) / (80.0 - 100.0)
    zn = (math.log(5.5) - math.log(6.0)) / (40.0 - 50.0)
    assert rho[0] == pytest.approx(max(fe, 0.0)) and rho[1] == pytest.approx(zn)
    mu_n = xr.DataArray([50.0, 1e5], dims="line")
    f = absorption.correction_factors(absorption.rhot(r_exp, r_th, mu_a, mu_b), mu_n).values
    assert f[0, 0, 0, 0] == pytest.approx(math.exp(fe * 50.0))
    assert f[0, 0, 0, 1] == 1.0  # exp(rho t mu) > 1000: not corrected


def test_absorber_constants_from_xraylib():
    glass = Cnc("", "glass", 2500.0, 1.0, 10.0, np.array([8, 14]), np.array([5e5, 5e5]),
                np.zeros(2))  # fmt: skip
    c = absorption.absorbers(["Fe"], glass, ["Fe K", "Zn K"], compat=False)
    fe = 26
    assert c.ratio_th[0] == pytest.approx(
        xraylib.RadRate(fe, xraylib.KL3_LINE) / xraylib.RadRate(fe, xraylib.KM3_LINE)
    )
    e_b = xraylib.LineEnergy(fe, xraylib.KM3_LINE)
    mu_b = 0.5 * xraylib.CS_Total(8, e_b) + 0.5 * xraylib.CS_Total(14, e_b)
    assert c.mu_b[0] == pytest.approx(mu_b)
    e_zn = xraylib.LineEnergy(30, xraylib.KL3_LINE)
    assert c.mu_lines[1] == pytest.approx(
        0.5 * xraylib.CS_Total(8, e_zn) + 0.5 * xraylib.CS_Total(14, e_zn)
    )


def test_sum_correction_is_the_mean_factor_over_valid_pixels():
    from tests.quantify.synth import make_nrm, make_ref
    from xrfdask.datasets import quantification_map
    from xrfdask.quantify import quantify

    raw = quantification_map({"Fe": 2e5, "Zn": 2e4}, shape=(4, 4), sensitivity=1e-4,
                             layer=(0.004, {"O": 0.5, "Si": 0.5}))  # fmt: skip
    area = raw["spectra"].isel(channel=slice(500, 580)).sum("channel").values
    nrm = make_nrm(np.stack([area, area / 4], -1), ["Fe K", "Zn K"], raw["I0"].values)
    valid = np.ones((4, 4, 1), dtype=bool)
    valid[0, 0] = False
    nrm["valid"] = (("y", "x", "detector"), valid)
    nrm["normalised"] = nrm["normalised"].where(nrm["valid"])
    spectra = raw["spectra"].values.copy()
    spectra[0, 0, 0, 560:570] += 1e6  # the invalid pixel: a huge K-beta, so rho t = 0, f = 1
    raw["spectra"] = (raw["spectra"].dims, spectra)
    glass = Cnc("", "g", 2500.0, 1.0, 10.0, np.array([8, 14]), np.array([5e5, 5e5]), np.zeros(2))
    ref = make_ref(["Fe K", "Zn K"], [4.0, 5.0], [0.2, 0.5])
    q = quantify(nrm, ref, absorb=(["Fe"], glass), raw=raw).compute()
    f = q["absorption_correction"].values[..., 0, :]
    p = nrm["sum_area"].values[0] / nrm.attrs["I0"]
    want = p * f[valid[..., 0]].mean(axis=0) / np.array([4.0, 5.0])
    np.testing.assert_allclose(q["sum_concentration"].values[0], want)
    assert not np.allclose(f.reshape(-1, 2).mean(axis=0), f[valid[..., 0]].mean(axis=0))
    qc = quantify(nrm, ref, absorb=(["Fe"], glass), raw=raw, compat="xrf_proc").compute()
    fc = qc["absorption_correction"].values[..., 0, :]
    np.testing.assert_allclose(  # xrf_proc: the mean over every pixel (spec 12.17)
        qc["sum_concentration"].values[0], p * fc.reshape(-1, 2).mean(axis=0) / [4.0, 5.0]
    )


def test_detector_efficiency_from_the_fit_configuration():
    from xrfdask.datasets import ELEMENTS, example_dataset
    from xrfdask.fit import config_to_text, make_fit_config

    cfg = make_fit_config(example_dataset(shape=(2, 2)), list(ELEMENTS))
    layers = absorption.detector_layers([0], None, config_to_text(cfg))[0]
    assert ("Be1", 1.848, 0.00125, False) in layers and layers[-1][3]  # window, crystal
    e = 6.4
    want = math.exp(-xraylib.CS_Total_CP("Be1", e) * 1.848 * 0.00125)
    want *= math.exp(-xraylib.CS_Total_CP("Si1", e) * 2.33 * 4e-6)
    want *= 1 - math.exp(-xraylib.CS_Total_CP("Si1", e) * 2.33 * 0.045)
    assert absorption.efficiency(layers, e) == pytest.approx(want)
    assert absorption.detector_layers([0], (0.0, 0.01)) == [[]]  # a bare calibration: none
