"""The compiled per-pixel projection used by the linear solvers."""

import numpy as np
import pytest

from xrfdask.fit.project import project


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_project_matches_matrix_product(dtype):
    rng = np.random.default_rng(3)
    matrix = rng.normal(size=(7, 301))
    y = rng.poisson(50, size=(40, 301)).astype(dtype)
    expected = y.astype(np.float64) @ matrix.T
    np.testing.assert_allclose(project(matrix, y), expected, rtol=1e-12)


def test_project_does_not_depend_on_the_batch():
    """A pixel's result is bit-identical whether it is projected alone or among many."""
    rng = np.random.default_rng(4)
    matrix = rng.normal(size=(5, 1000))
    y = rng.normal(size=(64, 1000)).astype(np.float32)
    together = project(matrix, y)
    alone = np.concatenate([project(matrix, y[p : p + 1]) for p in range(len(y))])
    np.testing.assert_array_equal(together, alone)
    for start in range(1, 4):  # every position within the kernel's groups of four pixels
        np.testing.assert_array_equal(
            project(matrix, y[start : start + 11]), together[start : start + 11]
        )


def test_project_fills_a_given_output_and_accepts_views():
    rng = np.random.default_rng(5)
    matrix = rng.normal(size=(3, 50))
    y = rng.normal(size=(50, 20))  # (channels, pixels): pass the transposed view
    out = np.empty((20, 3), dtype=np.float32)
    result = project(matrix, y.T, out)
    assert result is out
    np.testing.assert_allclose(out, (matrix @ y).T, rtol=1e-5)
