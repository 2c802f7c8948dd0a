"""The full engine: PyMca's McaTheory per spectrum, in any chunking, BLAS on one thread."""

import copy

import dask
import numpy as np
import pytest
import xarray as xr
from PyMca5.PyMcaPhysics.xrf import ClassMcaTheory
from threadpoolctl import threadpool_info, threadpool_limits

import xrfdask as xd
from xrfdask.datasets import ELEMENTS
from xrfdask.fit.engines import full


@pytest.fixture(scope="module")
def config(example_path):
    return xd.make_fit_config(xd.open_geopixe(example_path), list(ELEMENTS))


def test_full_method_matches_mca_theory_and_chunking(example_path, config):
    crop = xd.open_geopixe(example_path, chunks=1).isel(
        y=slice(20, 27), x=slice(30, 32), detector=[0]
    )
    results = [
        xd.fit(crop.chunk({"y": rows}), config, method="full").compute() for rows in (1, 3, -1)
    ]
    for other in results[1:]:
        xr.testing.assert_allclose(other.peak_area, results[0].peak_area)
    theory = ClassMcaTheory.McaTheory()
    cfg = copy.deepcopy(config)
    cfg["fit"]["use_limit"] = 1
    theory.setConfiguration(cfg)
    spectra = crop.spectra.values[:, :, 0]
    for y, x in [(0, 0), (3, 1), (6, 0)]:
        theory.setData(
            x=np.arange(4096.0),
            y=spectra[y, x].astype(float),
            xmin=cfg["fit"]["xmin"],
            xmax=cfg["fit"]["xmax"],
        )
        theory.estimate()
        _, result = theory.startfit(digest=1)
        for group in ("Fe K", "Ca K", "Sr K"):
            assert results[0].peak_area.sel(line=group).values[y, x, 0] == pytest.approx(
                result[group]["fitarea"], rel=1e-9
            )
            assert results[0].peak_area_error.sel(line=group).values[y, x, 0] == pytest.approx(
                result[group]["sigmaarea"], rel=1e-9
            )


def test_blocks_run_blas_on_one_thread(example_path, config, monkeypatch):
    crop = xd.open_geopixe(example_path, chunks=1).isel(
        y=slice(20, 22), x=slice(30, 32), detector=[0]
    )
    seen = []
    fit_spectrum = full.fit_spectrum

    def recording(*args, **kwargs):
        seen.append([lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"])
        return fit_spectrum(*args, **kwargs)

    monkeypatch.setattr(full, "fit_spectrum", recording)
    with threadpool_limits(limits=2, user_api="blas"):
        with dask.config.set(scheduler="threads", num_workers=2):
            xd.fit(crop, config, method="full").peak_area.compute()
    assert len(seen) == 4 and all(threads and set(threads) == {1} for threads in seen), seen
