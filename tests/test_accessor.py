"""ds.xrf / da.xrf: every method is its public function, called with the object first."""

from __future__ import annotations

import inspect
import subprocess
import sys

import numpy as np
import pytest
import tifffile
import xarray as xr

import xrfdask as xd
import xrfdask.plot
from xrfdask.accessor import (
    DATAARRAY_METHODS,
    DATASET_METHODS,
    XrfDataArrayAccessor,
    XrfDatasetAccessor,
)


def methods(cls) -> list[str]:
    """The accessor's delegating methods, from the class itself (not from the tuples)."""
    return [n for n in vars(cls) if not n.startswith("_") and n != "plot"]


@pytest.fixture(scope="module")
def small(example_path):
    ds = xd.open_geopixe(example_path).isel(y=slice(0, 8))
    config = xd.make_fit_config(ds, ["Fe", "Zn", "Pb"])
    fit = xd.fit(ds, config).persist()
    return ds, config, fit


def test_every_name_is_a_public_function():
    for cls, names in ((XrfDatasetAccessor, DATASET_METHODS),
                       (XrfDataArrayAccessor, DATAARRAY_METHODS)):  # fmt: skip
        assert sorted(methods(cls)) == sorted(names)
        for name in names:
            assert name in xd.__all__, name
            assert callable(getattr(xd, name)), name
    assert set(xrfdask.plot.__all__) <= set(dir(xr.Dataset().xrf.plot))


@pytest.mark.parametrize(
    ("obj", "cls"),
    [(xr.Dataset({"a": ("y", [1.0])}), XrfDatasetAccessor),
     (xr.DataArray([1.0], dims="y", name="a"), XrfDataArrayAccessor)],
)  # fmt: skip
def test_every_method_delegates(monkeypatch, obj, cls):
    """Each method calls xrfdask.<name>(obj, *args, **kwargs) and returns what it returns."""
    for name in methods(cls):
        calls = []

        def stub(*args, _name=name, _calls=calls, **kwargs):
            _calls.append((args, kwargs))
            return _name

        monkeypatch.setattr(xd, name, stub)
        assert getattr(obj.xrf, name)(1, "two", key=3) == name
        assert len(calls) == 1 and calls[0][0][0] is obj
        assert calls[0][0][1:] == (1, "two") and calls[0][1] == {"key": 3}
    for name in xrfdask.plot.__all__:
        calls = []
        monkeypatch.setattr(xrfdask.plot, name, lambda *a, _c=calls, **k: _c.append((a, k)))
        getattr(obj.xrf.plot, name)("out.png", dpi=1)
        assert calls == [((obj, "out.png"), {"dpi": 1})]


def test_docstrings_and_signatures_are_the_functions(small):
    ds = small[0]
    assert ds.xrf.fit.__doc__ == xd.fit.__doc__
    assert list(inspect.signature(ds.xrf.fit).parameters)[0] == "config"
    assert ds.xrf.to_tiff.__name__ == "to_tiff"
    assert ds.xrf.plot.element_maps.__doc__ == xrfdask.plot.element_maps.__doc__
    assert "xrfdask.fit" in XrfDatasetAccessor.fit.__doc__  # the class: no import needed
    with pytest.raises(AttributeError, match="no plot 'nope'"):
        ds.xrf.plot.nope  # noqa: B018


def test_methods_equal_functions_on_real_input(small, tmp_path):
    ds, config, fit = small
    assert ds.xrf.make_fit_config(["Fe", "Zn", "Pb"]) == config
    xr.testing.assert_allclose(ds.xrf.fit(config).peak_area, fit.peak_area)
    nrm = xd.normalise(ds, fit)
    xr.testing.assert_identical(ds.xrf.normalise(fit).compute(), nrm.compute())
    for name, args in (("deadtime_stats", ()), ("predict_deadtime", ()),
                       ("fill_deadtime", (15.0,)), ("colour_map", ())):  # fmt: skip
        a = getattr(ds.xrf, name)(*args).compute()
        b = getattr(xd, name)(ds, *args).compute()
        xr.testing.assert_identical(a, b)
    a = nrm.xrf.classify("kmeans", 2, detector=0).labels.values
    np.testing.assert_array_equal(a, xd.classify(nrm, "kmeans", 2, detector=0).labels.values)
    a = nrm.normalised.xrf.classify("kmeans", 2, detector=0).labels.values
    np.testing.assert_array_equal(a, xd.classify(nrm.normalised, "kmeans", 2, detector=0).labels)


def test_writers_write_the_same(small, tmp_path):
    ds, _, fit = small
    nrm = xd.normalise(ds, fit)
    (a,) = nrm.xrf.to_tiff(tmp_path / "a", lines=["Fe K"], detector=0)
    (b,) = xd.to_tiff(nrm, tmp_path / "b", lines=["Fe K"], detector=0)
    np.testing.assert_array_equal(tifffile.imread(a), tifffile.imread(b))
    (c,) = nrm.normalised.xrf.to_tiff(tmp_path / "c", lines=["Fe K"], detector=0)
    np.testing.assert_array_equal(tifffile.imread(c), tifffile.imread(b))
    a = nrm.xrf.to_csv(tmp_path / "a.csv", detector=1, file_id="x")
    b = xd.to_csv(nrm, tmp_path / "b.csv", detector=1, file_id="x")
    assert open(a).read() == open(b).read()
    a = fit.peak_area.xrf.to_npy(tmp_path / "a.npy")
    np.testing.assert_array_equal(np.load(a), fit.peak_area.values)
    fit.xrf.to_h5(tmp_path / "a.h5")
    xd.to_h5(fit, tmp_path / "b.h5")
    xr.testing.assert_identical(
        xd.open_h5(tmp_path / "a.h5", "fit").drop_attrs().compute(),
        xd.open_h5(tmp_path / "b.h5", "fit").drop_attrs().compute(),
    )
    ds.isel(y=slice(0, 2)).xrf.to_geopixe(tmp_path / "a.GeoPIXE")
    xd.to_geopixe(ds.isel(y=slice(0, 2)), tmp_path / "b.GeoPIXE")
    assert open(tmp_path / "a.GeoPIXE", "rb").read() == open(tmp_path / "b.GeoPIXE", "rb").read()


def test_import_stays_light():
    code = (
        "import sys, xarray as xr, xrfdask; xr.Dataset().xrf; "
        "print([m for m in ('tifffile', 'matplotlib', 'xrfdask.plot', 'sklearn') "
        "if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
