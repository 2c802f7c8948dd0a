"""``method="pymca"``: PyMca's own fast-fit steps per block, equal to PyMca fitting the whole map.

Per block, PyMca's per-spectrum background (``FastXRFLinearFit._fitBkgSubtract``, computed bit
for bit by :mod:`xrfdask.fit.background`, which releases the GIL) and solver
(``PyMca5.PyMcaMath.linalg.lstsq``) exactly as ``fitMultipleSpectra`` calls them, with the model
built from the global sum spectrum; the non-negativity refit is decided map-wide
(:mod:`xrfdask.fit.refit`). ``lstsq`` multiplies matrices with BLAS: the block tasks hold it to
one thread (:func:`~xrfdask.fit.blas.one_blas_thread`), as dask runs one task per core.
"""

from __future__ import annotations

import numpy as np

from xrfdask.fit.background import subtract_background
from xrfdask.fit.engines.blocks import Solved, SolveEngine
from xrfdask.fit.model import LinearModel
from xrfdask.fit.refit import candidates

__all__ = ["PymcaEngine", "solve_pymca"]


def solve_pymca(y: np.ndarray, model: LinearModel) -> Solved:
    """PyMca's fast-fit steps for one block, as ``fitMultipleSpectra`` runs them (no refit).

    ``y`` is a (pixels, fit channels) block (:func:`~xrfdask.fit.engines.blocks.trimmed`); it is
    overwritten.
    """
    from PyMca5.PyMcaMath.linalg import lstsq  # PyMca on first use: heavy to import

    if model.strip:
        # PyMca's _fitBkgSubtract, bit for bit, compiled and without the GIL (PyMca's loop over
        # pixels holds it, so two threads ran slower than one).
        subtract_background(
            y, model.snip_width, filter_width=model.filter_width, anchors=model.anchors, exact=True
        )
    chunk = y.T  # PyMca works on (channels, pixels) views
    npix = chunk.shape[1]
    x = np.empty((npix, model.n_free), dtype=model.result_dtype)
    sigma = np.empty_like(x)
    # ~1 MB slices of pixels, as PyMca's own chunked loop: lstsq copies its input to float64
    # and allocates weights of the same size, so whole bands would cost page faults.
    step = max(1, 2**20 // max(1, chunk.shape[0] * chunk.itemsize))
    for start in range(0, npix, step):
        kwargs = model.lstsq_kwargs
        if model.svd is not None:
            kwargs["last_svd"] = tuple(a.copy() for a in model.svd)  # lstsq edits s in place
        out = lstsq(
            model.derivatives, chunk[:, start : start + step], digested_output=True, **kwargs
        )
        x[start : start + step] = out["parameters"].T
        sigma[start : start + step] = out["uncertainties"].T
    return x, sigma, candidates(model, x, sigma, lambda rows: chunk[:, rows].T)


class PymcaEngine(SolveEngine):
    """PyMca's ``FastXRFLinearFit`` steps per block (:func:`solve_pymca`)."""

    name = "pymca"
    config_rules = "pymca"
    solve = staticmethod(solve_pymca)
