"""Per-block solvers: xrfdask's linear engine, PyMca's fast fit, PyMca's per-pixel fit.

Each takes a block of spectra trimmed to the fit range (pixels, fit channels, in the model's
result dtype; see :func:`trimmed`, or the ``.GeoPIXE`` reader's ``read_block_channels``, which
decodes straight into that form) and a :class:`~xrfdask.fit.model.LinearModel` built from the
global sum spectrum, and returns areas and uncertainties for every free parameter
(pixels, free) in PyMca's result dtype, plus the pixels the non-negativity refit may touch.

- ``linear``: the compiled SNIP (:mod:`xrfdask.fit.background`) over the whole block, then the
  model's pseudo-inverse (computed once) applied to every pixel by a compiled loop.
- ``pymca``: PyMca's own per-spectrum background (``FastXRFLinearFit._fitBkgSubtract``) and
  solver (``PyMca5.PyMcaMath.linalg.lstsq``) exactly as ``fitMultipleSpectra`` calls them.
- ``full``: ``McaTheory`` setData / estimate / startfit per spectrum (xrf_proc's precise path),
  with one configured theory per worker process.
"""

from __future__ import annotations

import functools
import json
import threading
from typing import Any

import numpy as np

from xrfdask.fit.model import LinearModel, line_label
from xrfdask.fit.project import project
from xrfdask.fit.refit import Candidates, candidates

__all__ = ["trim_band", "trimmed", "solve_linear", "solve_pymca", "fit_full", "fit_sum_spectrum"]


def trim_band(block: np.ndarray, lo: int, hi: int, dtype: Any) -> np.ndarray:
    """(detector, pixels, channels lo..hi-1) in ``dtype`` from a raw (rows, cols, detector, channel) block.

    A new array in one pass (reorder, trim and cast): the solvers subtract the background in
    place, so the caller's data is never touched.
    """
    rows, cols, ndet, _ = block.shape
    out = np.empty((ndet, rows, cols, hi - lo), dtype=dtype)
    out[...] = block[..., lo:hi].transpose(2, 0, 1, 3)
    return out.reshape(ndet, rows * cols, hi - lo)


def trimmed(spectra: np.ndarray, model: LinearModel) -> np.ndarray:
    """A new (pixels, fit channels) array in the dtype PyMca computes in (float32 for integers)."""
    return trim_band(spectra[:, None, None, :], model.xmin, model.xmax, model.result_dtype)[0]


def solve_linear(y: np.ndarray, model: LinearModel) -> tuple[np.ndarray, np.ndarray, Candidates]:
    """xrfdask's engine: compiled SNIP over the block, then ``x = pinv @ y`` for every pixel.

    ``y`` is a C-contiguous (pixels, fit channels) block (:func:`trimmed`); it is overwritten.
    """
    from xrfdask.fit.background import subtract_background

    if model.strip:
        subtract_background(y, model.snip_width, filter_width=model.filter_width, anchors=model.anchors)
    x = project(model.projection, y, np.empty((y.shape[0], model.n_free), dtype=model.result_dtype))
    sigma = np.broadcast_to(model.sigma.astype(model.result_dtype), x.shape)  # the same for every pixel; read-only
    return x, sigma, candidates(model, x, sigma, lambda rows: y[rows])


def solve_pymca(y: np.ndarray, model: LinearModel) -> tuple[np.ndarray, np.ndarray, Candidates]:
    """PyMca's fast-fit steps for one block, as ``fitMultipleSpectra`` runs them (no refit).

    ``y`` is a (pixels, fit channels) block (:func:`trimmed`); it is overwritten.
    """
    from PyMca5.PyMcaMath.linalg import lstsq
    from PyMca5.PyMcaPhysics.xrf.FastXRFLinearFit import FastXRFLinearFit

    chunk = y.T  # PyMca works on (channels, pixels) views
    if model.strip:
        FastXRFLinearFit._fitBkgSubtract(chunk, config=model.config, anchorslist=model.anchors)
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
        out = lstsq(model.derivatives, chunk[:, start : start + step], digested_output=True, **kwargs)
        x[start : start + step] = out["parameters"].T
        sigma[start : start + step] = out["uncertainties"].T
    return x, sigma, candidates(model, x, sigma, lambda rows: chunk[:, rows].T)


