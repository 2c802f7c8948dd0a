"""The pymca engine's tasks run PyMca's least squares with BLAS on one thread, under load.

PyMca's ``lstsq`` multiplies matrices with BLAS; OpenBLAS's own threads next to dask's worker
threads ran the fit at a third of its speed when another process used a core (issue 9). The
criterion is the thread count BLAS has at each ``lstsq`` call, read inside the task: it does not
depend on how loaded the machine is.
"""

import subprocess
import sys
import time

import dask
import numpy as np
import pytest
from PyMca5.PyMcaMath import linalg
from threadpoolctl import threadpool_info, threadpool_limits

import xrfdask as xd
from xrfdask.datasets import ELEMENTS


def blas_threads() -> list[int]:
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


@pytest.fixture
def busy_core():
    """Another process spinning on a core for the length of the test."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(0.2)
    yield proc
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("weight", [None, 2])
def test_blocks_and_refit_run_blas_on_one_thread_under_a_competing_load(
    example_path, busy_core, monkeypatch, weight
):
    ds = xd.open_geopixe(example_path, chunks=8)
    config = xd.make_fit_config(ds, list(ELEMENTS))
    reference = xd.fit(ds, config, method="pymca", weight=weight).peak_area.compute(
        scheduler="synchronous"
    )
    seen = []
    lstsq = linalg.lstsq

    def recording_lstsq(*args, **kwargs):  # the real solver, with the BLAS threads it runs on
        seen.append(blas_threads())
        return lstsq(*args, **kwargs)

    monkeypatch.setattr(linalg, "lstsq", recording_lstsq)
    with threadpool_limits(limits=2, user_api="blas"):  # the default the tasks must not use
        before = blas_threads()
        assert before and all(n == 2 for n in before), before
        fit = xd.fit(ds, config, method="pymca", weight=weight)
        with dask.config.set(scheduler="threads", num_workers=2):
            got = fit.peak_area.values
        assert blas_threads() == before  # restored once the tasks are done
    assert busy_core.poll() is None  # the competing process ran throughout
    assert len(seen) >= 2 * 6  # every band of each detector (6 bands, 2 detectors)
    assert all(threads == [1] * len(before) for threads in seen), seen
    np.testing.assert_array_equal(got, reference.values)
