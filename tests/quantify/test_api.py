"""quantify and div_by_cnc on small hand-made Datasets against the formulas of spec section 6."""

from __future__ import annotations

import math

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from tests.quantify.synth import make_nrm, make_ref
from xrfdask.errors import ConfigError, XrfdaskWarning
from xrfdask.io.cnc import Cnc
from xrfdask.physics import alpha1_energy, composition_attenuation
from xrfdask.quantify import div_by_cnc, quantify

LINES = ["Ca K", "Fe K", "Zn K", "Compt", "Rayl"]


@pytest.fixture
def sample():
    rng = np.random.default_rng(1)
    counts = rng.uniform(100, 1000, size=(4, 3, 1, 5))
    counts[0, 0, 0, 0] = 0.0  # an area of 0: concentration 0 with a finite error
    i0 = rng.uniform(5e4, 1e5, size=(4, 3))
    return counts, i0, make_nrm(counts, LINES, i0, normto=1e5, background=[[10, 20, 30, 40, 50]])


def test_concentration_maps_and_sums(sample):
    counts, i0, nrm = sample
    ref = make_ref(["Ca K", "Fe K", "Zn K"], [2.0, 4.0, 5.0], [0.2, 0.2, 0.5])
    q = quantify(nrm, ref)
    assert isinstance(q["concentration"].data, da.Array)  # lazy
    assert q["concentration"].chunks[0] == nrm["normalised"].chunks[0]  # aligned rows
    assert list(q.line.values) == ["Ca K", "Fe K", "Zn K"] and q.attrs["unit"] == "ug/cm2"
    c = q["concentration"].values
    x = counts[..., 1] / i0[..., None]  # Fe: counts per I0 count
    assert c[..., 0, 1] == pytest.approx(x[..., 0] / 4.0)
    sx = np.sqrt(counts[..., 1]) / i0[..., None]
    se = q["concentration_error"].values[..., 0, 1]
    assert se == pytest.approx(np.sqrt((sx[..., 0] / 4.0) ** 2 + (c[..., 0, 1] * 0.05) ** 2))
    assert c[0, 0, 0, 0] == 0 and np.isfinite(q["concentration_error"].values[0, 0, 0, 0])
    p = counts[..., 2].sum() / i0.sum()
    assert float(q["sum_concentration"].sel(line="Zn K")[0]) == pytest.approx(p / 5.0)
    eps_p = math.sqrt(counts[..., 2].sum() + 2 * 30) / counts[..., 2].sum()
    want = p / 5.0 * math.sqrt(eps_p**2 + 0.1**2)
    assert float(q["sum_concentration_error"].sel(line="Zn K")[0]) == pytest.approx(want)
    assert q["references"].values.tolist() == ["ref.cnc"]


def test_two_references_averaged(sample):
    _, _, nrm = sample
    a = make_ref(["Fe K", "Zn K"], [4.0, 5.0], [0.4, 0.5], cnc="a.cnc")
    b = make_ref(["Fe K", "Ca K"], [2.0, 1.0], [0.1, 0.1], cnc="b.cnc")
    q = quantify(nrm, [a, b])
    y = q["elemental_yield"].sel(line="Fe K").item()
    assert y == 3.0
    assert q["elemental_yield_error"].sel(line="Fe K").item() == pytest.approx(
        math.sqrt(0.4**2 + 0.1**2) / 2
    )
    assert q["references"].values.tolist() == ["a.cnc", "b.cnc"]
    qc = quantify(nrm, [a, b], compat="xrf_proc")
    eps = math.sqrt(0.1**2 + 0.05**2)
    assert qc["elemental_yield_error"].sel(line="Fe K").item() == pytest.approx(3.0 * eps)


def test_norm_line_per_pixel(sample):
    counts, i0, nrm = sample
    ref = make_ref(["Ca K", "Fe K", "Zn K"], [2.0, 4.0, 5.0], [0.2, 0.2, 0.5], normto=1e5)
    q = quantify(nrm, ref, norm_line="Rayl")
    s_n = 2000.0 / 1e5
    ratio = counts[..., 1] / counts[..., 4]
    assert q["concentration"].values[..., 1] == pytest.approx(ratio / (4.0 / s_n))
    # compat (one reference): (I / I_norm) / (Y x S), S = the reference's norm/sum/int
    qc = quantify(nrm, ref, norm_line="Rayl", compat="xrf_proc")
    assert qc["concentration"].values[..., 1] == pytest.approx(ratio / (4.0 * 2000.0))
    p = counts[..., 1].sum() / counts[..., 4].sum()
    assert q["sum_concentration"].values[0, 1] == pytest.approx(p / (4.0 / s_n))


