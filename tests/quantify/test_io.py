"""quant/ and rel_dif/ written by to_h5/to_zarr and read back; reference files; xrf_proc's files."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

import xrfdask as xd
from tests.quantify.synth import make_nrm, make_ref
from xrfdask.datasets import quantification_map
from xrfdask.io.cnc import Cnc
from xrfdask.quantify import div_by_cnc, quantify

LINES = ["Ca K", "Fe K", "Zn K", "Compt", "Rayl"]
GLASS = Cnc("glass.cnc", "glass", 2500.0, 1.0, 10.0, np.array([8, 14, 26]),
            np.array([5e5, 4.5e5, 5e4]), np.array([0.0, 0.0, 2e3]))  # fmt: skip


@pytest.fixture
def nrm():
    rng = np.random.default_rng(3)
    counts = rng.uniform(100, 1000, size=(4, 3, 1, 5))
    return make_nrm(counts, LINES, rng.uniform(5e4, 1e5, size=(4, 3)), normto=1e5)


@pytest.fixture
def ref_file(tmp_path, nrm):
    """A reference file as detection_limits writes it: elyield/<cnc>/ beside norm/."""
    path = tmp_path / "ref.h5"
    xd.to_h5(nrm, path, group="norm")
    ref = make_ref(["Ca K", "Fe K", "Zn K"], [2.0, 4.0, 5.0], [0.2, 0.2, 0.5], cnc="nist613.cnc")
    xd.to_h5(ref.drop_vars(["norm_sum_area", "norm_sum_background"]), path, group="elyield")
    return path


@pytest.mark.parametrize("suffix", [".h5", ".zarr"])
def test_quant_round_trip_with_absorption(tmp_path, suffix):
    raw = quantification_map({"Fe": 2e5, "Zn": 2e4}, shape=(4, 4), sensitivity=1e-4,
                             layer=(0.004, {"O": 0.5, "Si": 0.5}))  # fmt: skip
    area = np.stack(
        [raw["spectra"].isel(channel=slice(500, 580)).sum("channel").values[..., 0]] * 2, -1
    )
    nrm = make_nrm(area[:, :, None, :], ["Fe K", "Zn K"], raw["I0"].values)
    ref = make_ref(["Fe K", "Zn K"], [4.0, 5.0], [0.2, 0.5])
    q = quantify(nrm, ref, absorb=(["Fe", "Zn"], GLASS), raw=raw)
    path = tmp_path / f"q{suffix}"
    (xd.to_h5 if suffix == ".h5" else xd.to_zarr)(q, path)
    back = (xd.open_h5 if suffix == ".h5" else xd.open_zarr)(path, group="quant")
    for name in ("concentration", "concentration_error", "sum_concentration", "ratio_exp",
                 "ratio_th", "rhot"):  # fmt: skip
        np.testing.assert_allclose(back[name].values, q[name].values, err_msg=name)
    assert back["references"].values.tolist() == ["ref.cnc"]
    assert back["absorber"].values.tolist() == ["Fe", "Zn"]  # every absorber kept
    np.testing.assert_allclose(q["rhot"].values, q["rhot_absorber"].max("absorber").values)
    assert back.attrs["unit"] == "ug/cm2"
    if suffix == ".h5":
        with h5py.File(path) as f:
            g = f["quant/channel00"]
            assert g["ims"].shape == (2, 4, 4) and g["ratio_exp"].shape == (2, 4, 4)
            assert [r.decode() for r in g["refs"][()]] == ["ref.cnc"]  # a list, not a repr
            assert g["ims"].attrs["Unit"] == "ug/cm²"


def test_rel_dif_round_trip(tmp_path, nrm):
    ref = make_ref(["Ca K", "Fe K", "Zn K"], [2.0, 4.0, 5.0], [0.2, 0.2, 0.5])
    q = quantify(nrm, ref, density=2.5, thickness=0.01)
    path = tmp_path / "q.h5"
    xd.to_h5(q, path)
    rel = div_by_cnc(path, GLASS)  # from the file's quant/
    xd.to_h5(rel, path)
    back = xd.open_h5(path, group="rel_dif")
    assert back["line"].values.tolist() == ["Fe K"] and back["cnc"].item() == "glass.cnc"
    np.testing.assert_allclose(
        back["relative_difference"].values, q["concentration"].sel(line=["Fe K"]).values / 5e4
    )


def test_reference_file_and_sample_file(tmp_path, nrm, ref_file):
    q = quantify(nrm, str(ref_file), norm_line="Rayl")
    want = quantify(nrm, make_ref(["Ca K", "Fe K", "Zn K"], [2.0, 4.0, 5.0], [0.2, 0.2, 0.5]))
    rayl_ref = nrm["sum_area"].sel(line="Rayl").item() / 1e5  # the file's norm/ sums
    ratio = nrm["normalised"].sel(line="Fe K") / nrm["normalised"].sel(line="Rayl")
    np.testing.assert_allclose(
        q["concentration"].sel(line="Fe K").values, (ratio / (4.0 / rayl_ref)).values
    )
    assert q["references"].values.tolist() == [str(ref_file)]
    assert want.attrs["unit"] == "ug/cm2"
    # the sample as a file: norm/ read from it, its kmeans/ and datasets serve masks
    sample = tmp_path / "sample.h5"
    xd.to_h5(nrm, sample, group="norm")
    with h5py.File(sample, "a") as f:
        f["kmeans/channel00/ims"] = np.array([[0, 1, 2]] * 4)
        f["kmeans/channel00/nclusters"] = 3
        f["masks/roi"] = np.array([[1, 0, 0]] * 4, dtype=np.uint8)
    q = quantify(str(sample), str(ref_file), mask="kmeans/CLR1")
    c = q["concentration"].sel(line="Fe K").values[..., 0]
    assert np.isfinite(c[:, 1]).all() and np.isnan(c[:, [0, 2]]).all()
    q = quantify(str(sample), str(ref_file), mask="masks/roi")
    c = q["concentration"].sel(line="Fe K").values[..., 0]
    assert np.isfinite(c[:, 0]).all() and np.isnan(c[:, 1:]).all()


def test_reads_xrf_proc_quant(tmp_path):
    """xrf_proc's own quant/: ratio_exp of the last absorber only (y, x), refs a repr string."""
    path = tmp_path / "xrf_proc.h5"
    with h5py.File(path, "w") as f:
        g = f.create_group("quant/channel00")
        g["names"] = [b"Fe K", b"Zn K"]
        g["ims"] = np.arange(24.0).reshape(2, 4, 3)
        g["ims_stddev"] = np.ones((2, 4, 3))
        g["ims"].attrs["Unit"] = "ug/cm²"
        g["sum/int"] = [1.0, 2.0]
        g["sum/int_stddev"] = [0.1, 0.2]
        g["refs"] = np.bytes_(str(np.array(["a.h5", "b.h5"])))
        g["ratio_exp"] = np.full((4, 3), 6.5)
        g["ratio_th"] = [7.4]
        g["rhot"] = np.zeros((4, 3))
    q = xd.open_h5(path, group="quant")
    assert q["ratio_exp"].dims == ("y", "x", "detector", "absorber")
    assert q["ratio_exp"].shape == (4, 3, 1, 1) and float(q["ratio_exp"].max()) == 6.5
    assert q["references"].values.tolist() == ["['a.h5' 'b.h5']"]
    assert q["concentration"].sel(line="Zn K").values[1, 2, 0] == 17.0
