"""xrfdask.plot.rgb: three element maps as red, green and blue (Xims plot_rgb, spec 8.7)."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.colors import to_rgb
from matplotlib.image import imread

import xrfdask as xd
import xrfdask.plot

LINES = ["Fe K", "Ca K", "Zn K"]


@pytest.fixture(scope="module")
def fit(example_path):
    ds = xd.open_geopixe(example_path)
    return xd.fit(ds, xd.make_fit_config(ds, ["Ca", "Fe", "Zn"])).persist()


def test_png_channels_and_legend(tmp_path, fit):
    png = tmp_path / "rgb.png"
    fig = xrfdask.plot.rgb(fit, LINES, png, detector=1, dpi=50)
    w, h = fig.get_size_inches()
    assert imread(png).shape[:2] == (round(h * 50), round(w * 50))
    ax = fig.axes[0]
    image = np.asarray(ax.images[0].get_array())
    assert image.shape == (48, 64, 3)
    for c, line in enumerate(LINES):
        m = np.clip(fit.peak_area.sel(detector=1, line=line).values.astype(float), 0, None)
        np.testing.assert_allclose(image[..., c], (m - m.min()) / (m.max() - m.min()), atol=1e-9)
    texts = ax.get_legend().get_texts()
    assert [t.get_text() for t in texts] == LINES
    assert [to_rgb(t.get_color()) for t in texts] == [to_rgb(c) for c in ("red", "green", "blue")]


def test_clim_per_channel(fit):
    fig = xrfdask.plot.rgb(fit, LINES, clim=[(0, 0.5), (0.2, 1.0), (0, 1)])
    image = np.asarray(fig.axes[0].images[0].get_array())
    fe = np.clip(fit.peak_area.sel(detector=0, line="Fe K").values.astype(float), 0, None)
    hi = fe.min() + 0.5 * (fe.max() - fe.min())
    np.testing.assert_allclose(image[..., 0], np.clip((fe - fe.min()) / (hi - fe.min()), 0, 1))
    assert (image[..., 0] == 1).sum() > (fe == fe.max()).sum()  # saturated above half the range
    ca = np.clip(fit.peak_area.sel(detector=0, line="Ca K").values.astype(float), 0, None)
    lo = ca.min() + 0.2 * (ca.max() - ca.min())
    np.testing.assert_allclose(image[..., 1], np.clip((ca - lo) / (ca.max() - lo), 0, 1))
    one = xrfdask.plot.rgb(fit, LINES, clim=(0, 0.5))
    np.testing.assert_allclose(np.asarray(one.axes[0].images[0].get_array())[..., 0],
                               image[..., 0])  # fmt: skip
    with pytest.raises(ValueError, match="three lines"):
        xrfdask.plot.rgb(fit, LINES[:2])
