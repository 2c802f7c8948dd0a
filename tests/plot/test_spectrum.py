"""xrfdask.plot.spectrum: sum / max / pixel / region spectra with the lines and the fit."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.image import imread

import xrfdask as xd
import xrfdask.plot
from xrfdask.plot.spectrum import line_markers, model_curves


@pytest.fixture(scope="module")
def raw(example_path):
    return xd.open_geopixe(example_path)


@pytest.fixture(scope="module")
def fit(raw):
    return xd.fit(raw, xd.make_fit_config(raw, ["Ca", "Fe", "Zn", "Sr"])).persist()


def drawn(fig, gid):
    return [ln for ln in fig.axes[0].lines if ln.get_gid() == gid]


def test_sum_spectrum_with_the_fit(tmp_path, raw, fit):
    png = tmp_path / "sum.png"
    fig = xrfdask.plot.spectrum(raw, png, fit=fit, detector=1, dpi=40)
    assert imread(png).shape[:2] == (200, 400)  # 10 x 5 in at 40 dpi
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "Energy (keV)"
    (line,) = drawn(fig, "spectrum")
    total = raw.spectra.sel(detector=1).sum(("y", "x")).values.astype(float)
    np.testing.assert_allclose(np.nan_to_num(line.get_ydata()), total)
    np.testing.assert_allclose(line.get_xdata(), raw.energy.values)
    (model,), (continuum,) = drawn(fig, "model"), drawn(fig, "continuum")
    lo, hi = fit.attrs["fit_range_channels"]
    assert model.get_xdata()[0] == pytest.approx(raw.energy.values[lo])
    assert (continuum.get_ydata() <= model.get_ydata() + 1e-6).all()
    # the model is the fit whose areas the result holds (sum_area, fit/channelXX/sum/int)
    from xrfdask.fit.config import config_from_text

    curves = model_curves(config_from_text(fit.attrs["config"]), total)
    for name in fit.line.values:
        assert curves["areas"][str(name)] == pytest.approx(
            float(fit.sum_area.sel(detector=1, line=name)), rel=1e-6
        )
    # the lines of the fit marked at their energies and labelled
    for name in fit.line.values:
        assert drawn(fig, f"line:{name}"), name
    labels = {t.get_text() for t in ax.texts}
    assert {"Fe K", "Zn K", "Rayl", "Compt"} <= labels
    (fe,) = [ln for ln in drawn(fig, "line:Fe K") if abs(ln.get_xdata()[0] - 6.404) < 0.01]


def test_pixel_region_and_max_spectra(raw, fit):
    fig = xrfdask.plot.spectrum(raw, kind=(5, 7), fit=fit, detector=0, log=False)
    (line,) = drawn(fig, "spectrum")
    np.testing.assert_allclose(line.get_ydata(), raw.spectra.isel(y=5, x=7, detector=0).values)
    assert not drawn(fig, "model")  # no per-pixel model in a fit result
    assert drawn(fig, "line:Fe K")
    region = {"y": slice(2, 6), "x": slice(10, 20)}
    fig = xrfdask.plot.spectrum(raw, kind=region, detector="sum", log=False, lines=["Pb L"])
    want = raw.spectra.isel(region).sum(("y", "x", "detector")).values
    np.testing.assert_allclose(drawn(fig, "spectrum")[0].get_ydata(), want)
    assert drawn(fig, "line:Pb L") and not drawn(fig, "line:Fe K")
    fig = xrfdask.plot.spectrum(raw, kind="max", log=False, lines=False)
    want = raw.spectra.isel(detector=0).max(("y", "x")).values
    np.testing.assert_allclose(drawn(fig, "spectrum")[0].get_ydata(), want)
    with pytest.raises(ValueError, match="kind"):
        xrfdask.plot.spectrum(raw, kind="mean")


def test_line_markers():
    fe = line_markers("Fe K")
    assert fe[0][0] == pytest.approx(6.404, abs=0.002) and fe[0][1] == 1.0
    assert any(abs(e - 7.058) < 0.005 for e, _ in fe)  # Kβ
    assert line_markers("Compt") == [] and line_markers("nonsense") == []
    matrix = [1, "x", 1, 1, 45.0, 45.0, 1, 90.0]
    config = {"fit": {"energy": [17.44, 19.6]}, "attenuators": {"Matrix": matrix}}
    assert line_markers("Rayl001", config) == [(19.6, 1.0)]
    (compton,) = line_markers("Compt", config)
    assert compton[0] == pytest.approx(17.44 / (1 + 17.44 / 511.0))
