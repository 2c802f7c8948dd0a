"""quantify builds a graph and computes nothing; 1-row, 3-row and whole-map chunks agree."""

from __future__ import annotations

import dask
import numpy as np
import pytest

from tests.quantify.synth import make_nrm, make_ref
from xrfdask.datasets import quantification_map
from xrfdask.io.cnc import Cnc
from xrfdask.quantify import quantify

MATRIX = Cnc("m.cnc", "m", 2500.0, 1.0, 10.0, np.array([8, 14]), np.array([5e5, 5e5]), np.zeros(2))


def _inputs(chunks: int):
    raw = quantification_map({"Fe": 2e5, "Zn": 2e4}, shape=(6, 5), sensitivity=1e-4,
                             layer=(0.004, {"O": 0.5, "Si": 0.5}))  # fmt: skip
    raw = raw.assign(spectra=raw["spectra"].chunk({"y": chunks}))
    area = raw["spectra"].isel(channel=slice(500, 580)).sum("channel").values
    area = np.stack([area, area / 3, area / 2], -1)
    nrm = make_nrm(area, ["Fe K", "Zn K", "Rayl"], raw["I0"].values, chunks=chunks)
    return raw, nrm


def _run(chunks: int, **kwargs):
    raw, nrm = _inputs(chunks)
    ref = make_ref(["Fe K", "Zn K"], [4.0, 5.0], [0.2, 0.5], norm_lines=("Rayl",),
                   norm_sums=(2000.0,), norm_bkg=(20.0,))  # fmt: skip
    mask = np.ones((6, 5), dtype=bool)
    mask[0, 0] = False

    def refuse(*args, **kw):
        raise AssertionError("quantify computed something")

    with dask.config.set(scheduler=refuse):
        q = quantify(nrm, ref, absorb=(["Fe"], MATRIX), raw=raw, mask=mask, **kwargs)
    return q, nrm


@pytest.mark.parametrize("kwargs", [{}, {"norm_line": "Rayl", "density": 2.5, "thickness": 0.01}])
def test_lazy_and_chunk_invariant(kwargs):
    q1, nrm = _run(1, **kwargs)
    assert q1["concentration"].chunks[0] == nrm["normalised"].chunks[0] == (1,) * 6
    results = [q1.compute()] + [_run(n, **kwargs)[0].compute() for n in (3, 6)]
    for other in results[1:]:
        for name in ("concentration", "concentration_error", "sum_concentration", "rhot"):
            np.testing.assert_allclose(other[name].values, results[0][name].values, rtol=1e-12)