def test_norm_line_zero_pixel_is_nan(sample):
    counts, i0, _ = sample
    counts = counts.copy()
    counts[1, 1, 0, 4] = 0.0
    nrm = make_nrm(counts, LINES, i0, normto=1e5)
    ref = make_ref(["Fe K"], [4.0], [0.2])
    q = quantify(nrm, ref, norm_line="Rayl")
    assert np.isnan(q["concentration"].values[1, 1, 0]).all()
    assert np.isfinite(q["concentration"].values[0, 0, 0]).all()


def test_mask_default_and_compat(sample):
    counts, i0, nrm = sample
    ref = make_ref(["Ca K", "Fe K", "Zn K"], [2.0, 4.0, 5.0], [0.2, 0.2, 0.5])
    mask = np.zeros((4, 3), dtype=bool)
    mask[1:3, :2] = True
    q = quantify(nrm, ref, mask=mask)
    c = q["concentration"].values[..., 0, 1]
    assert np.isnan(c[~mask]).all() and np.isfinite(c[mask]).all()
    x = counts[..., 0, 1] / i0
    assert q["sum_concentration"].values[0, 1] == pytest.approx(x[mask].mean() / 4.0)
    sx = np.sqrt(counts[..., 0, 1]) / i0
    sigma = math.sqrt((sx[mask] ** 2).sum()) / mask.sum()
    want = math.hypot(sigma / 4.0, x[mask].mean() / 4.0 * 0.05)
    assert q["sum_concentration_error"].values[0, 1] == pytest.approx(want)
    # compat: sum(I m) / sum(I0 m), i.e. normalised twice (spec 12.17); maps 0 outside
    raw = xr.Dataset({"I0": (("y", "x"), i0)})
    qc = quantify(nrm, ref, mask=mask, compat="xrf_proc", raw=raw)
    norm = counts[..., 0, 1] / i0 * 1e5
    p = (norm * mask).sum() / (i0 * mask).sum()
    assert qc["sum_concentration"].values[0, 1] == pytest.approx(p / 4.0)
    assert (qc["concentration"].values[..., 0, 1][~mask] == 0).all()


def test_mask_cluster_and_wrong_shape(sample):
    _, _, nrm = sample
    ref = make_ref(["Fe K"], [4.0], [0.2])
    labels = xr.DataArray(np.array([[0, 1, 2]] * 4), dims=("y", "x"))
    q = quantify(nrm, ref, mask="kmeans/CLR2", labels=labels)
    c = q["concentration"].values[..., 0, 0]
    assert np.isfinite(c[:, 2]).all() and np.isnan(c[:, :2]).all()
    q = quantify(nrm, ref, mask=[0, 2], labels=labels)
    assert np.isnan(q["concentration"].values[:, 1]).all()
    with pytest.raises(ConfigError, match=r"mask \(ndarray\) has shape \(3, 4\), the map is 4 x 3"):
        quantify(nrm, ref, mask=np.ones((3, 4), dtype=bool))
    with pytest.raises(ConfigError, match="values other than 0 and 1"):
        quantify(nrm, ref, mask=np.full((4, 3), 2))
    with pytest.raises(ConfigError, match="pass labels= or the sample file"):
        quantify(nrm, ref, mask=3)


