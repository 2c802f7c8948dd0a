"""xd.colour_map: spec geopixe.md 5.1-5.3 computed by hand on the real sample."""

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr

import xrfdask as xd
from xrfdask.colour import colour_weights, scatter_energy
from xrfdask.errors import ConfigError

# matplotlib's hsv anchors (spec 5.2): (t, value) per channel.
HSV = {
    "red": [(0, 1), (0.15873, 1), (0.174603, 0.96875), (0.333333, 0.03125), (0.349206, 0),
            (0.666667, 0), (0.68254, 0.03125), (0.84127, 0.96875), (0.857143, 1), (1, 1)],
    "green": [(0, 0), (0.15873, 0.9375), (0.174603, 1), (0.507937, 1), (0.666667, 0.0625),
              (0.68254, 0), (1, 0)],
    "blue": [(0, 0), (0.333333, 0), (0.349206, 0.0625), (0.507937, 1), (0.84127, 1),
             (0.857143, 0.9375), (1, 0.09375)],
}  # fmt: skip


def hsv_by_hand(n=4096, k=2044):
    t = np.arange(k) / (k - 1)
    w = np.zeros((n, 3))
    for j, name in enumerate(("red", "green", "blue")):
        x, y = np.array(HSV[name]).T
        w[:k, j] = np.interp(t, x, y)
    w[k:] = (1, 0, 0)
    return w


def test_hsv_weights_are_the_spec_table():
    energy = np.arange(4096) * 0.01
    got = colour_weights(energy, "hsv", 17.44)
    # k = 2044: the channel nearest 17.44 + 3 keV; matplotlib's anchors are rounded in the spec.
    np.testing.assert_allclose(got, hsv_by_hand(), atol=2e-5)
    assert (got[2044:] == (1, 0, 0)).all() and tuple(got[0]) == (1, 0, 0)


def test_hsv_white_landmarks():
    energy = np.arange(4096) * 0.01
    w = colour_weights(energy, "hsv_white", 17.44)
    assert (w[:100] == (1, 0, 1)).all() and (w[1744:] == (1, 1, 1)).all()
    for kev, colour in [(3.35, (1, 0, 0)), (5.7, (1, 1, 0)), (8.05, (0, 1, 0)),
                        (10.4, (0, 1, 1)), (12.7, (0, 0, 1)), (15.1, (1, 0, 1))]:  # fmt: skip
        np.testing.assert_allclose(w[int(round(kev / 0.01))], colour, atol=0.02)


def _by_hand(dense, weights, swap=False):
    s = dense.sum(axis=2, dtype=np.float64)
    sums = s @ weights / dense.shape[-1]
    if swap:
        sums = sums[..., [0, 2, 1]]
    return sums / sums.max()


@pytest.mark.parametrize("scheme", ["hsv", "hsv_white"])
def test_the_sample_by_hand(sample_path, sample_dense, scheme):
    ds = xd.open_geopixe(sample_path)
    out = xd.colour_map(ds, scheme)
    assert isinstance(out.rgb.data, da.Array)  # lazy
    got = out.compute()
    weights = colour_weights(ds.energy.values, scheme, scatter_energy(ds))
    want = _by_hand(sample_dense, weights)
    np.testing.assert_allclose(got.rgb.values, want, rtol=1e-12)
    assert got.rgb.max() == 1.0 and got.image.dtype == np.uint8
    # The brightest value stays the brightest (the originals wrap it to black).
    brightest = np.unravel_index(np.argmax(want), want.shape)
    assert got.image.values[brightest] == 255
    np.testing.assert_array_equal(got.image.values, np.minimum(want * 256, 255).astype(np.uint8))


