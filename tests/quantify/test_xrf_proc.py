"""quantify and div_by_cnc against xrf_proc's own quant_with_ref and div_by_cnc.

``tests/data/xrf_proc_groups.h5`` holds what xrf_proc wrote (see make_xrf_proc_groups.py): its
norm/, calc_detlim's elyield/nist613.cnc/ and quant_with_ref's quant/channel00 with the file as
its own reference, then div_by_cnc's rel_dif/channel00.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

import xrfdask as xd
from tests.conftest import SHARED
from xrfdask.errors import XrfdaskWarning
from xrfdask.quantify import div_by_cnc, quantify

FILE = Path(__file__).resolve().parents[1] / "data" / "xrf_proc_groups.h5"
CNC = SHARED / "data" / "cnc" / "nist613.cnc"


def stored(path: str) -> np.ndarray:
    with h5py.File(FILE) as f:
        return f[path][...]


def names(path: str) -> list[str]:
    return [n.decode() for n in stored(path)]


@pytest.mark.parametrize("compat", ["xrf_proc", None])
def test_same_concentrations_as_xrf_proc(compat):
    nrm = xd.open_h5(FILE, group="norm").sel(detector=[0])
    q = quantify(nrm, str(FILE), compat=compat).compute()
    assert q.line.values.tolist() == names("quant/channel00/names")
    c = q["concentration"].sel(detector=0).transpose("line", "y", "x").values
    np.testing.assert_allclose(c, stored("quant/channel00/ims"), rtol=1e-6)
    np.testing.assert_allclose(
        q["sum_concentration"].values[0], stored("quant/channel00/sum/int"), rtol=1e-12
    )
    np.testing.assert_allclose(
        q["sum_concentration_error"].values[0], stored("quant/channel00/sum/int_stddev"),
        rtol=1e-12,
    )  # fmt: skip
    # The map errors: xrf_proc reads its norm's relative ims_stddev as absolute (spec 6.2,
    # 12.6), i.e. eps_I / I in place of eps_I; xrfdask reads it as relative.
    lines = names("norm/channel00/names")
    idx = [lines.index(n) for n in q.line.values]
    i, eps = stored("norm/channel00/ims")[idx], stored("norm/channel00/ims_stddev")[idx]
    e_y = (q["elemental_yield_error"] / q["elemental_yield"]).values[0][:, None, None]
    sigma = q["concentration_error"].sel(detector=0).transpose("line", "y", "x").values
    ok = i > 0
    np.testing.assert_allclose(sigma[ok], (c * np.sqrt(eps**2 + e_y**2))[ok], rtol=1e-6)
    xrf_proc = c * np.sqrt((eps / np.where(ok, i, 1)) ** 2 + e_y**2)
    np.testing.assert_allclose(xrf_proc[ok], stored("quant/channel00/ims_stddev")[ok], rtol=1e-6)


def test_same_relative_difference_as_xrf_proc():
    nrm = xd.open_h5(FILE, group="norm").sel(detector=[0])
    q = quantify(nrm, str(FILE))
    with pytest.warns(XrfdaskWarning, match="not ug/g"):  # xrf_proc ran it on ug/cm²
        rel = div_by_cnc(q, CNC).compute()
    assert rel.line.values.tolist() == names("rel_dif/channel00/names")
    np.testing.assert_allclose(
        rel["relative_difference"].sel(detector=0).transpose("line", "y", "x").values,
        stored("rel_dif/channel00/ims"),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        rel["sum_relative_difference"].values[0], stored("rel_dif/channel00/sum/int"), rtol=1e-12
    )
