"""The map-wide non-negativity refit reproduces PyMca's whole-map refit exactly, in any chunking."""

import copy

import numpy as np
import pytest
from PyMca5.PyMcaPhysics.xrf.FastXRFLinearFit import FastXRFLinearFit

import xrfdask as xd
from xrfdask.datasets import ELEMENTS, example_dataset
from xrfdask.fit.engines.blocks import trimmed
from xrfdask.fit.engines.linear import solve_linear
from xrfdask.fit.engines.pymca import solve_pymca
from xrfdask.fit.model import build_model
from xrfdask.fit.refit import RefitStep, refit_log, replay

# Absent elements whose lines overlap real ones: many negative areas, several refit steps.
ABSENT = ["Cr", "Co", "Se", "Br", "Rb", "Ga"]


@pytest.fixture(scope="module")
def crop():
    ds = example_dataset(shape=(24, 32), seed=3)
    return ds, ds.spectra.values[:, :, 0]


@pytest.fixture(scope="module")
def config(crop):
    return xd.make_fit_config(crop[0], list(ELEMENTS) + ABSENT)


def pymca_whole_map(cube, config, weight):
    fast = FastXRFLinearFit()
    fast.setFitConfiguration(copy.deepcopy(config))
    out = fast.fitMultipleSpectra(
        x=np.arange(cube.shape[-1]),
        y=cube,
        ysum=cube.sum((0, 1), dtype=float),
        weight=weight,
        refit=True,
        save=False,
    )
    return out["parameters"], out["uncertainties"]


def chunked(cube, model, solve, nbands):
    ny, nx, nchan = cube.shape
    bands = np.array_split(np.arange(ny), nbands)
    solved = [solve(trimmed(cube[b].reshape(-1, nchan), model), model) for b in bands]
    steps = refit_log([s[2] for s in solved], model)
    xs, ss = [], []
    for x, sigma, found in solved:
        x, sigma = x.copy(), sigma.copy()
        replay(x, sigma, found, steps, model)
        xs.append(x)
        ss.append(sigma)
    shape = (ny, nx, model.n_free)
    return (
        np.concatenate(xs).reshape(shape).transpose(2, 0, 1),
        np.concatenate(ss).reshape(shape).transpose(2, 0, 1),
        steps,
    )


@pytest.mark.parametrize("weight", [0, 1, 2])
def test_equal_to_pymca_refitting_the_whole_map(crop, config, weight):
    _, cube = crop
    params, errors = pymca_whole_map(cube, config, weight)
    model = build_model(
        config, cube.sum((0, 1), dtype=float), npixels=cube.shape[0] * cube.shape[1], weight=weight
    )
    for nbands in (1, 5, 24):
        x, sigma, steps = chunked(cube, model, solve_pymca, nbands)
        assert len(steps) >= 2, steps  # the case exercises several refit iterations
        np.testing.assert_allclose(x, params, rtol=1e-6, atol=1e-6 * np.abs(params).max())
        np.testing.assert_allclose(sigma, errors, rtol=1e-6, atol=1e-9)
        assert (x[model.n_free_bkg :] >= 0).all()


def test_linear_engine_takes_the_same_refit_decisions(crop, config):
    _, cube = crop
    model = build_model(
        config, cube.sum((0, 1), dtype=float), npixels=cube.shape[0] * cube.shape[1]
    )
    x_p, _, steps_p = chunked(cube, model, solve_pymca, 3)
    x_l, _, steps_l = chunked(cube, model, solve_linear, 8)
    assert steps_l == steps_p
    strong = np.abs(x_p) > 100
    np.testing.assert_allclose(x_l[strong], x_p[strong], rtol=1e-4)


def test_few_negative_pixels_are_zeroed_not_refitted(crop, config):
    """PyMca sets a peak to zero without refitting when under 0.25 % of the pixels need it."""
    _, cube = crop
    model = build_model(config, cube.sum((0, 1), dtype=float), npixels=10**6)  # as in a huge map
    x, sigma, steps = chunked(cube, model, solve_pymca, 4)
    assert {s.action for s in steps} == {"zero"}
    first_x, _, _ = solve_pymca(trimmed(cube.reshape(-1, cube.shape[-1]), model), model)
    final = x.transpose(1, 2, 0).reshape(-1, model.n_free)
    # Zeroing leaves every other area as first fitted: each value is unchanged or zero.
    assert np.all((final == first_x) | (final == 0))
    assert (final != first_x).any()
    assert (x[model.n_free_bkg :] >= 0).all()


def test_refit_steps_are_recorded():
    assert RefitStep((3, 5), "refit") == RefitStep((3, 5), "refit")
    assert RefitStep((3,), "zero") != RefitStep((3,), "refit")
