"""Users' own PyMca configurations (not made by make_fit_config): xd.fit against PyMca.

Each configuration is written the way people write them: PyMca's shipped ``McaTheory.cfg``
edited by hand, several excitation energies, attenuators and a matrix, L and M lines, escape
peaks, pile-up. The maps are synthetic with known content: every spectrum is PyMca's own peak
model of that configuration (its ``linearMatrix``: groups, scatter and escape peaks) times known
areas, plus a known smooth continuum where the configuration subtracts a background, plus
pile-up where it fits one, drawn with Poisson noise. For each configuration:

- ``method="pymca"`` equals PyMca's ``fitMultipleSpectra`` on the whole map in memory (same
  ``ysum``) to 1e-6, areas and uncertainties;
- ``method="linear"`` agrees with it within 0.5 % on lines with at least 100 counts per pixel,
  under the same weighting.
"""

from __future__ import annotations

import copy
import os
import warnings

import numpy as np
import pytest
import xarray as xr
from PyMca5.PyMcaIO.ConfigDict import ConfigDict
from PyMca5.PyMcaMath.fitting import SpecfitFuns
from PyMca5.PyMcaMath.linalg import lstsq
from PyMca5.PyMcaPhysics.xrf.FastXRFLinearFit import FastXRFLinearFit

import xrfdask as xd
from xrfdask.errors import ConfigError, XrfdaskWarning
from xrfdask.fit.config import load_config
from xrfdask.fit.model import build_model, line_label

SHAPE = (12, 20)  # 240 pixels
NCHAN = 2048


def shipped_cfg() -> dict:
    """PyMca's own default configuration file, as a user opens it."""
    import PyMca5

    cfg = ConfigDict()
    cfg.read(os.path.join(os.path.dirname(PyMca5.__file__), "PyMcaData", "McaTheory.cfg"))
    return copy.deepcopy(dict(cfg))


def base_cfg(**fit) -> dict:
    """A hand-written configuration for a 10 eV/channel SDD and a Mo tube, SNIP background."""
    cfg = shipped_cfg()
    cfg["fit"].update(
        xmin=120, xmax=1900, use_limit=1, energy=17.44, stripflag=1, stripalgorithm=1,
        snipwidth=30, stripfilterwidth=1, fitweight=0, scatterflag=1, escapeflag=0,
    )  # fmt: skip
    cfg["fit"].update(fit)
    cfg["detector"].update(zero=0.0, gain=0.01, noise=0.1, fano=0.114)
    cfg["peaks"] = {"Ca": "K", "Fe": "K", "Zn": "K", "Sr": "K"}
    return cfg


def case_shipped():
    # The configuration: the shipped file, fitweight 1, Mo Kα, nine K groups (Zr K is
    # not excited by 17.479 keV: PyMca fits it with its radiative-rate ratios).
    cfg = shipped_cfg()
    cfg["fit"]["fitweight"] = 1
    cfg["fit"]["energy"] = 17.479
    cfg["peaks"] = {e: "K" for e in ("K", "Ca", "Ti", "Mn", "Fe", "Cu", "Zn", "Sr", "Zr")}
    return cfg


def case_energies():
    cfg = base_cfg(fitweight=1)
    cfg["fit"].update(
        energy=[17.44, 19.6, 15.0], energyweight=[0.7, 0.2, 0.1], energyflag=[1, 1, 1],
        energyscatter=[1, 1, 0],
    )  # fmt: skip
    cfg["attenuators"]["Matrix"] = [1, "Si1O2", 2.65, 0.001, 45.0, 45.0]
    return cfg


def case_attenuators():
    cfg = base_cfg()
    cfg["attenuators"].update(
        window=[1, "Be1", 1.848, 0.0025, 1.0],
        atmosphere=[1, "Air", 0.0012048, 1.0, 1.0],
        Detector=[1, "Si1", 2.33, 0.045, 1.0],
        Matrix=[1, "Ca1C1O3", 2.71, 0.01, 45.0, 45.0],
    )
    cfg["concentrations"]["usematrix"] = 0
    return cfg


def case_l_and_m():
    cfg = base_cfg()
    cfg["fit"]["xmin"] = 150
    cfg["peaks"] = {"Fe": "K", "Zn": "K", "Pb": ["L", "M"], "W": ["L1", "L2", "L3"]}
    return cfg


def case_escape():
    cfg = base_cfg(escapeflag=1)
    cfg["detector"]["detele"] = "Si"
    return cfg


def case_pileup():
    cfg = base_cfg(sumflag=1)
    cfg["detector"].update(sum=2e-6, fixedsum=0)
    return cfg


CASES = {
    "shipped-edited": (case_shipped, NCHAN),
    "several-energies": (case_energies, NCHAN),
    "attenuators-matrix": (case_attenuators, NCHAN),
    "l-and-m-lines": (case_l_and_m, NCHAN),
    "escape": (case_escape, NCHAN),
    "pile-up": (case_pileup, NCHAN),
}