def test_readoutxfm_compat_reproduces_its_swap_and_wrap(sample_path, sample_dense):
    ds = xd.open_geopixe(sample_path)
    got = xd.colour_map(ds, compat="readoutxfm").compute()
    weights = hsv_by_hand()  # ReadoutXFM's 17.44 keV: k = 2044
    want = _by_hand(sample_dense, colour_weights(np.arange(4096) * 0.01, "hsv", 17.44), swap=True)
    np.testing.assert_allclose(got.rgb.values, want, rtol=1e-12)
    np.testing.assert_allclose(  # "green" holds the blue-weighted sum
        got.rgb.values[..., 1], _by_hand(sample_dense, weights)[..., 2], rtol=1e-3
    )
    brightest = np.unravel_index(np.argmax(want), want.shape)
    assert got.image.values[brightest] == 0  # 1.0 x 256 wraps to 0 in uint8, as the original
    fixed = xd.colour_map(ds, elastic=17.44).compute()
    np.testing.assert_allclose(fixed.rgb.values[..., 1], got.rgb.values[..., 2], rtol=1e-12)


def test_any_tube_nearest_channel_never_float_equality():
    ds = xd.datasets.example_dataset(shape=(4, 5))
    ds.attrs["tube_element"] = "Cu"  # 8.04 keV: not on the 10 eV grid (xfmkit fails here)
    energy = ds.energy.values
    assert scatter_energy(ds) == pytest.approx(8.041, abs=0.005)
    w = xd.colour_map(ds, "hsv_white").weights.values
    hi = int(np.argmin(np.abs(energy - scatter_energy(ds))))
    # White from the scatter channel on; the ramp's last sample (t = 1) is white too, as xfmkit's.
    assert (w[hi:] == 1).all() and not (w[hi - 2] == 1).all()
    rgb = xd.colour_map(ds, "hsv", elastic=8.0).rgb.compute()
    assert float(rgb.max()) == 1.0


def test_one_pass_and_chunk_invariance():
    ds = xd.datasets.example_dataset(shape=(9, 6))
    reads = []

    def counted(block):
        reads.append(1)
        return block

    lazy = ds.assign(spectra=ds.spectra.chunk({"y": 2}))
    meta = np.empty((0, 0, 0, 0), dtype=lazy.spectra.dtype)  # no call to infer it
    lazy["spectra"].data = lazy.spectra.data.map_blocks(counted, meta=meta)
    out = xd.colour_map(lazy)
    assert reads == []  # building computes nothing
    with dask.config.set(scheduler="sync"):
        got = out.compute()
    assert len(reads) == 5  # each block once, the maximum included
    whole = xd.colour_map(ds.assign(spectra=ds.spectra.chunk({"y": -1}))).compute()
    xr.testing.assert_allclose(got.rgb, whole.rgb, rtol=1e-12)


def test_bad_input():
    ds = xd.datasets.example_dataset(shape=(3, 3))
    with pytest.raises(ConfigError, match="scheme='rainbow'"):
        xd.colour_map(ds, "rainbow")
    with pytest.raises(ConfigError, match="names no tube element"):
        xd.colour_map(ds.assign_attrs(tube_element=None))
    with pytest.raises(ConfigError, match="compat='readoutxfm' is ReadoutXFM's 'hsv'"):
        xd.colour_map(ds, "hsv_white", compat="readoutxfm")
    with pytest.raises(ConfigError, match="no 'spectra'"):
        xd.colour_map(ds.drop_vars("spectra"))


@pytest.mark.parametrize("scheme", ["hsv", "hsv_white"])
def test_sparse_records_give_the_dense_blocks_sums(sample_path, scheme):
    ds = xd.open_geopixe(sample_path, chunks={"y": 3})
    fast = xd.colour_map(ds, scheme)
    layers = fast.rgb.data.__dask_graph__().layers
    assert not any(name.startswith("geopixe-read-") for name in layers)  # no dense decode
    dense = xd.colour_map(ds.assign(spectra=ds.spectra + 0), scheme)  # not the reader's array
    assert any(name.startswith("geopixe-read-") for name in dense.rgb.data.__dask_graph__().layers)
    np.testing.assert_allclose(fast.rgb.values, dense.rgb.values, rtol=1e-12)
    np.testing.assert_array_equal(fast.image.values, dense.image.values)
