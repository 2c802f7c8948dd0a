"""xrfdask.plot.correlation: xrf_proc's correlation matrix (spec 8.6) on a seeded sample."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from matplotlib.image import imread
from scipy.stats import gaussian_kde

import xrfdask as xd
import xrfdask.plot
from xrfdask.plot.correlation import _kde_grid, correlation_sample, correlation_stats, stars

LINES = ["Ca K", "Fe K", "Zn K", "Sr K"]


@pytest.fixture(scope="module")
def fit(example_path):
    ds = xd.open_geopixe(example_path)
    return xd.fit(ds, xd.make_fit_config(ds, ["Ca", "Fe", "Zn", "Sr"])).persist()


def printed(fig, gid):
    return [t for ax in fig.axes for t in ax.texts if t.get_gid() == gid]


def test_png_size_and_printed_r2_and_r_match_numpy(tmp_path, fit):
    png = tmp_path / "corr.png"
    fig = xrfdask.plot.correlation(fit, png, lines=LINES, detector=1, sample=1500, seed=3,
                                   dpi=60)  # fmt: skip
    assert imread(png).shape[:2] == (600, 600)  # 10 x 10 in at 60 dpi
    n = len(LINES)
    assert len(fig.axes) == n * n
    sample = correlation_sample(fit, lines=LINES, detector=1, sample=1500, seed=3)
    assert sample.sizes["pixel"] == 1500
    table = sample.values.astype(float)
    # the sample is the seeded pixels of the map
    flat = np.sort(np.random.default_rng(3).choice(48 * 64, 1500, replace=False))
    iy, ix = np.divmod(flat, 64)
    want = fit.peak_area.sel(detector=1, line=LINES).values[iy, ix]
    np.testing.assert_array_equal(table, want)
    r2_texts, r_texts = printed(fig, "r2"), printed(fig, "r")
    assert len(r2_texts) == len(r_texts) == n * (n - 1) // 2
    for i in range(n):
        for j in range(n):
            ax = fig.axes[i * n + j]
            x, y = table[:, j], table[:, i]
            r = np.corrcoef(x, y)[0, 1]
            if j > i:
                (text,) = [t.get_text() for t in ax.texts if t.get_gid() == "r2"]
                a, b = np.polyfit(x, y, 1)
                r2 = np.sum((a * x + b - y.mean()) ** 2) / np.sum((y - y.mean()) ** 2)
                assert r2 == pytest.approx(r**2)
                assert text == f"R² = {r2:.3f}"
            elif j < i:
                (text,) = [t.get_text() for t in ax.texts if t.get_gid() == "r"]
                assert text.startswith(f"r = {r:.2f}")
                # significance: t statistic of r, two-sided
                from scipy import stats as st

                t = r * np.sqrt((len(x) - 2) / (1 - r**2))
                p = 2 * st.t.sf(abs(t), len(x) - 2)
                assert text == f"r = {r:.2f}{stars(p)}"
            else:
                assert not ax.texts and ax.collections  # the histogram
    # the axis labels: names on the bottom row and the first column only
    assert [fig.axes[n * (n - 1) + j].get_xlabel() for j in range(n)] == LINES
    assert [fig.axes[i * n].get_ylabel() for i in range(n)] == LINES
    assert fig.axes[0].get_xlabel() == "" and fig.axes[1].get_ylabel() == ""


def test_seeded_sample_and_whole_map(fit):
    a = correlation_sample(fit, lines=LINES, sample=500, seed=1)
    b = correlation_sample(fit, lines=LINES, sample=500, seed=1)
    c = correlation_sample(fit, lines=LINES, sample=500, seed=2)
    np.testing.assert_array_equal(a.values, b.values)
    assert not np.array_equal(a.y.values * 1e3 + a.x.values, c.y.values * 1e3 + c.x.values)
    every = correlation_sample(fit, lines=LINES, sample=None)
    assert every.sizes["pixel"] == 48 * 64
    assert correlation_sample(fit, lines=LINES, sample=10**6).sizes["pixel"] == 48 * 64


def test_nan_pixels_left_out_and_constant_variables(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.gamma(2.0, 10.0, (20, 30, 1, 3))
    data[..., 2] = 5.0  # constant
    data[0, :5, 0, 0] = np.nan
    res = xr.Dataset(
        {"normalised": (("y", "x", "detector", "line"), data)},
        coords={"line": ["A K", "B K", "C K"], "detector": [0]},
    )
    sample = correlation_sample(res)
    assert sample.sizes["pixel"] == 20 * 30 - 5
    fig = xrfdask.plot.correlation(res, tmp_path / "c.png", dpi=30)
    assert len(printed(fig, "r2")) == 1 and len(printed(fig, "r")) == 1  # only A-B
    st = correlation_stats(sample)
    assert np.isnan(st.r2.sel(row="A K", column="C K")) and np.isfinite(st.r.values[0, 1])


def test_binned_kde_matches_scipy():
    rng = np.random.default_rng(1)
    x = rng.gamma(2.0, 1.0, 800)
    y = x + rng.normal(0.0, 1.0, 800)
    xg, yg, density = _kde_grid(x, y)
    assert xg[0] == pytest.approx(x.min() - 0.05 * np.ptp(x))
    assert yg[-1] == pytest.approx(y.max() + 0.05 * np.ptp(y))
    gx, gy = np.meshgrid(xg, yg)
    want = gaussian_kde([x, y])([gx.ravel(), gy.ravel()]).reshape(gx.shape)
    assert np.abs(density - want).max() < 0.03 * want.max()
    assert _kde_grid(x, 2 * x) is None  # singular: no contours
