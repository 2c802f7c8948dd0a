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


def _synthetic(truth, seed=0):
    """The example map with dead times from a known monotone curve of its own count rates."""
    ds = xd.datasets.example_dataset(shape=(24, 20))
    rng = np.random.default_rng(seed)
    rate = ds.spectra.sum("channel").values.astype(np.float64) / ds.attrs["dwell_ms"]
    dt = truth(rate) + rng.normal(0, 0.3, rate.shape)
    outliers = rng.random(rate.shape) < 0.03
    dt[outliers] = rng.uniform(60, 90, outliers.sum())  # spikes the fit must ignore
    dt[..., 1] = 0.0  # detector 1 never measured
    return ds.assign(deadtime=(("y", "x", "detector"), dt.astype(np.float32))), rate


def test_fit_model_learns_the_maps_own_curve():
    def truth(r):
        return 100 * (1 - np.exp(-r / 80))

    ds, rate = _synthetic(truth)
    out = predict_deadtime(ds, "fit")
    pred = out.deadtime.values
    assert missing_deadtime(ds) == [1]
    # Detector 1 took detector 0's curve: close to the truth at its own rates.
    inside = (rate[..., 1] > np.percentile(rate[..., 0], 5)) & (
        rate[..., 1] < np.percentile(rate[..., 0], 95)
    )
    err = np.abs(pred[..., 1][inside] - truth(rate[..., 1][inside]))
    assert np.median(err) < 0.5 and err.max() < 2.5
    res = out.deadtime_fit_residual.values
    assert 0.1 < res[0] < 0.5 and np.isnan(res[1])  # the noise level (0.3 %), spikes ignored
    assert np.all(np.diff(pred[..., 0].ravel()[np.argsort(rate[..., 0].ravel())]) >= -1e-9)


def test_fit_model_needs_measurements(sample_path):
    ds = xd.open_geopixe(sample_path)
    none = ds.assign(deadtime=ds.deadtime * 0)
    with pytest.raises(ConfigError, match="model='fit' needs measured dead times"):
        predict_deadtime(none, "fit")


def test_counts_come_from_the_sparse_records_without_dense_blocks(sample_path, sample_dense):
    from xrfdask.deadtime import pixel_counts

    ds = xd.open_geopixe(sample_path, chunks=3)
    counts = pixel_counts(ds)
    assert counts.data.name.startswith("geopixe-total-")  # the reader's fast path
    keys = {k[0] if isinstance(k, tuple) else k for k in dict(counts.data.__dask_graph__())}
    assert all(k.startswith("geopixe-total-") for k in keys)  # no dense read task in the graph
    got = counts.values
    np.testing.assert_array_equal(got, sample_dense.sum(axis=3))
    # Anything else (a sliced map) takes the dense sum, with the same numbers.
    part = pixel_counts(ds.isel(y=slice(2, 7)))
    np.testing.assert_array_equal(part.values, sample_dense[2:7].sum(axis=3))


def test_fill_deadtime_sets_every_record_and_keeps_absent_pixels(sample_path):
    ds = xd.open_geopixe(sample_path)
    ds = ds.assign(present=ds.present.where(ds.x != ds.x[3], False))  # a column without records
    filled = xd.fill_deadtime(ds, 15)
    assert filled.attrs["deadtime_model"] == "constant"
    np.testing.assert_array_equal(filled.deadtime_measured.values, ds.deadtime.values)
    values = filled.deadtime.transpose("y", "x", "detector").values
    assert values.dtype == np.float32
    assert np.isnan(values[:, 3]).all()
    np.testing.assert_array_equal(np.delete(values, 3, axis=1), 15.0)
    with pytest.raises(ConfigError, match="value=101; expected a percentage 0..100"):
        xd.fill_deadtime(ds, 101)