def peak_model(cfg: dict, nchan: int) -> tuple[np.ndarray, list[str]]:
    """PyMca's peak columns (channels x groups, area 1 each) of ``cfg`` over every channel."""
    used = copy.deepcopy(cfg)
    used["fit"].update(stripflag=0, continuum=0, sumflag=0, xmin=0, xmax=nchan - 1)
    fast = FastXRFLinearFit()
    fast.setFitConfiguration(used)
    fast._fitConfigure(weight=0, nSpectra=1)  # PyMca's linear model, as fitMultipleSpectra's
    x = np.arange(nchan, dtype=np.float64)
    fast._mcaTheory.setData(x=x, y=np.ones(nchan), xmin=0, xmax=nchan - 1)
    derivatives, names, _, n_bkg = fast._fitCreateModel(dtype=np.float64)
    assert n_bkg == 0 and derivatives.shape[0] == nchan
    return derivatives, list(names)


def synthetic_map(cfg: dict, nchan: int, seed: int = 0) -> tuple[xr.Dataset, dict[str, np.ndarray]]:
    """Known areas on a smooth pattern (strongest groups 300-3000 counts), the configuration's
    peak shapes, a continuum when it subtracts a background, pile-up when it fits one."""
    columns, names = peak_model(cfg, nchan)
    ny, nx = SHAPE
    v, u = np.meshgrid(np.linspace(0, 1, ny), np.linspace(0, 1, nx), indexing="ij")
    areas = {}
    for k, name in enumerate(names):
        level = 3000.0 / (1 + k % 4)
        areas[name] = level * (0.1 + 0.9 * (0.5 + 0.5 * np.sin(2.1 * u * (k + 1) + 3.0 * v + k)))
    expected = np.einsum("yxk,ck->yxc", np.stack([areas[n] for n in names], axis=-1), columns)
    if cfg["fit"]["stripflag"]:
        energy = cfg["detector"]["zero"] + cfg["detector"]["gain"] * np.arange(nchan)
        continuum = 20.0 * np.exp(-energy / 6.0) * (energy > 0.5)
        expected += (0.5 + u + v)[..., None] * continuum
    if cfg["fit"].get("sumflag"):
        det = cfg["detector"]
        for iy in range(ny):
            for ix in range(nx):
                expected[iy, ix] += det["sum"] * SpecfitFuns.pileup(
                    expected[iy, ix], 0, det["zero"], det["gain"]
                )
    counts = np.random.default_rng(seed).poisson(np.maximum(expected, 0.0))
    spectra = counts.astype(np.uint16)[:, :, None, :]
    ds = xr.Dataset(
        {"spectra": (("y", "x", "detector", "channel"), spectra)},
        coords={"detector": [0], "channel": np.arange(nchan)},
    )
    return ds, areas


def pymca_whole_map(ds: xr.Dataset, cfg: dict, weight: int | None):
    """PyMca the old way: the whole map in memory, one fitMultipleSpectra call, global ysum."""
    cube = ds.spectra.isel(detector=0).values
    fast = FastXRFLinearFit()
    fast.setFitConfiguration(copy.deepcopy(cfg))
    out = fast.fitMultipleSpectra(
        x=np.arange(cube.shape[-1]), y=cube, ysum=cube.sum((0, 1), dtype=np.float64),
        weight=weight, refit=True, save=False,
    )  # fmt: skip
    labels = [line_label(n) for n in out.labels("parameters")]
    return labels, np.asarray(out["parameters"]), np.asarray(out["uncertainties"])


def run_fit(ds, cfg, method, weight=None, expect_warning=None):
    if expect_warning:
        with pytest.warns(XrfdaskWarning, match=expect_warning):
            return xd.fit(ds, cfg, method=method, weight=weight).compute()
    return xd.fit(ds, cfg, method=method, weight=weight).compute()


@pytest.fixture(scope="module", params=list(CASES), ids=list(CASES))
def case(request, tmp_path_factory):
    make, nchan = CASES[request.param]
    cfg = make()
    ds, areas = synthetic_map(load_config(cfg), nchan)
    path = tmp_path_factory.mktemp("cfg") / f"{request.param}.cfg"  # a file, as users give it
    ConfigDict(initdict=copy.deepcopy(cfg)).write(str(path))
    warning = r"^peaks\.Zr: Zr K cannot be excited" if request.param == "shipped-edited" else None
    return request.param, cfg, str(path), ds, areas, warning


def test_pymca_method_equals_pymca(case):
    name, cfg, path, ds, _, warning = case
    ours = run_fit(ds, path, "pymca", expect_warning=warning)
    labels, params, errors = pymca_whole_map(ds, cfg, weight=None)
    assert sorted(ours.line.values.tolist()) == sorted(labels)
    for i, label in enumerate(labels):
        got = ours.peak_area.sel(detector=0, line=label).values
        scale = np.abs(params[i]).max()
        np.testing.assert_allclose(got, params[i], rtol=1e-6, atol=1e-6 * scale, err_msg=label)
        err = ours.peak_area_error.sel(detector=0, line=label).values
        np.testing.assert_allclose(err, errors[i], rtol=1e-6, atol=1e-9, err_msg=label)


