"""``xrfdask detlim``: detlim/ and elyield/ written into the file, one-line errors."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

import xrfdask.io.h5layout as layout
from tests.conftest import SHARED
from tests.detlim.test_limits import raw_sums, xrf_proc_file
from xrfdask.detlim import detection_limits

CNC = SHARED / "data" / "cnc"
NIST613, NIST611 = str(CNC / "nist613.cnc"), str(CNC / "nist611.cnc")


@pytest.fixture
def ref_file(tmp_path):
    p, b = raw_sums(12, ndet=1)
    path = tmp_path / "ref.h5"
    rng = np.random.default_rng(12)
    xrf_proc_file(path, p[0], b[0], rng.uniform(1e4, 2e4, (3, 4)), np.full((3, 4), 0.25))
    return path


def expected(path, cnc, **kw):
    return detection_limits(layout.open_h5(path, group="norm"), cnc, raw=layout.open_h5(path), **kw)


def test_writes_detlim_and_elyield_side_by_side(run, ref_file):
    code, out, err = run("detlim", str(ref_file), "--cnc", NIST613, "--tilt", "45")
    assert code == 0, err
    assert "nist613.cnc: detection limits and yields of 4 lines (Fe K, Pb M, Pb L, Ca K)" in out
    want = expected(ref_file, NIST613, tilt=45)
    got = layout.open_h5(ref_file, group="detlim/nist613.cnc")
    np.testing.assert_array_equal(got.detection_limit_1s.values, want.detection_limit_1s.values)
    y = layout.open_h5(ref_file, group="elyield/nist613.cnc")
    np.testing.assert_array_equal(y.elemental_yield.values, want.elemental_yield.values)
    assert y.attrs["tilt"] == 45
    code, out, err = run("detlim", str(ref_file), "--cnc", NIST611, "--compat", "xrf_proc")
    assert code == 0, err
    with h5py.File(ref_file) as f:
        assert set(f["detlim"]) == set(f["elyield"]) == {"nist613.cnc", "nist611.cnc"}
        assert "norm" in f and "raw" in f
    got = layout.open_h5(ref_file, group="detlim/nist611.cnc")
    want = expected(ref_file, NIST611, compat="xrf_proc")
    np.testing.assert_array_equal(
        got.detection_limit_1s_error.values, want.detection_limit_1s_error.values
    )


def test_nothing_overwritten_without_overwrite(run, ref_file):
    assert run("detlim", str(ref_file), "--cnc", NIST613)[0] == 0
    before = layout.open_h5(ref_file, group="detlim/nist613.cnc").detection_limit_1s.values
    code, out, err = run("detlim", str(ref_file), "--cnc", NIST613, "--tilt", "20")
    assert code == 1 and len(err.splitlines()) == 1
    assert "group 'detlim/nist613.cnc' exists; use --overwrite to replace it" in err
    after = layout.open_h5(ref_file, group="detlim/nist613.cnc").detection_limit_1s.values
    np.testing.assert_array_equal(before, after)
    code, out, err = run("detlim", str(ref_file), "--cnc", NIST613, "--tilt", "20", "--overwrite")
    assert code == 0, err
    assert layout.open_h5(ref_file, group="elyield/nist613.cnc").attrs["tilt"] == 20


def test_output_elsewhere_and_png(run, ref_file, tmp_path):
    out = tmp_path / "limits.zarr"
    code, stdout, err = run("detlim", str(ref_file), "--cnc", NIST613, "-o", str(out), "--png")
    assert code == 0, err
    png = tmp_path / "limits_ch0_DL.png"
    assert png.exists() and f"detection limits plot -> {png}" in stdout
    got = layout.open_zarr(out, group="elyield/nist613.cnc")
    want = expected(ref_file, NIST613)
    np.testing.assert_array_equal(got.elemental_yield.values, want.elemental_yield.values)
    with h5py.File(ref_file) as f:
        assert "detlim" not in f and "elyield" not in f
    chosen = tmp_path / "mine.png"
    code, _, err = run("detlim", str(ref_file), "--cnc", NIST613, "--png", str(chosen))
    assert code == 0 and chosen.exists(), err


def test_bad_input_one_line(run, ref_file, tmp_path, sample_path):
    bare = tmp_path / "bare.h5"
    with h5py.File(bare, "w") as f:
        f["cmd"] = "nothing"
    cases = [
        ((str(bare), "--cnc", NIST613), "group 'norm' is missing"),
        ((str(tmp_path / "none.h5"), "--cnc", NIST613), "none.h5: no such file"),
        ((str(ref_file), "--cnc", str(tmp_path / "x.cnc")), "x.cnc: no such concentration file"),
        ((str(ref_file), "--cnc", NIST613, "--tilt", "0"), "tilt=0.0: the sample tilt must be"),
    ]
    bad_cnc = tmp_path / "bad.cnc"
    bad_cnc.write_text("Standard_Name\nX\nDensity\n1\t2\t3\nNumber\n2\nZ\tconc\n26\t5\t1\n")
    cases.append(((str(ref_file), "--cnc", str(bad_cnc)), "announces 2 elements"))
    for argv, message in cases:
        code, out, err = run("detlim", *argv)
        assert code == 1 and message in err and len(err.splitlines()) == 1, (argv, err)
        assert err.startswith("xrfdask detlim: error: ")
    no_raw = tmp_path / "no_raw.h5"
    shutil.copyfile(ref_file, no_raw)
    with h5py.File(no_raw, "a") as f:
        del f["raw"]
    code, out, err = run("detlim", str(no_raw), "--cnc", NIST613)
    assert code == 1 and "norm/ does not record the I0 and time totals" in err
    assert len(err.splitlines()) == 1
    code, out, err = run("detlim", str(sample_path), "--cnc", NIST613)
    assert code == 2 and "read and write an .h5 or .zarr file" in err
    with h5py.File(ref_file) as f:
        assert "detlim" not in f


def test_maps_from_the_raw_spectra_and_the_fit_configuration(run, tmp_path):
    from tests.detlim.test_maps import base_spectrum, config, raw_map
    from xrfdask.fit.config import config_to_text

    t = np.full((3, 4), 0.5)
    path = tmp_path / "ref.h5"
    layout.to_h5(raw_map(base_spectrum(), t), path)
    lines = ["Fe K", "Cu K", "Compt"]
    p, b = np.array([2e5, 4e4, 1e6]), np.array([3e3, 2e3, 1e5])
    i0 = 1e4 * t
    with h5py.File(path, "a") as f:
        fit = f.create_group("fit/channel00")
        fit["names"] = [n.encode() for n in lines]
        fit["ims"] = np.ones((3, 3, 4))
        fit["cfg"] = config_to_text(config())
        norm = f.create_group("norm/channel00")
        norm["names"] = np.array([n.encode() for n in lines])
        norm["ims"] = np.ones((3, 3, 4))
        norm["sum/int"] = p / i0.sum() * i0.max()
        norm["sum/bkg"] = b / i0.sum() * i0.max()
        norm["sum/int_stddev"] = np.zeros(3)
        norm["sum/bkg_stddev"] = np.zeros(3)
        f["norm/I0"] = i0.max()
        f["norm"].attrs["TmNorm"] = "False"
    png = tmp_path / "maps.png"
    code, out, err = run("detlim", str(path), "--cnc", NIST613, "--maps", str(png))
    assert code == 0, err
    assert png.exists() and f"1 s detection-limit maps (nist613.cnc) -> {png}" in out
