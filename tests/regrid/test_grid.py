"""The grid and the interpolation plan against scipy's griddata, as xrf_proc calls it.

The reference below follows spec xrf_proc.md 4.5 step by step (row-wise half-pixel shift,
np.average of the motors, np.mgrid grid, one ``griddata`` call per channel, transposed back).
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy.interpolate import griddata
from scipy.spatial import cKDTree

from xrfdask.regrid import regrid
from xrfdask.regrid.grid import interpolation, snake_positions


def xrf_proc_snake(mot1, mot2, images, shift, method="nearest"):
    """Spec 4.5 on (rows, columns) motors and a list of (rows, columns) images."""
    mot1 = np.array(mot1, dtype=float)
    if shift:
        low, high = np.min(mot1[:, 0]), np.max(mot1[:, 0])
        for row in range(mot1.shape[0]):
            step = abs(mot1[row, 1] - mot1[row, 0]) / 2.0
            if mot1[row, 0] <= np.average((high, low)):
                mot1[row, :] += step
            else:
                mot1[row, :] -= step
    cols = np.average(mot1, axis=0)
    rows = np.average(mot2, axis=1)
    gx, gy = np.mgrid[
        cols[0] : cols[-1] : complex(cols.size), rows[0] : rows[-1] : complex(rows.size)
    ]
    points = (mot1.ravel(), np.asarray(mot2, dtype=float).ravel())
    out = [griddata(points, im.ravel(), (gx, gy), method=method).T for im in images]
    return out, gx.T, gy.T


def scattered(ny, nx, seed, jitter=0.3):
    """Sorted rows of a snake with random jitter: each row's positions ascend."""
    rng = np.random.default_rng(seed)
    base = np.arange(nx, dtype=float) * 1.0 + 5.0
    offset = np.where(np.arange(ny) % 2 == 0, 0.0, 0.5)[:, None]  # backward rows trigger late
    mot1 = base[None, :] + offset + rng.uniform(-jitter, jitter, (ny, nx))
    mot1.sort(axis=1)
    mot2 = np.arange(ny, dtype=float)[:, None] * 0.7 + rng.uniform(-0.2, 0.2, (ny, nx))
    return mot1, mot2


def as_map(mot1, mot2, cube):
    ny, nx = mot1.shape
    return xr.Dataset(
        {
            "spectra": (("y", "x", "detector", "channel"), cube),
            "mot1": (("y", "x"), mot1),
            "mot2": (("y", "x"), mot2),
        }
    )


@pytest.mark.parametrize("shift", [True, False])
def test_nearest_is_griddata_nearest_per_channel(shift):
    mot1, mot2 = scattered(9, 11, seed=1)
    rng = np.random.default_rng(2)
    cube = rng.normal(size=(9, 11, 1, 5))
    expected, gx, gy = xrf_proc_snake(mot1, mot2, [cube[:, :, 0, c] for c in range(5)], shift)
    out = regrid(as_map(mot1, mot2, cube), half_pixel_shift=shift)
    for c in range(5):
        np.testing.assert_array_equal(out.spectra.values[:, :, 0, c], expected[c])
    np.testing.assert_array_equal(out.mot1.values, gx)
    np.testing.assert_array_equal(out.mot2.values, gy)


def test_ties_break_as_griddata_does():
    # Integer positions, odd rows one step further: without the shift the column means sit
    # halfway between two positions of every row, so every grid point has two nearest pixels.
    ny, nx = 6, 9
    mot1 = np.arange(nx, dtype=float)[None, :] + (np.arange(ny) % 2)[:, None]
    mot2 = np.repeat(np.arange(ny, dtype=float)[:, None], nx, axis=1)
    values = np.arange(ny * nx, dtype=float).reshape(ny, nx)
    expected, gx, gy = xrf_proc_snake(mot1, mot2, [values], shift=False)
    query = np.column_stack((gx.ravel(), gy.ravel()))
    dist, _ = cKDTree(np.column_stack((mot1.ravel(), mot2.ravel()))).query(query, k=2)
    assert (dist[:, 0] == dist[:, 1]).mean() > 0.8  # the layout really is full of ties
    out = regrid(as_map(mot1, mot2, values[:, :, None, None]), half_pixel_shift=False)
    np.testing.assert_array_equal(out.spectra.values[:, :, 0, 0], expected[0])
    # another valid choice among the ties (the lowest pixel number) would differ
    d2 = ((query[:, None, :] - np.column_stack((mot1.ravel(), mot2.ravel()))[None]) ** 2).sum(-1)
    assert not np.array_equal(values.ravel()[d2.argmin(axis=1)].reshape(ny, nx), expected[0])


def test_linear_is_griddata_linear():
    mot1, mot2 = scattered(8, 10, seed=3)
    rng = np.random.default_rng(4)
    cube = rng.normal(size=(8, 10, 1, 3))
    expected, _, _ = xrf_proc_snake(
        mot1, mot2, [cube[:, :, 0, c] for c in range(3)], True, method="linear"
    )
    out = regrid(as_map(mot1, mot2, cube), method="linear")
    for c in range(3):
        got = out.spectra.values[:, :, 0, c]
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected[c]))
        np.testing.assert_allclose(got, expected[c], rtol=1e-12, atol=1e-12, equal_nan=True)
    assert np.isnan(expected[0]).any() and np.isfinite(expected[0]).mean() > 0.7


def test_rows_in_acquisition_order_give_the_sorted_rows_grid():
    # xrf_proc's column means assume sorted rows; rows left in snake order give the same grid
    mot1, mot2 = scattered(6, 7, seed=5, jitter=0.0)
    snake = mot1.copy()
    snake[1::2] = snake[1::2, ::-1]
    _, x_sorted, y_sorted = snake_positions(mot1, mot2, True)
    _, x_snake, y_snake = snake_positions(snake, mot2, True)
    np.testing.assert_allclose(x_snake, x_sorted, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(y_snake, y_sorted)


def test_non_finite_positions_take_no_part():
    mot1, mot2 = scattered(5, 6, seed=6, jitter=0.0)
    mot1[2, 3] = np.nan
    plan = interpolation(mot1, mot2, np.arange(6.0) + 5, np.arange(5) * 0.7, "nearest")
    assert 2 * 6 + 3 not in plan.index
    assert plan.index.shape == (5, 6, 1)
