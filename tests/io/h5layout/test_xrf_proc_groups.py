"""Every result group xrf_proc writes, read from a file xrf_proc itself wrote.

``tests/data/xrf_proc_groups.h5`` was made by xrf_proc's own ``fit_xrf_batch``,
``norm_xrf_batch``, ``calc_detlim``, ``quant_with_ref`` and ``div_by_cnc``
(``tests/data/make_xrf_proc_groups.py``), on xrfdask's example map.
"""

import shutil
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest

import xrfdask as xd

FILE = Path(__file__).resolve().parents[2] / "data" / "xrf_proc_groups.h5"


def stored(path):
    with h5py.File(FILE) as f:
        return f[path][()]


def names(path):
    return [n.decode() for n in stored(path)]


def test_fit_as_xrf_proc_wrote_it():
    fit = xd.open_h5(FILE, group="fit")
    assert list(fit.line.values) == names("fit/channel01/names")
    np.testing.assert_array_equal(
        fit.peak_area.sel(detector=1).transpose("line", "y", "x").values,
        stored("fit/channel01/ims"),
    )
    np.testing.assert_array_equal(
        fit.sum_area.sel(detector=0).values, stored("fit/channel00/sum/int")
    )


def test_norm_with_xrf_procs_relative_errors_made_absolute():
    nrm = xd.open_h5(FILE, group="norm")
    assert nrm.attrs["TmNorm"] == "False" and nrm.attrs["I0"] == stored("norm/I0")
    ims, rel = stored("norm/channel00/ims"), stored("norm/channel00/ims_stddev")
    got = nrm.sel(detector=0).transpose("line", "y", "x")
    np.testing.assert_array_equal(got.normalised.values, ims)
    np.testing.assert_allclose(got.normalised_error.values, rel * ims, rtol=1e-6)
    assert nrm.attrs["normalised_error_stored"].startswith("relative")
    np.testing.assert_array_equal(
        nrm.sum_area_error.sel(detector=1).values, stored("norm/channel01/sum/int_stddev")
    )


def test_xrf_procs_norm_equals_xd_normalise_on_its_own_fit():
    raw, fit = xd.open_h5(FILE), xd.open_h5(FILE, group="fit")
    mine = xd.normalise(raw, fit, errors="xrf_proc").compute()
    theirs = xd.open_h5(FILE, group="norm").compute()
    assert mine.attrs["I0"] == theirs.attrs["I0"]
    # xrf_proc keeps float32 maps (the fit's dtype): equal to float32 precision.
    np.testing.assert_allclose(mine.normalised.values, theirs.normalised.values, rtol=1e-6)
    np.testing.assert_allclose(
        mine.normalised_error.values, theirs.normalised_error.values, rtol=2e-6
    )
    for var in ("sum_area", "sum_background", "sum_area_error", "sum_background_error"):
        np.testing.assert_allclose(mine[var].values, theirs[var].values, rtol=1e-12, err_msg=var)


@pytest.mark.parametrize("group", ["detlim/nist613.cnc", "detlim"])
def test_detection_limits_and_yields(group):
    dl = xd.open_h5(FILE, group=group)
    assert dl.attrs["unit"] == "ppm" and dl.attrs["cnc"] == "nist613.cnc"
    assert list(dl.line.values) == names("detlim/nist613.cnc/channel00/names")
    np.testing.assert_array_equal(
        dl.detection_limit_1s.sel(detector=0).values, stored("detlim/nist613.cnc/channel00/1s/data")
    )
    np.testing.assert_array_equal(
        dl.detection_limit_1000s_error.sel(detector=1).values,
        stored("detlim/nist613.cnc/channel01/1000s/stddev"),
    )
    ey = xd.open_h5(FILE, group="elyield/nist613.cnc")
    np.testing.assert_array_equal(
        ey.elemental_yield.sel(detector=1).values, stored("elyield/nist613.cnc/channel01/yield")
    )


def test_quant_and_rel_dif():
    q = xd.open_h5(FILE, group="quant")
    assert list(q.line.values) == names("quant/channel00/names")
    np.testing.assert_array_equal(
        q.concentration.sel(detector=0).transpose("line", "y", "x").values,
        stored("quant/channel00/ims"),
    )
    assert "reference.h5" in str(q.references.values)
    rel = xd.open_h5(FILE, group="rel_dif")
    np.testing.assert_array_equal(
        rel.relative_difference.sel(detector=0).transpose("line", "y", "x").values,
        stored("rel_dif/channel00/ims"),
    )
    assert rel.cnc.values.ravel()[0] == "nist613.cnc"


def test_an_infinite_relative_error_of_a_zero_value_reads_quietly(tmp_path):
    # Found by benchmarks/fuzz_inputs.py: inf x 0 warned from inside a dask task.
    path = tmp_path / "groups.h5"
    shutil.copy(FILE, path)
    with h5py.File(path, "r+") as f:
        ims, rel = f["norm/channel00/ims"], f["norm/channel00/ims_stddev"]
        values, errors = ims[()], rel[()]
        values[0, 0, 0], errors[0, 0, 0], errors[0, 0, 1] = 0, np.inf, np.inf
        ims[...], rel[...] = values, errors
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nrm = xd.open_h5(path, group="norm")
        got = nrm.normalised_error.sel(detector=0).transpose("line", "y", "x").values
    assert np.isnan(got[0, 0, 0])  # inf x 0: no error known for it
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(got, errors * values, rtol=1e-6)  # NaN matches NaN
