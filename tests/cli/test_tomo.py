"""``xrfdask tomo``: the tomo/ group of a scan's file, centre found or given."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import xarray as xr

pytest.importorskip("skimage")

from tests.test_tomo import LINES, N, scan  # noqa: E402
from xrfdask.io.h5layout import to_h5  # noqa: E402


def scan_file(tmp_path):
    """A raw map (motors, I0, I1, tiny spectra) and its norm/ group in one file."""
    nrm, truth = scan(n_angles=60)
    ny, nx = nrm.sizes["y"], nrm.sizes["x"]
    raw = xr.Dataset(
        {
            "spectra": (("y", "x", "detector", "channel"), np.ones((ny, nx, 1, 8), np.uint32)),
            "I0": (("y", "x"), np.full((ny, nx), 1e5)),
            "I1": (("y", "x"), np.full((ny, nx), 8e4)),
            "mot1": nrm["mot1"],
            "mot2": nrm["mot2"],
        },
        coords={"detector": ["channel00"], "channel": np.arange(8)},
    )
    path = to_h5(raw, tmp_path / "scan.h5")
    to_h5(nrm.drop_vars(["mot1", "mot2"]), path)
    return path


def test_tomo_writes_the_tomo_group(tmp_path, run):
    path = scan_file(tmp_path)
    code, out, err = run("tomo", str(path), "--signal", "Sr K", "--lines", "Fe K", "Sr K")
    assert code == 0, err
    assert "found on Sr K" in out and "tomo/I1" in out
    with h5py.File(path) as f:
        assert f["tomo/channel00/ims"].shape == (2, N, N)
        assert f["tomo/channel00/ims_stddev"].shape == (2, N, N)
        assert abs(float(f["tomo/channel00/rotation_center"][()]) - N // 2) <= 0.5
        assert [n.decode() for n in f["tomo/channel00/names"][()]] == ["Fe K", "Sr K"]
        assert f["tomo/I1/ims"].shape == (1, N, N)
        assert "raw" in f and "norm" in f
    code, out, err = run("tomo", str(path), "--centre", "31.5", "--algorithm", "fbp")
    assert code == 1 and "exists" in err and "--overwrite" in err
    code, out, err = run("tomo", str(path), "--centre", "31.5", "--overwrite", "--no-errors",
                         "--no-transmission")  # fmt: skip
    assert code == 0, err
    assert "centre 31.50 (given)" in out
    with h5py.File(path) as f:
        assert f["tomo/channel00/ims"].shape == (len(LINES), N, N)
        assert float(f["tomo/channel00/rotation_center"][()]) == 31.5


def test_bad_input_is_one_line(tmp_path, run):
    path = scan_file(tmp_path)
    code, out, err = run("tomo", str(path), "--rotation", "mot2")
    assert code == 1
    assert "rotation motor 'mot2' does not vary along rows" in err and err.count("\n") == 1
    code, out, err = run("tomo", str(path), "--limit-rotation-range", "10", "90")
    assert code == 1 and "limit_rotation_range=(10, 90) is outside" in err
