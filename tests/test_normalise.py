"""xd.normalise: xrf_proc's norm formulas (spec 4.3) by hand, with the original's faults fixed."""

import dask
import dask.array as da
import h5py
import numpy as np
import pytest
import xarray as xr

import xrfdask as xd
from xrfdask.errors import ConfigError

NY, NX, NDET, LINES = 5, 4, 2, ["Fe K", "Zn K", "Compt"]


def raw_map(seed=0) -> xr.Dataset:
    """A small beamline-like raw map: I0, acquisition time, icr/ocr per detector."""
    rng = np.random.default_rng(seed)
    i0 = rng.uniform(900, 1100, (NY, NX))
    t = rng.uniform(0.9, 1.1, (NY, NX))
    ocr = rng.uniform(800, 1000, (NY, NX, NDET))
    icr = ocr * rng.uniform(1.05, 1.4, (NY, NX, NDET))
    ds = xr.Dataset(
        {
            "spectra": (("y", "x", "detector", "channel"), np.zeros((NY, NX, NDET, 8), "u4")),
            "I0": (("y", "x"), i0),
            "acquisition_time": (("y", "x"), t),
            "icr": (("y", "x", "detector"), icr),
            "ocr": (("y", "x", "detector"), ocr),
        },
        coords={"y": np.arange(NY) * 0.1, "x": np.arange(NX) * 0.1, "detector": [0, 1]},
    )
    return ds


def fit_result(seed=1, chunks=2) -> xr.Dataset:
    """A fit-like result in raw counts (no factors carried: normalise takes them from the map)."""
    rng = np.random.default_rng(seed)
    area = rng.uniform(50, 5000, (NY, NX, NDET, len(LINES)))
    area[0, 1, 0, 1] = -20.0  # a negative area: clipped to 0 as xrf_proc does
    error = np.sqrt(np.abs(area)) * 1.1
    dims = ("y", "x", "detector", "line")
    return xr.Dataset(
        {
            "peak_area": (dims, da.from_array(area, chunks=(chunks, -1, -1, -1))),
            "peak_area_error": (dims, da.from_array(error, chunks=(chunks, -1, -1, -1))),
            "sum_area": (("detector", "line"), rng.uniform(1e5, 1e6, (NDET, len(LINES)))),
            "sum_background": (("detector", "line"), rng.uniform(1e3, 1e4, (NDET, len(LINES)))),
        },
        coords={
            "y": np.arange(NY) * 0.1,
            "x": np.arange(NX) * 0.1,
            "detector": [0, 1],
            "line": LINES,
        },
        attrs={"deadtime_corrected": False, "method": "linear"},
    )


def by_hand(ds, fit, tmnorm=False, I0norm=None, errors="fit", valid=None):
    """Spec 4.3 with masked pixels taken out: numpy on the whole (small) arrays.

    The sums' dead-time factor is the fit's (spec 3.7: sum(icr) / sum(ocr)), over the pixels
    whose counters are valid; the I0 totals are over the fully valid pixels.
    """
    icr, ocr = ds.icr.values, ds.ocr.values
    counted = (icr > 0) & (ocr > 0)
    if valid is None:
        valid = np.ones((NY, NX, NDET), bool)
    i0, t = ds.I0.values, ds.acquisition_time.values
    normto = I0norm if I0norm is not None else i0[valid.any(-1)].max()
    f = icr / ocr
    area = np.clip(fit.peak_area.values * f[..., None], 0, None)
    sigma = {
        "fit": fit.peak_area_error.values * f[..., None],
        "poisson": np.sqrt(area * f[..., None]),  # counting error of the recorded counts
        "xrf_proc": np.sqrt(area),
    }[errors]
    den = (i0 * t if tmnorm else i0)[..., None, None]
    norm = np.where(valid[..., None], area / den * normto, np.nan)
    err = np.where(valid[..., None], sigma / den * normto, np.nan)
    dens = np.broadcast_to((i0 * t if tmnorm else i0)[..., None], valid.shape)
    total = np.where(valid, dens, 0).sum((0, 1))
    sumf = np.where(counted, icr, 0).sum((0, 1)) / np.where(counted, ocr, 0).sum((0, 1))
    p = fit.sum_area.values * sumf[:, None]
    b = fit.sum_background.values * sumf[:, None]
    pn, bn = p / total[:, None] * normto, b / total[:, None] * normto
    return {
        "normalised": norm,
        "normalised_error": err,
        "sum_area": pn,
        "sum_background": bn,
        "sum_area_error": pn * np.sqrt(p + 2 * b) / p,
        "sum_background_error": bn * np.sqrt(b) / b,
        "I0_total": total,
        "normto": normto,
    }


