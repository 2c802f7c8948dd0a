"""A model matrix applied to every pixel of a block, compiled.

The linear solvers need ``matrix @ y`` for each pixel spectrum ``y`` of a block: the
pseudo-inverse for the areas, ``U.T`` for the refit state. A BLAS matrix product would do it,
but it is avoided here on purpose:

- a BLAS product batches pixels in blocks whose rounding depends on how many pixels there are,
  and a result must not depend on the chunking;
- BLAS starts its own threads, which fight dask's worker threads (measured on 2 cores: two
  threaded-scheduler workers ran the linear fit at 0.86-0.98x one worker, and at 1.7x with BLAS
  held to one thread). Limiting BLAS per task does not work: threadpoolctl only obeys the
  thread that first loaded the library.

This loop is as fast as single-threaded BLAS for these shapes (tens of rows, ~2000 channels)
and releases the GIL.
"""

from __future__ import annotations

import numba
import numpy as np

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


@numba.njit(cache=True, nogil=True, fastmath=True)
def _project(y, matrix, out):  # pragma: no cover - compiled
    npix, nchan = y.shape
    for p in range(npix):
        for j in range(matrix.shape[0]):
            acc = 0.0
            for c in range(nchan):
                acc += y[p, c] * matrix[j, c]
            out[p, j] = acc
