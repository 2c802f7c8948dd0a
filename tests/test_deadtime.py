"""Dead-time statistics and ReadoutXFM's prediction models (spec geopixe.md 4)."""

import numpy as np
import pytest

import xrfdask as xd
from xrfdask.deadtime import (
    deadtime_stats,
    missing_deadtime,
    predict_deadtime,
    readoutxfm_cubic,
)
from xrfdask.errors import ConfigError, XrfdaskWarning


def test_sample_means_print_as_readoutxfm_prints_them(sample_path):
    stats = deadtime_stats(xd.open_geopixe(sample_path))
    assert [f"{m:.2f}" for m in stats["mean"].values] == ["23.74", "26.85"]
    assert f"{float(stats.overall_mean):.2f}" == "25.30"
    dt = xd.open_geopixe(sample_path).deadtime.values
    np.testing.assert_allclose(stats["median"].values, np.nanmedian(dt, axis=(0, 1)))
    assert stats.histogram.sum("bin").values.tolist() == stats.pixels.values.tolist()
    assert stats.histogram.sizes["bin"] == 100


def test_counts_per_pixel_and_detector(sample_path, sample_dense):
    stats = deadtime_stats(xd.open_geopixe(sample_path))
    np.testing.assert_array_equal(stats["counts"].values, sample_dense.sum(axis=3))


@pytest.mark.parametrize(
    "kcps, percent",
    [(0, 3.07), (4.08, 4.69), (10, 6.97), (25, 12.60), (50, 22.59), (75, 35.37),
     (99.73, 52.99), (150, 113.4), (200, 221.6)],
)  # fmt: skip
def test_readoutxfm_cubic_worked_values(kcps, percent):
    assert readoutxfm_cubic(kcps) == pytest.approx(percent, abs=0.01 if kcps < 150 else 0.1)


def test_predicted_readoutxfm_in_float32_and_clipped(sample_path, sample_dense):
    ds = xd.open_geopixe(sample_path)
    out = predict_deadtime(ds)
    assert out.deadtime.dtype == np.float32 and hasattr(out.deadtime.data, "dask")  # lazy
    rate = sample_dense.sum(axis=3).astype(np.float64) / ds.attrs["dwell_ms"]
    cubic = np.polynomial.Polynomial(
        [0.23438781, 0.21464015, 0.05402071, 0.02689396],
        domain=[4.08008563, 99.727441],
        window=[-1, 1],
    )
    want = (100 * cubic(rate)).astype(np.float32)  # the original's file, bit for bit
    np.testing.assert_array_equal(out.deadtime.values, want)  # the sample stays in [0, 100)
    assert int(out.deadtime_clipped) == 0
    np.testing.assert_array_equal(out.deadtime_measured.values, ds.deadtime.values)
    # A hot map: the cubic passes 100 % above ~133 kcps; clipped, and counted.
    hot = ds.assign(spectra=(ds.spectra.astype(np.uint32) * 3).astype(np.uint32))
    hot = predict_deadtime(hot)
    assert int(hot.deadtime_clipped) > 0 and float(hot.deadtime.max()) < 100
    with pytest.warns(XrfdaskWarning, match=r"\d+ pixel-detector values .* clipped"):
        predict_deadtime(hot.compute().drop_vars("deadtime_clipped"))


def test_legacy_linear_model(sample_path, sample_dense):
    ds = xd.open_geopixe(sample_path)
    out = predict_deadtime(ds, "linear")
    total = sample_dense.sum(axis=(2, 3)).astype(np.float64)
    want = np.minimum(0.8333 * (total / ds.attrs["dwell_ms"]) / 2 + 0, 95).astype(np.float32)
    for d in range(2):
        np.testing.assert_array_equal(out.deadtime.values[..., d], want)


def test_missing_and_bad_input(sample_path):
    ds = xd.open_geopixe(sample_path)
    assert missing_deadtime(ds) == []
    zeroed = ds.copy()
    zeroed["deadtime"] = ds.deadtime.where(ds.detector != 1, 0.0)
    assert missing_deadtime(zeroed) == [1]
    with pytest.raises(ConfigError, match="0.5 µs time constant, not 1.0"):
        predict_deadtime(ds, time_constant_us=1.0)
    with pytest.raises(ConfigError, match="model='magic'"):
        predict_deadtime(ds, "magic")
    with pytest.raises(ConfigError, match="no 'deadtime'"):
        deadtime_stats(ds.drop_vars("deadtime"))