@pytest.mark.parametrize("tmnorm", [False, True])
@pytest.mark.parametrize("errors", ["fit", "poisson", "xrf_proc"])
def test_formulas_by_hand(tmnorm, errors):
    ds, fit = raw_map(), fit_result()
    nrm = xd.normalise(ds, fit, tmnorm=tmnorm, errors=errors)
    assert isinstance(nrm.normalised.data, da.Array)  # lazy
    want = by_hand(ds, fit, tmnorm=tmnorm, errors=errors)
    got = nrm.compute()
    for name in ("normalised", "normalised_error", "sum_area", "sum_background"):
        np.testing.assert_allclose(got[name].values, want[name], rtol=1e-12, err_msg=name)
    for name in ("sum_area_error", "sum_background_error", "I0_total"):
        np.testing.assert_allclose(got[name].values, want[name], rtol=1e-12, err_msg=name)
    assert got.attrs["I0"] == want["normto"] and got.attrs["TmNorm"] == str(tmnorm)
    assert got.attrs["error_source"] == errors and got.attrs["deadtime_source"] == "icr/ocr"
    np.testing.assert_allclose(got.time_total.values, ds.acquisition_time.values.sum())
    assert got.normalised.values[0, 1, 0, 1] == 0.0  # the negative area, clipped


def test_I0norm_and_xrf_procs_error_is_its_relative_error_times_value():
    ds, fit = raw_map(), fit_result()
    got = xd.normalise(ds, fit, I0norm=1e4, errors="xrf_proc").compute()
    want = by_hand(ds, fit, I0norm=1e4, errors="xrf_proc")
    np.testing.assert_allclose(got.normalised.values, want["normalised"], rtol=1e-12)
    # xrf_proc's relative error sqrt(I)/I, times the normalised value: the absolute error.
    area = np.clip(fit.peak_area.values * (ds.icr / ds.ocr).values[..., None], 0, None)
    with np.errstate(invalid="ignore"):
        rel = np.nan_to_num(np.sqrt(area) / area)
    np.testing.assert_allclose(got.normalised_error.values, rel * got.normalised.values)
    assert got.attrs["I0"] == 1e4


def test_bad_pixels_are_masked_never_left_unnormalised():
    ds = raw_map()
    ds["I0"][0, 0] = 0.0  # no beam
    ds["ocr"][1, 2, 0] = 0.0  # nothing counted on detector 0
    ds["icr"][3, 1, 1] = 0.0
    fit = fit_result()
    got = xd.normalise(ds, fit).compute()
    valid = np.ones((NY, NX, NDET), bool)
    valid[0, 0, :] = False
    valid[1, 2, 0] = False
    valid[3, 1, 1] = False
    np.testing.assert_array_equal(got.valid.values, valid)
    assert np.isnan(got.normalised.values[~valid]).all()
    assert np.isfinite(got.normalised.values[valid]).all()
    # Only that pixel: not the whole row of ocr replaced (xrf_proc's guard), not un-normalised.
    with np.errstate(divide="ignore", invalid="ignore"):
        want = by_hand(ds, fit, valid=valid)
    np.testing.assert_allclose(got.normalised.values, want["normalised"], rtol=1e-12)
    np.testing.assert_allclose(got.sum_area.values, want["sum_area"], rtol=1e-12)
    np.testing.assert_allclose(got.I0_total.values, want["I0_total"], rtol=1e-12)


def geopixe_like(deadtime):
    ds = raw_map().drop_vars(["I0", "acquisition_time", "icr", "ocr"])
    ds["deadtime"] = (("y", "x", "detector"), deadtime.astype(np.float32))
    ds.attrs.update(tube_current_ua=200.0, dwell_ms=50.0, source_format="GeoPIXE")
    return ds


