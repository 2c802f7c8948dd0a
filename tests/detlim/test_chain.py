"""fit -> normalise -> detection limits on the example map, in memory and through a file.

Needs ``xd.normalise`` (the lead's normalise.py); skipped where it is absent.
"""

from __future__ import annotations

import numpy as np
import pytest

import xrfdask as xd
from tests.conftest import SHARED
from xrfdask.detlim import detection_limit_maps, detection_limits

NIST613 = str(SHARED / "data" / "cnc" / "nist613.cnc")


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    normalise = xd.normalise
    from xrfdask.datasets import example_dataset
    from xrfdask.fit import make_fit_config

    ds = example_dataset(shape=(12, 16), n_detectors=2)
    fit = xd.fit(ds, make_fit_config(ds, ["Ca", "Fe", "Cu", "Zn", "Pb"]))
    nrm = normalise(ds, fit)
    path = tmp_path_factory.mktemp("chain") / "ref.h5"
    xd.to_h5(ds, path)
    xd.to_h5(fit, path)
    xd.to_h5(nrm, path)
    return ds, nrm, path


def test_in_memory_and_from_the_file_agree(chain):
    ds, nrm, path = chain
    dl = detection_limits(nrm, NIST613)
    stored = detection_limits(xd.open_h5(path, group="norm"), NIST613)
    for name in ("detection_limit_1s", "detection_limit_1s_error", "elemental_yield"):
        np.testing.assert_allclose(stored[name].values, dl[name].values, rtol=1e-12)
    # The formula on normalise's own totals: DL1 = 3 sqrt(B T) / P c.
    small = nrm[["sum_area", "sum_background", "I0_total", "time_total"]].compute()
    p = small.sum_area * small.I0_total / nrm.attrs["I0"]
    b = small.sum_background * small.I0_total / nrm.attrs["I0"]
    want = 3 * np.sqrt(b * small.time_total) / p * dl.reference_concentration
    np.testing.assert_allclose(dl.detection_limit_1s, want.sel(line=dl.line.values), rtol=1e-12)


def test_maps_follow_the_sum_spectrum_limits(chain):
    ds, nrm, path = chain
    dl = detection_limits(nrm, NIST613)
    maps = detection_limit_maps(ds, nrm, dl).compute()  # the configuration from nrm's attrs
    median = maps.detection_limit_1s.median(("y", "x"))
    ratio = (median / dl.detection_limit_1s).sel(line=["Ca K", "Fe K", "Cu K", "Zn K"])
    # PyMca's sum background also counts neighbouring lines: the map limits are a little lower.
    assert ((ratio > 0.6) & (ratio < 1.1)).all(), ratio.values