def test_linear_agrees_with_pymca_under_the_same_weighting(case):
    name, cfg, path, ds, areas, warning = case
    weight = 1 if load_config(cfg)["fit"]["fitweight"] else 0
    linear = run_fit(ds, path, "linear", expect_warning=warning)  # fitweight 1: weight 1
    assert linear.attrs["weight_policy"] == weight
    reference = run_fit(ds, path, "pymca", weight=weight, expect_warning=warning)
    labels, params, errors = pymca_whole_map(ds, cfg, weight=weight)
    strong = 0
    for i, label in enumerate(labels):
        ref = reference.peak_area.sel(detector=0, line=label).values
        np.testing.assert_allclose(ref, params[i], rtol=1e-6, atol=1e-6 * np.abs(params[i]).max())
        got = linear.peak_area.sel(detector=0, line=label).values
        mask = ref >= 100
        if mask.any():
            strong += 1
            np.testing.assert_allclose(got[mask], ref[mask], rtol=5e-3, err_msg=label)
        # Uncertainties: PyMca's for this weighting (one fixed matrix: the same in every pixel
        # the refit leaves alone).
        err = linear.peak_area_error.sel(detector=0, line=label).values
        kept = (params >= 0).all(axis=0)
        np.testing.assert_allclose(err[kept], errors[i][kept], rtol=1e-5, err_msg=label)
    assert strong >= 3
    # Without a background to subtract the fit finds the known content (the SNIP background
    # of the other cases takes a share of the peaks: a property of SNIP, not of the engines).
    for group in ("Fe K", "Zn K") if not cfg["fit"]["stripflag"] else ():
        if group in areas:
            got = linear.peak_area.sel(detector=0, line=group).values
            assert np.median(got / areas[group]) == pytest.approx(1.0, abs=0.03), group


def test_shipped_config_reports_zr_k():
    """The issue's report: PyMca fits Zr K under 17.479 keV (radiative-rate ratios), so does xd."""
    cfg = case_shipped()
    ds, _ = synthetic_map(load_config(cfg), NCHAN)
    with pytest.warns(XrfdaskWarning, match=r"'Zr K' area"):
        fit = xd.fit(ds, cfg, method="linear")
    assert "Zr K" in fit.line.values
    assert fit.attrs["weight_policy"] == 1  # fitweight 1: the sum spectrum's average weights


def test_linear_refuses_what_it_cannot_do_naming_the_option():
    ds, _ = synthetic_map(load_config(base_cfg()), NCHAN)
    cfg = base_cfg()
    with pytest.raises(ConfigError, match=r"^weight=2: .*'pymca' and 'full'"):
        xd.fit(ds, cfg, method="linear", weight=2)
    cfg["fit"]["stripalgorithm"] = 0  # the strip background
    with pytest.raises(ConfigError, match=r"^fit\.stripalgorithm: .*method 'full'"):
        xd.fit(ds, cfg, method="linear")
    cfg = base_cfg(stripflag=0, continuum=5)  # exponential polynomial continuum
    with pytest.raises(ConfigError, match=r"^fit\.continuum: .*method 'full'"):
        xd.fit(ds, cfg, method="pymca")


def test_model_uncertainties_are_pymca_lstsq_for_average_weights():
    """LinearModel.sigma for weight 1 is PyMca's lstsq with sigma_b = 1 + sqrt(ysum)/npixels."""
    cfg = load_config(case_escape())
    ds, _ = synthetic_map(cfg, NCHAN)
    cube = ds.spectra.isel(detector=0).values.reshape(-1, NCHAN).astype(np.float64)
    ysum = cube.sum(axis=0)
    model = build_model(cfg, ysum, npixels=cube.shape[0], weight=1)
    assert model.weight_policy == 1
    sigma_b = 1 + np.sqrt(ysum[model.xmin : model.xmax]) / cube.shape[0]
    b = cube[:10, model.xmin : model.xmax].T
    params, sigma = lstsq(model.derivatives, b, sigma_b=sigma_b, weight=1, digested_output=False)
    np.testing.assert_allclose(model.sigma, sigma[:, 0], rtol=1e-10)
    np.testing.assert_allclose(model.pinv @ (b / sigma_b[:, None]), params, rtol=1e-8, atol=1e-8)


def test_a_degenerate_parameter_bound_gives_no_numpy_warning():
    # Found by benchmarks/fuzz_inputs.py: deltazero = 1e-300 bounds the zero to a range PyMca's
    # optimiser maps through sin(inf): numpy's RuntimeWarnings escaped xd.fit's sum-spectrum fit.
    cfg = base_cfg()
    cfg["detector"]["deltazero"] = 1e-300
    ds = xd.datasets.example_dataset(shape=(1, 2), n_detectors=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        fit = xd.fit(ds, cfg)
        assert np.isfinite(fit.sum_area.values).all()