def test_a_lab_map_is_per_unit_of_tube_charge():
    dt = np.random.default_rng(3).uniform(10, 40, (NY, NX, NDET))
    dt[2, 2, 1] = 100.0  # fully dead: masked
    ds, fit = geopixe_like(dt), fit_result()
    got = xd.normalise(ds, fit, tmnorm=True).compute()
    charge = 200.0 * 0.05  # µC per pixel
    assert got.attrs["I0"] == charge and "tube current" in got.attrs["I0_source"]
    with np.errstate(divide="ignore"):
        f = 1.0 / (1.0 - dt.astype(np.float32).astype(np.float64) / 100.0)
    area = np.clip(fit.peak_area.values * f[..., None], 0, None)
    want = area / (charge * 0.05) * charge
    ok = got.valid.values
    assert not ok[2, 2, 1] and ok.sum() == NY * NX * NDET - 1
    np.testing.assert_allclose(got.normalised.values[ok], want[ok], rtol=1e-6)
    mean_f = np.array([f[..., d][ok[..., d]].mean() for d in range(NDET)])
    p = fit.sum_area.values * mean_f[:, None]
    total = ok.sum((0, 1)) * charge * 0.05
    np.testing.assert_allclose(got.sum_area.values, p / total[:, None] * charge, rtol=1e-6)
    np.testing.assert_allclose(got.time_total.values, ok.sum((0, 1)) * 0.05)


def test_a_fit_read_back_from_its_file_normalises_the_same(tmp_path):
    ds = xd.datasets.example_dataset(shape=(8, 6))
    config = xd.make_fit_config(ds, list(xd.datasets.ELEMENTS))
    fit = xd.fit(ds, config)
    path = xd.to_h5(ds, tmp_path / "m.h5")
    xd.to_h5(fit, path)
    raw, stored = xd.open_h5(path), xd.open_h5(path, group="fit")
    assert stored.attrs["deadtime_corrected"]
    a = xd.normalise(ds, fit).compute()
    b = xd.normalise(raw, stored).compute()
    np.testing.assert_allclose(b.normalised.values, a.normalised.values, rtol=1e-6)
    np.testing.assert_allclose(b.sum_area.values, a.sum_area.values, rtol=1e-6)


def test_chunk_invariance():
    ds = raw_map()
    results = [
        xd.normalise(ds, fit_result(chunks=c)).compute() for c in (1, 3, NY)
    ]  # 1-row, uneven and whole-map bands
    for other in results[1:]:
        xr.testing.assert_identical(other, results[0])
    nrm = xd.normalise(ds, fit_result(chunks=3))
    assert nrm.normalised.chunks[0] == (3, 2)  # the fit's blocks


def test_building_the_graph_computes_no_area():
    def boom(block):
        raise AssertionError("computed")

    fit = fit_result()
    fit["peak_area"] = fit.peak_area.copy(
        data=fit.peak_area.data.map_blocks(boom, dtype=np.float64)
    )
    nrm = xd.normalise(raw_map(), fit)  # must not raise
    assert isinstance(nrm.normalised.data, da.Array)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda ds, fit: (ds.drop_vars("I0"), fit), "the map has no I0"),
        (lambda ds, fit: (ds.drop_vars("acquisition_time"), fit), "tmnorm=True needs"),
        (lambda ds, fit: (ds.isel(y=slice(0, 3)), fit), "not the same map"),
        (lambda ds, fit: (ds, fit.drop_vars("peak_area")), "has no 'peak_area'"),
    ],
    ids=["no-I0", "no-time", "other-map", "not-a-fit"],
)
def test_bad_input_one_line_errors(change, message):
    ds, fit = change(raw_map(), fit_result())
    with pytest.raises(ConfigError, match=message):
        xd.normalise(ds, fit, tmnorm=True)


