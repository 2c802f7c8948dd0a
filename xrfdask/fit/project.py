"""A model matrix applied to every pixel of a block, compiled.

The linear solvers need ``matrix @ y`` for each pixel spectrum ``y`` of a block: the
pseudo-inverse for the areas, ``U.T`` for the refit state. A BLAS matrix product would do it,
but it is avoided here on purpose:

- a BLAS product batches pixels in blocks whose rounding depends on how many pixels there are,
  and a result must not depend on the chunking;
- BLAS starts its own threads, which fight dask's worker threads (measured on 2 cores: two
  threaded-scheduler workers ran the linear fit at 0.86-0.98x one worker, and at 1.7x with BLAS
  held to one thread). The engines that must call BLAS (PyMca's ``lstsq``) hold it to one
  thread while any task runs (:mod:`xrfdask.fit.blas`); this one needs no BLAS at all.

This loop, four pixels per pass over the matrix, is faster than single-threaded BLAS for these
shapes (tens of rows, ~2000 channels, measured 19 vs 43-75 ms per 10,000 spectra) and releases
the GIL.
"""

from __future__ import annotations

import numpy as np

from xrfdask._jit import jit

__all__ = ["project"]


def project(matrix: np.ndarray, y: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``out[p] = matrix @ y[p]`` for every pixel ``p``, each sum in float64.

    Parameters
    ----------
    matrix : (rows, channels) float64, C-contiguous
    y : (pixels, channels) float32 or float64 spectra
    out : optional (pixels, rows) array to fill (any float dtype); float64 when omitted

    Returns
    -------
    out : (pixels, rows)
    """
    if out is None:
        out = np.empty((y.shape[0], matrix.shape[0]), dtype=np.float64)
    _project(np.ascontiguousarray(y), np.ascontiguousarray(matrix, dtype=np.float64), out)
    return out


_GROUP = 4  # pixels per pass over the matrix: each matrix row is read once for four pixels


@jit(fastmath=True)
def _project(y, matrix, out):  # pragma: no cover - compiled
    npix, nchan = y.shape
    tail = npix % _GROUP
    for p in range(0, npix - tail, _GROUP):
        _project_group(y[p : p + _GROUP], matrix, out[p : p + _GROUP])
    if tail:
        # The last pixels go through the same code, zero-padded: every pixel's sums are made
        # the same way wherever it sits in the block.
        pad = np.zeros((_GROUP, nchan), dtype=y.dtype)
        for k in range(tail):  # a loop, not a slice assignment: see xrfdask._jit.copy
            for c in range(nchan):  # (nor copy(..., 0, n): a literal 0 is one more compilation)
                pad[k, c] = y[npix - tail + k, c]
        result = np.empty((_GROUP, matrix.shape[0]))
        _project_group(pad, matrix, result)
        for k in range(tail):
            for j in range(matrix.shape[0]):
                out[npix - tail + k, j] = result[k, j]


@jit(fastmath=True, inline="always")
def _project_group(y, matrix, out):  # pragma: no cover - compiled
    for j in range(matrix.shape[0]):
        a0 = a1 = a2 = a3 = 0.0
        for c in range(y.shape[1]):
            m = matrix[j, c]
            a0 += y[0, c] * m
            a1 += y[1, c] * m
            a2 += y[2, c] * m
            a3 += y[3, c] * m
        out[0, j] = a0
        out[1, j] = a1
        out[2, j] = a2
        out[3, j] = a3