# --- the per-pixel nonlinear fit ------------------------------------------------------------

# McaTheory keeps fit state in the instance and configuring it touches PyMca's module-level
# element tables: one fit at a time per process (the fit holds the GIL anyway; for parallel
# full fits, use process workers).
PYMCA_LOCK = threading.RLock()


@functools.lru_cache(maxsize=8)
def _theory(config_json: str):
    """One configured ``McaTheory`` per worker process and configuration (configuring is slow)."""
    from PyMca5.PyMcaPhysics.xrf import ClassMcaTheory

    theory = ClassMcaTheory.McaTheory()
    config = json.loads(config_json)
    config["fit"]["use_limit"] = 1  # honour xmin/xmax, as xrf_proc does
    theory.setConfiguration(config)
    return theory


def config_key(config: dict) -> str:
    """A hashable, picklable form of a configuration (for the per-process theory cache)."""
    return json.dumps(config, sort_keys=True, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v))


def _fit_one(theory, x: np.ndarray, y: np.ndarray, xmin: int, xmax: int) -> dict[str, Any]:
    theory.setData(x=x, y=y, xmin=xmin, xmax=xmax)
    theory.estimate()
    _, result = theory.startfit(digest=1)
    return result


def fit_full(spectra: np.ndarray, config_json: str, lines: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Fit every spectrum of a block with the full nonlinear model (areas, uncertainties).

    Spectra summing to zero are skipped (zero areas), as xrf_proc does; a spectrum whose fit
    fails gets NaN. ``lines`` fixes the output order (the groups of the model).
    """
    areas = np.zeros((spectra.shape[0], len(lines)), dtype=np.float64)
    errors = np.zeros_like(areas)
    index = {name: i for i, name in enumerate(lines)}
    channels = np.arange(spectra.shape[1], dtype=np.float64)
    for p in range(spectra.shape[0]):  # the nonlinear fit is per spectrum by nature
        y = np.asarray(spectra[p], dtype=np.float64)  # eager-ok: one spectrum of the block
        if y.sum() <= 0:
            continue
        with PYMCA_LOCK:
            theory = _theory(config_json)
            xmin, xmax = int(theory.config["fit"]["xmin"]), int(theory.config["fit"]["xmax"])
            try:
                result = _fit_one(theory, channels, y, xmin, xmax)
            except Exception:  # noqa: BLE001 - PyMca raises anything on a hopeless spectrum
                areas[p] = errors[p] = np.nan
                continue
        for group in result["groups"]:
            i = index.get(line_label(group))
            if i is not None:
                areas[p, i] = result[group]["fitarea"]
                errors[p, i] = result[group]["sigmaarea"]
    return areas, errors


def fit_sum_spectrum(config: dict, sum_spectrum: np.ndarray) -> dict[str, tuple[float, float, float]]:
    """Full fit of a sum spectrum: per line (area, its uncertainty, background in the 3-sigma windows).

    The background is PyMca's ``statistics - fitarea`` (spec xrf_proc.md 3.4), the I_b that
    detection limits use. Uses the process's configured theory for this configuration.
    """
    y = np.asarray(sum_spectrum, dtype=np.float64)
    with PYMCA_LOCK:
        theory = _theory(config_key(config))
        xmin, xmax = int(theory.config["fit"]["xmin"]), int(theory.config["fit"]["xmax"])
        result = _fit_one(theory, np.arange(y.size, dtype=np.float64), y, xmin, xmax)
    return {
        line_label(g): (float(result[g]["fitarea"]), float(result[g]["sigmaarea"]), float(result[g]["statistics"] - result[g]["fitarea"]))
        for g in result["groups"]
    }