def test_mass_fractions_with_escape_depth_cap(sample):
    counts, i0, nrm = sample
    ref = make_ref(["Ca K", "Fe K", "Zn K"], [2.0, 4.0, 5.0], [0.2, 0.2, 0.5])
    q0 = quantify(nrm, ref)
    q = quantify(nrm, ref, density=2.5, thickness=0.01)
    assert q.attrs["unit"] == "ug/g" and q["concentration"].attrs["Unit"] == "ug/g"
    np.testing.assert_allclose(q["concentration"].values, q0["concentration"].values / 0.025)
    # the same in the units of a .cnc file
    qs = quantify(nrm, ref, density="2500 mg/cm3", thickness="100 um")
    np.testing.assert_allclose(qs["concentration"].values, q["concentration"].values)
    glass = Cnc("", "glass", 2500.0, 1.0, 100.0, np.array([8, 14]), np.array([5.3e5, 4.7e5]),
                np.zeros(2))  # fmt: skip
    qc = quantify(nrm, ref, density=2.5, thickness=0.01, composition=glass)
    for line in ("Ca K", "Zn K"):
        mu = composition_attenuation(glass, alpha1_energy(line, "pymca"), "pymca")
        depth = min(math.log(100) / (2.5 * mu), 0.01)
        want = q0["sum_concentration"].sel(line=line).item() / (2.5 * depth)
        assert qc["sum_concentration"].sel(line=line).item() == pytest.approx(want)
    assert math.log(100) / (2.5 * composition_attenuation(glass, 3.69, "pymca")) < 0.01  # capped


def test_missing_family(sample):
    _, _, nrm = sample
    ref = make_ref(["Pb L"], [4.0], [0.2])
    q = quantify(nrm, ref)
    assert np.isnan(q["concentration"].values).all()
    assert q.attrs["not_quantified"] == ["Ca K", "Fe K", "Zn K"]
    qc = quantify(nrm, ref, compat="xrf_proc")
    assert (qc["concentration"].values == -1).all() and (
        qc["concentration_error"].values == 0
    ).all()


@pytest.mark.parametrize(
    ("change", "kwargs", "message"),
    [
        (lambda n: n.drop_vars("normalised_error"), {}, "has no normalised_error"),
        (lambda n: n.rename(normalised="peak_area"), {}, "got a fit result"),
        (lambda n: n, {"density": 2.5}, "density given without thickness"),
        (lambda n: n, {"thickness": 0.1}, "thickness given without density"),
        (lambda n: n, {"density": "2.5 kg", "thickness": 1}, "density '2.5 kg': expected"),
        (lambda n: n, {"norm_line": "Kr K"}, "norm line 'Kr K' is not a fitted line"),
        (lambda n: n, {"compat": "pymca"}, "compat='pymca'"),
    ],
)
def test_bad_input_is_one_line(sample, change, kwargs, message):
    _, _, nrm = sample
    ref = make_ref(["Fe K"], [4.0], [0.2])
    with pytest.raises(ConfigError, match=message) as exc:
        quantify(change(nrm), ref, **kwargs)
    assert len(str(exc.value).splitlines()) == 1


def test_reference_for_another_detector(sample):
    _, _, nrm = sample
    ref = make_ref(["Fe K"], [4.0], [0.2], detectors=("channel01",))
    with pytest.raises(ConfigError, match="no yields for detector 'channel00'"):
        quantify(nrm, ref)


def test_div_by_cnc_error_once(sample):
    _, _, nrm = sample
    ref = make_ref(["Ca K", "Fe K", "Zn K"], [2.0, 4.0, 5.0], [0.2, 0.2, 0.5])
    q = quantify(nrm, ref, density=2.5, thickness=0.01)
    cnc = Cnc("", "m", 2500.0, 1.0, 100.0, np.array([20, 26]), np.array([1e4, 5e4]),
              np.array([1e3, 5e3]))  # fmt: skip
    rel = div_by_cnc(q, cnc)
    assert list(rel.line.values) == ["Ca K", "Fe K"]  # Zn: not certified
    c = q["concentration"].sel(line="Fe K").values
    sc = q["concentration_error"].sel(line="Fe K").values
    r = rel["relative_difference"].sel(line="Fe K").values
    np.testing.assert_allclose(r, c / 5e4)
    want = r * np.sqrt((sc / c) ** 2 + 0.1**2)  # once, not once per line (spec 12.19)
    np.testing.assert_allclose(rel["relative_difference_error"].sel(line="Fe K").values, want)
    assert rel["cnc"].item() == "m.cnc"
    with pytest.warns(XrfdaskWarning, match="not ug/g"):
        div_by_cnc(quantify(nrm, ref), cnc)