def test_errors_fit_without_errors_and_bad_I0norm():
    with pytest.raises(ConfigError, match="errors='fit' but the fit result has no"):
        xd.normalise(raw_map(), fit_result().drop_vars("peak_area_error"), errors="fit")
    # Without the fit's errors, or with a linear fit's (one model error for every pixel),
    # "auto" takes counting statistics and says so; per-pixel weighted fits' errors are kept.
    nrm = xd.normalise(raw_map(), fit_result().drop_vars("peak_area_error"))
    assert nrm.attrs["error_source"] == "poisson"
    assert xd.normalise(raw_map(), fit_result()).attrs["error_source"] == "poisson"
    weighted = fit_result()
    weighted.attrs.update(method="pymca", weight_policy=2)
    assert xd.normalise(raw_map(), weighted).attrs["error_source"] == "fit"
    with pytest.raises(ConfigError, match="I0norm=-1 must be a positive number"):
        xd.normalise(raw_map(), fit_result(), I0norm=-1)


def test_written_as_xrf_proc_writes_norm(tmp_path):
    ds, fit = raw_map(), fit_result()
    nrm = xd.normalise(ds, fit)
    path = xd.to_h5(nrm, tmp_path / "n.h5")
    got = nrm.compute()
    with h5py.File(path) as f:
        assert f["norm"].attrs["TmNorm"] == "False"
        assert f["norm/I0"][()] == got.attrs["I0"]
        g = f["norm/channel01"]
        assert g["names"].dtype.kind == "S" and [n.decode() for n in g["names"]] == LINES
        np.testing.assert_array_equal(
            g["ims"][...], got.normalised.sel(detector=1).transpose("line", "y", "x").values
        )
        np.testing.assert_array_equal(  # absolute, not relative (spec 12.6)
            g["ims_stddev"][...],
            got.normalised_error.sel(detector=1).transpose("line", "y", "x").values,
        )
        pairs = [("int", "sum_area"), ("bkg", "sum_background")]
        pairs += [("int_stddev", "sum_area_error"), ("bkg_stddev", "sum_background_error")]
        for key, var in pairs:
            np.testing.assert_array_equal(g[f"sum/{key}"][...], got[var].sel(detector=1).values)
    back = xd.open_h5(path, group="norm").compute()
    xr.testing.assert_allclose(back.normalised, got.normalised)
    np.testing.assert_array_equal(back.valid.values, got.valid.values)
    np.testing.assert_allclose(back.I0_total.values, got.I0_total.values)


def test_through_a_distributed_cluster(dask_cluster):
    from distributed import Client

    ds, fit = raw_map(), fit_result()
    local = xd.normalise(ds, fit).compute(scheduler="threads")
    with Client(scheduler_file=str(dask_cluster)):
        remote = xd.normalise(ds, fit).compute()
    xr.testing.assert_identical(remote, local)
    with dask.config.set(scheduler="sync"):
        xr.testing.assert_identical(xd.normalise(ds, fit).compute(), local)


def test_regrid_shortcut_equals_regridding_the_result():
    from tests.regrid.maps import fit_like, snake_map, snake_order, truth_map

    truth = truth_map(6, 5, nchan=4, ndet=2)
    raw = snake_map(truth, chunks=(2, 5, 2, 4))
    # Areas stored as the scan recorded them (odd rows backward), as a fit of the raw map is.
    fit = fit_like(snake_order(truth[..., :3].astype(np.float64) + 10), raw)
    fit["sum_background"] = fit.sum_area * 0.1
    fit.attrs["deadtime_corrected"] = False
    direct = xd.normalise(raw, fit, regrid="snake").compute()
    two_steps = xd.regrid(xd.normalise(raw, fit), mode="snake", motors=raw).compute()
    xr.testing.assert_identical(direct, two_steps)
    assert direct.attrs["regridded"] and direct.attrs["regrid_mode"] == "snake"
    # Back on the grid: each pixel's value is its truth's, dead-time corrected (icr/ocr = 1/0.9),
    # over its own I0 (1000 + its index on the grid), times the largest I0.
    i0 = 1000.0 + np.arange(6 * 5, dtype=np.float64).reshape(6, 5)
    want = (truth[..., :3] + 10) / 0.9 / i0[..., None, None] * i0.max()
    np.testing.assert_allclose(direct.normalised.values, want, rtol=1e-12)
