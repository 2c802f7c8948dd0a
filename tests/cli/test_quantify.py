"""``xrfdask quantify``: the API's numbers in quant/, one-line errors, no silent overwrite."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

import xrfdask as xd
from xrfdask.datasets import quantification_map
from xrfdask.quantify import quantify

ELEMENTS = ["Ca", "Fe", "Zn"]
CNC = """Standard_Name
layer
Density(mg/cm^3)\tMass(mg)\tSample_thickness(micron)
2500\t1\t10
Number of elements
2
Z\tCert conc(ppm)\tStandard_error(ppm)
8\t500000\t0
14\t500000\t0
"""


def _fitted(run, path, ppm, seed, layer=None):
    raw = quantification_map(ppm, shape=(4, 4), sensitivity=1e-4, seed=seed, layer=layer)
    xd.to_h5(raw, path)
    code, _, err = run("fit", str(path), "--elements", *ELEMENTS, "--excitation", "20",
                       "-o", str(path))  # fmt: skip
    assert code == 0, err
    code, _, err = run("normalise", str(path), "--errors", "poisson")
    assert code == 0, err


@pytest.fixture
def files(run, tmp_path):
    ref, sample = tmp_path / "ref.h5", tmp_path / "sample.h5"
    _fitted(run, ref, {"Ca": 8e4, "Fe": 5e4, "Zn": 1e4}, 1)
    _fitted(run, sample, {"Ca": 3e4, "Fe": 2e5, "Zn": 2e4}, 2,
            layer=(0.004, {"O": 0.5, "Si": 0.5}))  # fmt: skip
    # elyield/ by the spec's formula (5.4): Y = P_norm / normto / c_A, c_A = c x 0.01 g/cm²
    nrm = xd.open_h5(ref, group="norm")
    lines = [f"{e} K" for e in ELEMENTS]
    y = nrm["sum_area"].sel(line=lines) / nrm.attrs["I0"] / (np.array([8e4, 5e4, 1e4]) * 0.01)
    el = y.to_dataset(name="elemental_yield").assign(elemental_yield_error=y * 0.01)
    xd.to_h5(el.assign_attrs(cnc="glass.cnc"), ref, group="elyield")
    cnc = tmp_path / "layer.cnc"
    cnc.write_text(CNC)
    return ref, sample, cnc


def test_quantify_command(run, files, tmp_path):
    ref, sample, cnc = files
    code, stdout, err = run("quantify", str(sample), "--ref", str(ref), "--density", "2.5",
                            "--thickness", "40 um")  # fmt: skip
    assert code == 0, err
    assert "quantified Ca K, Fe K, Zn K (ug/g)" in stdout and "(quant/)" in stdout
    want = quantify(xd.open_h5(sample, group="norm"), str(ref), density=2.5, thickness=0.004)
    with h5py.File(sample) as f:
        np.testing.assert_allclose(
            f["quant/channel00/ims"][...],
            want["concentration"].isel(detector=0).transpose("line", "y", "x").values,
        )
        assert [r.decode() for r in f["quant/channel00/refs"][()]] == [str(ref)]
    # not replaced without --overwrite
    code, _, err = run("quantify", str(sample), "--ref", str(ref))
    assert code == 1 and "overwrite" in err and len(err.strip().splitlines()) == 1
    out = tmp_path / "abs.h5"
    code, _, err = run("quantify", str(sample), "--ref", str(ref), "--absorb", "Fe",
                       "--matrix", str(cnc), "-o", str(out))  # fmt: skip
    assert code == 0, err
    q = xd.open_h5(out, group="quant")
    assert float(q["rhot"].mean()) == pytest.approx(0.004, rel=0.1)
    assert q["absorber"].values.tolist() == ["Fe"]


def test_quantify_bad_input(run, files, tmp_path):
    ref, sample, _ = files
    code, _, err = run("quantify", str(sample), "--ref", str(sample))  # no elyield/
    assert code == 1 and "no 'elyield/' group" in err and len(err.strip().splitlines()) == 1
    code, _, err = run("quantify", str(sample), "--ref", str(ref), "--density", "2.5")
    assert code == 2 and "--density and --thickness together" in err
    code, _, err = run("quantify", str(sample), "--ref", str(ref), "--mask", "kmeans/CLR1",
                       "-o", str(tmp_path / "m.h5"))  # fmt: skip
    assert code == 1 and "k-means" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.h5").exists()
